// cca-gpu: the CUDA path's checks and timings, as a small executable without Foundation or
// ArgumentParser so that it can be built statically and carried to a GPU machine.
import CCA
#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: cca-gpu <command>
      selftest         every GPU operation and layer against the CPU path (exit status 1 on a failure)
      compile [arch]   compile every kernel with NVRTC for arch (default sm_90a); needs no GPU
      bench            time attention and layers on the GPU with CUDA events
      bench-attention  time the attention kernel alone, causal and not, on the cuDNN comparison's shapes
    """

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "selftest":
        exit(CUDASelfTest.run().failed == 0 ? 0 : 1)
    case "compile":
        print(CUDAKernels.compilerStatus)
        for (build, byteCount) in try CUDAKernels.compileAll(architecture: arguments.dropFirst().first ?? "sm_90a") {
            print("\(build): \(byteCount) bytes")
        }
    case "bench":
        try CUDABenchmark.run()
    case "bench-attention":
        try CUDABenchmark.attention()
    default:
        print(usage)
        exit(arguments.isEmpty ? 0 : 2)
    }
} catch {
    print("error: \(error)")
    exit(1)
}
