// The shared task counter of the CPU path's parallel loops: workers take the next task index from it.
#include "CCAKernels.h"

ptrdiff_t cca_task_counter_next(ptrdiff_t *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
