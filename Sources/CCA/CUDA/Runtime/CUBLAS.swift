/// The cuBLAS functions this package calls, resolved from `libcublas.so.13` (or `.12`) at run time.
///
/// All matrix products go through `cublasGemmEx` with float accumulation (`CUBLAS_COMPUTE_32F`): bf16
/// operands use the tensor cores; float32 operands stay in true float32 (the default math mode, no TF32),
/// which the float32 storage mode's tolerance needs.
struct CUBLAS: Sendable {
    typealias Handle = OpaquePointer?

    let library: DynamicLibrary
    let create: @convention(c) (UnsafeMutablePointer<Handle>) -> Int32
    let setStream: @convention(c) (Handle, Handle) -> Int32
    let gemmEx: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32,
                                UnsafeRawPointer, UInt64, Int32, Int32, UInt64, Int32, Int32,
                                UnsafeRawPointer, UInt64, Int32, Int32, Int32, Int32) -> Int32
    /// `cublasGemmStridedBatchedEx`: `gemmEx`'s arguments with a stride (in elements) after each matrix's
    /// leading dimension, then the batch count before the compute type.
    let gemmStridedBatchedEx: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32,
                                              UnsafeRawPointer, UInt64, Int32, Int32, Int64, UInt64, Int32, Int32, Int64,
                                              UnsafeRawPointer, UInt64, Int32, Int32, Int64, Int32, Int32, Int32) -> Int32

    /// `cudaDataType` values.
    static let float32: Int32 = 0, bfloat16: Int32 = 14
    /// `CUBLAS_OP_N`, `CUBLAS_OP_T`, `CUBLAS_COMPUTE_32F`, `CUBLAS_GEMM_DEFAULT`.
    static let noTranspose: Int32 = 0, transpose: Int32 = 1, compute32F: Int32 = 68, defaultAlgorithm: Int32 = -1

    /// The process-wide library, loaded on first use.
    static let shared = Result { try CUBLAS() }

    private init() throws {
        let library = try DynamicLibrary.open(
            "cuBLAS",
            candidates: CUDALibrarySearch.candidates(names: ["libcublas.so.13", "libcublas.so.12"],
                                                     environmentVariable: "CCA_CUBLAS", wheelFolder: "cublas"),
            hint: "install the CUDA toolkit's libraries (libcublas and libcublasLt) or `python3 -m pip install nvidia-cublas`, or set CCA_CUBLAS=/path/to/libcublas.so.13")
        self.library = library
        create = try library.function("cublasCreate_v2")
        setStream = try library.function("cublasSetStream_v2")
        gemmEx = try library.function("cublasGemmEx")
        gemmStridedBatchedEx = try library.function("cublasGemmStridedBatchedEx")
    }

    func check(_ status: Int32, _ call: @autoclosure () -> String) throws {
        guard status != 0 else { return }
        throw CUDAError.cublas(call: call(), status: status)
    }
}
