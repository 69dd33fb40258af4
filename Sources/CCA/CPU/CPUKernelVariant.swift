import CCAKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction set the CPU kernels (matrix product, exponential, softmax) run with.
///
/// The kernels are compiled for every variant of the architecture and the fastest one this CPU runs
/// is chosen once per process (``selected``), so the package builds with no CPU flag and runs on any
/// x86-64 or aarch64 CPU. Set `CCA_CPU_KERNELS` to one of the raw values to force a variant.
public enum CPUKernelVariant: String, CaseIterable, Sendable {
    /// Plain C at the architecture's baseline (SSE2 on x86-64, Advanced SIMD on aarch64).
    case portable
    /// x86-64 with AVX2 and FMA: 256-bit registers.
    case avx2
    /// x86-64 with AVX-512F: 512-bit registers.
    case avx512
    /// aarch64 with Advanced SIMD (NEON), register tile sized for its 32 vector registers.
    case neon

    /// Whether this CPU and its operating system run the variant.
    public var isSupported: Bool { cca_kernel_variant_supported(kernel) }

    /// The variants this CPU runs, slowest first.
    public static let supported: [CPUKernelVariant] = allCases.filter(\.isSupported)

    /// The variant every kernel call uses unless told otherwise: `CCA_CPU_KERNELS` when set to a variant this
    /// CPU runs, else the fastest one. An unknown or unsupported choice is reported on standard error and ignored.
    public static let selected: CPUKernelVariant = {
        let best = CPUKernelVariant(cca_kernel_best_variant())
        guard let choice = getenv("CCA_CPU_KERNELS").map({ String(cString: $0) }), !choice.isEmpty else { return best }
        if let variant = CPUKernelVariant(rawValue: choice), variant.isSupported { return variant }
        let names = supported.map(\.rawValue).joined(separator: ", ")
        let message = "CCA_CPU_KERNELS=\(choice) is not a kernel variant this CPU runs (it runs: \(names)); using \(best.rawValue).\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        return best
    }()

    /// Rows of A and columns of B in one register tile of the matrix kernel.
    var tileRows: Int { Int(cca_sgemm_tile_rows(kernel)) }
    var tileColumns: Int { Int(cca_sgemm_tile_columns(kernel)) }

    var kernel: CCAKernelVariant {
        switch self {
        case .portable: .portable
        case .avx2: .AVX2
        case .avx512: .AVX512
        case .neon: .NEON
        }
    }

    init(_ kernel: CCAKernelVariant) {
        switch kernel {
        case .portable: self = .portable
        case .AVX2: self = .avx2
        case .AVX512: self = .avx512
        case .NEON: self = .neon
        }
    }
}
