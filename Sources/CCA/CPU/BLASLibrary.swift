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

    /// `cblas_sgemm`, the library it came from, and for OpenBLAS the CPU core whose kernels it runs.
    static let loaded: (sgemm: SGEMM, path: String, core: String?)? = load()

    private static let candidates = [
        "libopenblas.so.0", "libopenblas.so", "libblis.so.4", "libblas.so.3", "libblas.so",
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    ]

    private static func load() -> (sgemm: SGEMM, path: String, core: String?)? {
        var names = candidates
        if let choice = getenv("CCA_BLAS").map({ String(cString: $0) }) {
            if choice == "none" { return nil }
            names = [choice]
        }
        // OpenBLAS's idle workers spin for about 2^28 cycles after each call by default, taking the cores
        // from the attention tasks that run on our own threads between matrix products (measured: the
        // CCA layer 98 ms → 64 ms). Its constructor reads this at load time; a user's own value wins.
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
        // OpenBLAS picks its kernels by CPU model, and a release older than the CPU falls back to SSE3:
        // Debian 12's 0.3.21 takes the Xeon of BENCHMARKS.md (model 207) for a "Prescott", 2-3x slower than
        // this package's kernel there. Its kernels for the widest registers the CPU has (ours check that
        // the CPU and OS run them) are what it would pick if it knew the model; a user's own value wins.
        if let core = openBLASCore(for: CPUKernelVariant.selected) { setenv("OPENBLAS_CORETYPE", core, 0) }
        for name in names {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            if let symbol = dlsym(handle, "cblas_sgemm") {
                return (unsafeBitCast(symbol, to: SGEMM.self), name, openBLASCoreName(handle))
            }
            dlclose(handle)
        }
        return nil
    }

    /// The `OPENBLAS_CORETYPE` whose kernels use `variant`'s registers (x86-64 only; OpenBLAS's detection
    /// of aarch64 cores is left alone).
    static func openBLASCore(for variant: CPUKernelVariant) -> String? {
        switch variant {
        case .avx512: "SkylakeX"
        case .avx2: "Haswell"
        case .portable, .neon: nil
        }
    }

    /// The core OpenBLAS says it runs the kernels of (nil for another library).
    private static func openBLASCoreName(_ handle: UnsafeMutableRawPointer) -> String? {
        typealias CoreName = @convention(c) () -> UnsafePointer<CChar>?
        guard let symbol = dlsym(handle, "openblas_get_corename"),
              let name = unsafeBitCast(symbol, to: CoreName.self)() else { return nil }
        return String(cString: name)
    }
}
