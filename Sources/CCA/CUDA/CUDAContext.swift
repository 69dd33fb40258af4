import Dispatch

/// One GPU ready for work: its primary context, the stream all work of this package is queued on, a
/// cuBLAS handle, a caching allocator and the kernels loaded so far.
///
/// There is one per process (``shared()``), kept until exit. Calls into it are serialised by
/// ``exclusive(_:)``, which also makes the context current on the calling thread.
public final class CUDAContext: @unchecked Sendable {
    /// The GPU's name, as the driver reports it.
    public let deviceName: String
    /// The architecture kernels are compiled for: `sm_90a` on Hopper, `sm_<major><minor>` elsewhere.
    public let architecture: String
    /// Streaming multiprocessors on the GPU.
    public let multiprocessorCount: Int
    /// The most shared memory one block may ask for (the opt-in limit: 227 KiB on Hopper).
    let sharedBytesPerBlock: Int

    let driver: CUDADriver
    let blas: CUBLAS
    let allocator: DeviceAllocator
    let stream: CUDADriver.Handle
    let blasHandle: CUBLAS.Handle
    private let context: CUDADriver.Handle
    /// Set while ``capture(_:)`` records the stream's work into a graph.
    var isCapturing = false
    private let serial = DispatchQueue(label: "swift-cca.cuda-context")
    private var kernels: [String: Kernel] = [:]
    private let diskCache = KernelDiskCache()

    private static let sharedContext = Result { try CUDAContext(ordinal: 0) }

    /// The context of GPU 0, created on first use.
    /// - Throws: ``CUDAError`` when the driver, cuBLAS or a GPU is missing.
    public static func shared() throws -> CUDAContext { try sharedContext.get() }

    private init(ordinal: Int32) throws {
        let driver = try CUDADriver.shared.get(), blas = try CUBLAS.shared.get()
        (self.driver, self.blas) = (driver, blas)
        var count: Int32 = 0
        try driver.check(driver.deviceGetCount(&count), "cuDeviceGetCount")
        guard count > ordinal else { throw CUDAError.noDevice }
        var device: Int32 = 0
        try driver.check(driver.deviceGet(&device, ordinal), "cuDeviceGet")
        func attribute(_ code: Int32) throws -> Int {
            var value: Int32 = 0
            try driver.check(driver.deviceGetAttribute(&value, code, device), "cuDeviceGetAttribute(\(code))")
            return Int(value)
        }
        let (major, minor) = (try attribute(75), try attribute(76))  // compute capability
        architecture = major == 9 && minor == 0 ? "sm_90a" : "sm_\(major)\(minor)"
        multiprocessorCount = try attribute(16)
        sharedBytesPerBlock = try attribute(97)  // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        var name = [CChar](repeating: 0, count: 256)
        try driver.check(driver.deviceGetName(&name, Int32(name.count), device), "cuDeviceGetName")
        deviceName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)

        // The primary context is the one the CUDA runtime inside cuBLAS uses too.
        var context: CUDADriver.Handle = nil
        try driver.check(driver.primaryContextRetain(&context, device), "cuDevicePrimaryCtxRetain")
        try driver.check(driver.contextSetCurrent(context), "cuCtxSetCurrent")
        var stream: CUDADriver.Handle = nil
        try driver.check(driver.streamCreate(&stream, 1), "cuStreamCreate")  // 1: CU_STREAM_NON_BLOCKING
        var blasHandle: CUBLAS.Handle = nil
        try blas.check(blas.create(&blasHandle), "cublasCreate")
        try blas.check(blas.setStream(blasHandle, stream), "cublasSetStream")
        self.context = context
        self.stream = stream
        self.blasHandle = blasHandle
        allocator = DeviceAllocator(driver: driver, stream: stream)
    }

    /// Runs `body` with the context current on this thread and no other thread inside the context.
    /// Not reentrant: the GPU operations called from `body` must not call it again.
    func exclusive<R>(_ body: () throws -> R) throws -> R {
        try serial.sync {
            try driver.check(driver.contextSetCurrent(context), "cuCtxSetCurrent")
            return try body()
        }
    }

    /// Waits for all queued work; reports the first error of any kernel that failed since the last wait.
    func synchronize() throws {
        try driver.check(driver.streamSynchronize(stream), "cuStreamSynchronize")
    }

    /// Frees the device memory kept for reuse (the memory of live tensors and layers stays).
    public func releaseCachedMemory() throws {
        try exclusive { try allocator.releaseCached() }
    }

    /// The kernel `name` of `source` built for `precision` with `defines`; compiled with NVRTC (or read
    /// from the disk cache) and loaded on first use.
    func kernel(_ name: String, in source: KernelSource, precision: CUDAPrecision,
                defines: [String: Int] = [:]) throws -> Kernel {
        let variant = KernelVariant(source: source, precision: precision, defines: defines)
        let key = "\(variant.description)/\(name)"
        if let kernel = kernels[key] { return kernel }
        let cubin = try KernelCompiler.cubin(variant, architecture: architecture, diskCache: diskCache)
        var module: CUDADriver.Handle = nil
        try cubin.withUnsafeBytes { bytes in
            try driver.check(driver.moduleLoadData(&module, bytes.baseAddress!), "cuModuleLoadData(\(variant))")
        }
        var function: CUDADriver.Handle = nil
        try driver.check(driver.moduleGetFunction(&function, module, name), "cuModuleGetFunction(\(name))")
        let kernel = Kernel(function: function, name: "\(name) [\(variant)]")
        kernels[key] = kernel
        return kernel
    }

    /// Queues `kernel` on the stream with a 1-D block of `threads` and the given dynamic shared memory.
    func launch(_ kernel: Kernel, grid: (x: Int, y: Int, z: Int), threads: Int, sharedBytes: Int = 0,
                _ arguments: [any KernelArgument]) throws {
        if sharedBytes > 48 * 1024 {
            // Above 48 KB a kernel must opt in (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
            try driver.check(driver.functionSetAttribute(kernel.function, 8, Int32(sharedBytes)),
                             "cuFuncSetAttribute(\(kernel.name), \(sharedBytes) bytes)")
        }
        var slots = arguments.map(\.kernelArgumentBits)
        try slots.withUnsafeMutableBufferPointer { slots in
            var pointers: [UnsafeMutableRawPointer?] = (0..<slots.count).map { UnsafeMutableRawPointer(slots.baseAddress! + $0) }
            try driver.check(driver.launchKernel(kernel.function, UInt32(grid.x), UInt32(grid.y), UInt32(grid.z),
                                                 UInt32(threads), 1, 1, UInt32(sharedBytes), stream, &pointers, nil),
                             "cuLaunchKernel(\(kernel.name), grid \(grid), \(threads) threads, \(sharedBytes) B shared)")
        }
    }
}

/// A loaded kernel function.
struct Kernel: @unchecked Sendable {
    let function: CUDADriver.Handle
    /// Its name and build, for messages.
    let name: String
}

/// A value passed to a kernel. Each argument travels in its own 8-byte slot; the driver reads as many
/// bytes as the kernel's parameter has, which on little-endian machines are the low bytes of the slot.
protocol KernelArgument {
    var kernelArgumentBits: UInt64 { get }
}

extension Int32: KernelArgument { var kernelArgumentBits: UInt64 { UInt64(UInt32(bitPattern: self)) } }
extension Int64: KernelArgument { var kernelArgumentBits: UInt64 { UInt64(bitPattern: self) } }
extension UInt64: KernelArgument { var kernelArgumentBits: UInt64 { self } }
extension Float: KernelArgument { var kernelArgumentBits: UInt64 { UInt64(bitPattern) } }
