/// How tensors are stored on the GPU. Arithmetic always accumulates in float32.
public enum CUDAPrecision: String, Sendable, CaseIterable {
    /// Exact float32 storage and arithmetic (CUDA cores): matches the CPU path to rounding.
    case float32
    /// bfloat16 storage with float32 accumulation (tensor cores): the fast mode.
    case bfloat16

    /// Bytes per stored element.
    var byteCount: Int { self == .float32 ? 4 : 2 }
    /// The `ELEMENT` type kernels are compiled for.
    var kernelElement: String { self == .float32 ? "float" : "bf16" }
    /// The `cudaDataType` cuBLAS takes.
    var cublasType: Int32 { self == .float32 ? CUBLAS.float32 : CUBLAS.bfloat16 }
}
