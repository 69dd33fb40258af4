#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A system BLAS found at run time with `dlopen`; nil members when none loads.
///
/// Nothing links against BLAS at build time. Set `CCA_BLAS=none` to force the pure-Swift kernel,
/// or `CCA_BLAS=/path/libblas.so` to pick a library.
enum BLASLibrary {
    typealias SGEMM = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void

    /// `cblas_sgemm` and the library it came from.
    static let loaded: (sgemm: SGEMM, path: String)? = load()

    private static let candidates = [
        "libopenblas.so.0", "libopenblas.so", "libblis.so.4", "libblas.so.3", "libblas.so",
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    ]

    private static func load() -> (sgemm: SGEMM, path: String)? {
        var names = candidates
        if let choice = getenv("CCA_BLAS").map({ String(cString: $0) }) {
            if choice == "none" { return nil }
            names = [choice]
        }
        // OpenBLAS's idle workers spin for about 2^28 cycles after each call by default, taking the cores
        // from the attention tasks that run on our own threads between matrix products (measured: the
        // CCA layer 98 ms → 64 ms). Its constructor reads this at load time; a user's own value wins.
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        for name in names {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            if let symbol = dlsym(handle, "cblas_sgemm") {
                return (unsafeBitCast(symbol, to: SGEMM.self), name)
            }
            dlclose(handle)
        }
        return nil
    }
}
