/// The CUDA driver API functions this package calls, resolved from `libcuda.so.1` at run time.
///
/// Names are the versioned symbols that `cuda.h` maps the plain names to (`cuMemAlloc` is
/// `cuMemAlloc_v2`, ...). Handles (`CUcontext`, `CUmodule`, `CUfunction`, `CUstream`, `CUevent`) are
/// opaque pointers and device addresses are `UInt64`, as in `cuda.h`.
struct CUDADriver: Sendable {
    typealias Handle = OpaquePointer?
    typealias HandleOut = UnsafeMutablePointer<OpaquePointer?>

    let library: DynamicLibrary
    let initialize: @convention(c) (UInt32) -> Int32
    let deviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let deviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    let deviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Int32
    let deviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32
    let primaryContextRetain: @convention(c) (HandleOut, Int32) -> Int32
    let contextSetCurrent: @convention(c) (Handle) -> Int32
    let memoryAllocate: @convention(c) (UnsafeMutablePointer<UInt64>, Int) -> Int32
    let memoryFree: @convention(c) (UInt64) -> Int32
    let copyHostToDevice: @convention(c) (UInt64, UnsafeRawPointer, Int, Handle) -> Int32
    let copyDeviceToHost: @convention(c) (UnsafeMutableRawPointer, UInt64, Int, Handle) -> Int32
    let memset32: @convention(c) (UInt64, UInt32, Int, Handle) -> Int32
    let moduleLoadData: @convention(c) (HandleOut, UnsafeRawPointer) -> Int32
    let moduleGetFunction: @convention(c) (HandleOut, Handle, UnsafePointer<CChar>) -> Int32
    let functionSetAttribute: @convention(c) (Handle, Int32, Int32) -> Int32
    let launchKernel: @convention(c) (Handle, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, Handle,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    let streamCreate: @convention(c) (HandleOut, UInt32) -> Int32
    let streamSynchronize: @convention(c) (Handle) -> Int32
    let streamBeginCapture: @convention(c) (Handle, Int32) -> Int32
    let streamEndCapture: @convention(c) (Handle, HandleOut) -> Int32
    let graphInstantiate: @convention(c) (HandleOut, Handle, UInt64) -> Int32
    let graphLaunch: @convention(c) (Handle, Handle) -> Int32
    let graphExecDestroy: @convention(c) (Handle) -> Int32
    let graphDestroy: @convention(c) (Handle) -> Int32
    let eventCreate: @convention(c) (HandleOut, UInt32) -> Int32
    let eventRecord: @convention(c) (Handle, Handle) -> Int32
    let eventSynchronize: @convention(c) (Handle) -> Int32
    let eventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, Handle, Handle) -> Int32
    let eventDestroy: @convention(c) (Handle) -> Int32
    let getErrorName: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32
    let getErrorString: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32

    /// The process-wide driver, loaded on first use.
    static let shared = Result { try CUDADriver() }

    private init() throws {
        let library = try DynamicLibrary.open(
            "the CUDA driver", candidates: ["libcuda.so.1", "libcuda.so"],
            hint: "this machine has no NVIDIA driver; install one (nvidia-smi must work) or run with device cpu")
        self.library = library
        initialize = try library.function("cuInit")
        deviceGetCount = try library.function("cuDeviceGetCount")
        deviceGet = try library.function("cuDeviceGet")
        deviceGetAttribute = try library.function("cuDeviceGetAttribute")
        deviceGetName = try library.function("cuDeviceGetName")
        primaryContextRetain = try library.function("cuDevicePrimaryCtxRetain")
        contextSetCurrent = try library.function("cuCtxSetCurrent")
        memoryAllocate = try library.function("cuMemAlloc_v2")
        memoryFree = try library.function("cuMemFree_v2")
        copyHostToDevice = try library.function("cuMemcpyHtoDAsync_v2")
        copyDeviceToHost = try library.function("cuMemcpyDtoHAsync_v2")
        memset32 = try library.function("cuMemsetD32Async")
        moduleLoadData = try library.function("cuModuleLoadData")
        moduleGetFunction = try library.function("cuModuleGetFunction")
        functionSetAttribute = try library.function("cuFuncSetAttribute")
        launchKernel = try library.function("cuLaunchKernel")
        streamCreate = try library.function("cuStreamCreate")
        streamSynchronize = try library.function("cuStreamSynchronize")
        streamBeginCapture = try library.function("cuStreamBeginCapture_v2")
        streamEndCapture = try library.function("cuStreamEndCapture")
        graphInstantiate = try library.function("cuGraphInstantiateWithFlags")
        graphLaunch = try library.function("cuGraphLaunch")
        graphExecDestroy = try library.function("cuGraphExecDestroy")
        graphDestroy = try library.function("cuGraphDestroy")
        eventCreate = try library.function("cuEventCreate")
        eventRecord = try library.function("cuEventRecord")
        eventSynchronize = try library.function("cuEventSynchronize")
        eventElapsedTime = try library.function("cuEventElapsedTime_v2", or: "cuEventElapsedTime")
        eventDestroy = try library.function("cuEventDestroy_v2")
        getErrorName = try library.function("cuGetErrorName")
        getErrorString = try library.function("cuGetErrorString")
        try check(initialize(0), "cuInit")
    }

    /// Throws ``CUDAError/driver(call:code:name:message:)`` unless `result` is `CUDA_SUCCESS`.
    func check(_ result: Int32, _ call: @autoclosure () -> String) throws {
        guard result != 0 else { return }
        var name: UnsafePointer<CChar>?, message: UnsafePointer<CChar>?
        _ = getErrorName(result, &name)
        _ = getErrorString(result, &message)
        throw CUDAError.driver(call: call(), code: result, name: name.map { String(cString: $0) } ?? "CUDA_ERROR",
                               message: message.map { String(cString: $0) } ?? "unknown error")
    }
}
