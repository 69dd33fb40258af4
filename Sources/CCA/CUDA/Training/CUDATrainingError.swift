/// Why a training step on the GPU cannot run, with what to do about it. A step that throws leaves the
/// run directory as the last checkpoint wrote it: the trainer saves only after steps that succeed.
public enum CUDATrainingError: Error, CustomStringConvertible, Equatable {
    /// The device ran out of memory in `operation`; `bytesInUse` were held by this run at the time.
    case outOfMemory(operation: String, bytesInUse: Int)
    /// A kernel or library call failed on the device.
    case device(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .outOfMemory(operation, bytesInUse):
            "the GPU ran out of memory in \(operation) with \(bytesInUse >> 20) MiB in use by this run; use a smaller --batch-size "
                + "or --context, or --precision bfloat16, or free the GPU of other processes; the last checkpoint is intact"
        case let .device(operation, reason):
            "the GPU failed in \(operation): \(reason); the last checkpoint is intact, resume from it with --resume"
        }
    }

    /// `error` as one of these when a driver or cuBLAS call failed (out-of-memory told apart); any other
    /// error (a missing library, an unsupported layer, a bad input) unchanged.
    static func wrapping(_ error: any Error, in operation: String, bytesInUse: Int) -> any Error {
        switch error {
        case CUDAError.driver(_, 2, _, _), CUDAError.cublas(_, 3):  // CUDA_ERROR_OUT_OF_MEMORY, CUBLAS_STATUS_ALLOC_FAILED
            return CUDATrainingError.outOfMemory(operation: operation, bytesInUse: bytesInUse)
        case CUDAError.driver, CUDAError.cublas:
            return CUDATrainingError.device(operation: operation, reason: "\(error)")
        default:
            return error
        }
    }
}
