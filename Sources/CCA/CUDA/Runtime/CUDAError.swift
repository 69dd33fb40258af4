/// Why the CUDA path could not run, with what to do about it.
public enum CUDAError: Error, CustomStringConvertible, Sendable {
    /// None of the candidate files of a library could be opened.
    case libraryNotFound(library: String, tried: [String], hint: String)
    /// A library opened but lacks a function this package calls (usually too old a version).
    case symbolNotFound(symbol: String, library: String)
    /// The driver loaded but reports no usable GPU.
    case noDevice
    /// A CUDA driver API call failed.
    case driver(call: String, code: Int32, name: String, message: String)
    /// An NVRTC call failed outside compilation.
    case nvrtc(call: String, code: Int32, message: String)
    /// NVRTC rejected a kernel source; `log` is its compiler output.
    case compilation(kernel: String, options: [String], log: String)
    /// A cuBLAS call failed.
    case cublas(call: String, status: Int32)
    /// The layer or shape cannot run on the GPU path.
    case unsupported(String)

    public var description: String {
        switch self {
        case let .libraryNotFound(library, tried, hint):
            return "cannot load \(library) (tried \(tried.joined(separator: ", "))): \(hint)"
        case let .symbolNotFound(symbol, library):
            return "\(library) has no function \(symbol); install a newer CUDA (13.x, or 12.x for NVRTC)"
        case .noDevice:
            return "the CUDA driver loaded but found no GPU; check nvidia-smi and CUDA_VISIBLE_DEVICES"
        case let .driver(call, code, name, message):
            return "\(call) failed: \(name) (\(code)): \(message)"
        case let .nvrtc(call, code, message):
            return "\(call) failed: \(message) (\(code))"
        case let .compilation(kernel, options, log):
            return "NVRTC could not compile \(kernel) with \(options.joined(separator: " ")):\n\(log)"
        case let .cublas(call, status):
            return "\(call) failed with cuBLAS status \(status)\(Self.cublasHint(status))"
        case let .unsupported(what):
            return "not supported on cuda: \(what)"
        }
    }

    private static func cublasHint(_ status: Int32) -> String {
        switch status {
        case 1: return " (NOT_INITIALIZED: the CUDA context is not usable)"
        case 3: return " (ALLOC_FAILED: out of GPU memory)"
        case 7: return " (INVALID_VALUE: a matrix size or stride is wrong)"
        case 8: return " (ARCH_MISMATCH: this GPU lacks a feature the call needs)"
        case 13: return " (EXECUTION_FAILED: a kernel failed to launch)"
        default: return ""
        }
    }
}
