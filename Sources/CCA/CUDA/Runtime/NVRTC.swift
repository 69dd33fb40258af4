#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NVRTC, CUDA's run-time compiler, resolved with `dlopen`. It needs no GPU, so kernels can be compiled
/// (and checked) on any machine that has the library.
///
/// Search order: `$CCA_NVRTC` (a path) when set; otherwise `libnvrtc.so.13`, then `.12`, on the loader's
/// path, in `/usr/local/cuda/lib64`, and in pip's `nvidia-cuda-nvrtc` wheels (`nvidia/cu13/lib` or
/// `nvidia/cuda_nvrtc/lib` under a Python `site-packages`).
struct NVRTC: Sendable {
    typealias Program = OpaquePointer?
    typealias CStrings = UnsafePointer<UnsafePointer<CChar>?>?

    let library: DynamicLibrary
    /// Header folders found beside the library (see ``CUDALibrarySearch/includeDirectories(besideLibrary:)``).
    let includeDirectories: [String]
    let version: (major: Int32, minor: Int32)
    private let createProgram: @convention(c) (UnsafeMutablePointer<Program>, UnsafePointer<CChar>, UnsafePointer<CChar>,
                                               Int32, CStrings, CStrings) -> Int32
    private let compileProgram: @convention(c) (Program, Int32, CStrings) -> Int32
    private let destroyProgram: @convention(c) (UnsafeMutablePointer<Program>) -> Int32
    private let getLogSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
    private let getLog: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32
    private let getCUBINSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
    private let getCUBIN: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32
    private let getErrorString: @convention(c) (Int32) -> UnsafePointer<CChar>?

    /// The process-wide compiler, loaded on first use.
    static let shared = Result { try NVRTC() }

    private init() throws {
        let library = try DynamicLibrary.open(
            "NVRTC",
            candidates: CUDALibrarySearch.candidates(names: ["libnvrtc.so.13", "libnvrtc.so.12"],
                                                     environmentVariable: "CCA_NVRTC", wheelFolder: "cuda_nvrtc"),
            hint: "install the CUDA toolkit, or `python3 -m pip install nvidia-cuda-nvrtc`, or set CCA_NVRTC=/path/to/libnvrtc.so.13")
        self.library = library
        includeDirectories = CUDALibrarySearch.includeDirectories(besideLibrary: library.path)
        createProgram = try library.function("nvrtcCreateProgram")
        compileProgram = try library.function("nvrtcCompileProgram")
        destroyProgram = try library.function("nvrtcDestroyProgram")
        getLogSize = try library.function("nvrtcGetProgramLogSize")
        getLog = try library.function("nvrtcGetProgramLog")
        getCUBINSize = try library.function("nvrtcGetCUBINSize")
        getCUBIN = try library.function("nvrtcGetCUBIN")
        getErrorString = try library.function("nvrtcGetErrorString")
        let getVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32 =
            try library.function("nvrtcVersion")
        var major: Int32 = 0, minor: Int32 = 0
        _ = getVersion(&major, &minor)
        version = (major, minor)
    }

    /// Compiles `source` (named `name` in messages) to a CUBIN with `options`; `headers` maps include names
    /// to their text.
    /// - Throws: ``CUDAError/compilation(kernel:options:log:)`` with the compiler's log when it fails.
    func compile(source: [UInt8], name: String, headers: [String: [UInt8]], options: [String]) throws -> [UInt8] {
        let headerNames = Array(headers.keys)
        var program: Program = nil
        let created = withCStrings(headerNames.map { String(decoding: headers[$0]!, as: UTF8.self) }) { headerTexts in
            withCStrings(headerNames) { includeNames in
                createProgram(&program, String(decoding: source, as: UTF8.self), name, Int32(headerNames.count),
                              headerTexts, includeNames)
            }
        }
        try check(created, "nvrtcCreateProgram(\(name))")
        defer { _ = destroyProgram(&program) }
        let compiled = withCStrings(options) { compileProgram(program, Int32(options.count), $0) }
        guard compiled == 0 else { throw CUDAError.compilation(kernel: name, options: options, log: log(program)) }
        var size = 0
        try check(getCUBINSize(program, &size), "nvrtcGetCUBINSize(\(name))")
        var cubin = [UInt8](repeating: 0, count: size)
        try cubin.withUnsafeMutableBytes { bytes in
            try check(getCUBIN(program, bytes.baseAddress!.assumingMemoryBound(to: CChar.self)), "nvrtcGetCUBIN(\(name))")
        }
        return cubin
    }

    private func log(_ program: Program) -> String {
        var size = 0
        guard getLogSize(program, &size) == 0, size > 1 else { return "(no log)" }
        var text = [CChar](repeating: 0, count: size)
        _ = getLog(program, &text)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func check(_ result: Int32, _ call: String) throws {
        guard result != 0 else { return }
        throw CUDAError.nvrtc(call: call, code: result, message: getErrorString(result).map { String(cString: $0) } ?? "unknown")
    }
}

/// Calls `body` with a C array of C strings that stay valid for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress) }
}
