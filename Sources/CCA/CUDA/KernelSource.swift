/// The CUDA C++ files embedded in the library (`Sources/CCA/CUDA/Kernels`, built into the binary by
/// SwiftPM's `embedInCode`), compiled at run time by NVRTC for the GPU at hand.
enum KernelSource: String, CaseIterable, Sendable {
    case ccaPrologue = "cca_prologue.cu"
    case ccaPrologueTensorCores = "cca_prologue_mma.cu"
    case ccaValues = "cca_values.cu"
    case attentionTensorCores = "attention_mma.cu"
    case attentionHopper = "attention_wgmma.cu"
    case attentionFloat32 = "attention_simt.cu"
    case attentionBackwardPrepare = "attention_backward_prepare.cu"
    case attentionBackwardTensorCores = "attention_backward_mma.cu"
    case attentionBackwardHopper = "attention_backward_wgmma.cu"
    case attentionBackwardFloat32 = "attention_backward_simt.cu"
    case decodeAttention = "decode_attention.cu"
    case decodeAttentionTensorCores = "decode_attention_mma.cu"
    case sampling = "sampling.cu"
    case rmsNorm = "rms_norm.cu"
    case rotary = "rotary.cu"
    case mlaSplit = "mla_split.cu"
    case columnSums = "column_sums.cu"
    case swiGLU = "swiglu.cu"
    case embedding = "embedding.cu"
    case residual = "residual.cu"
    case crossEntropy = "cross_entropy.cu"
    case adamW = "adamw.cu"
    case gradientNorm = "gradient_norm.cu"
    case ccaConvolution = "cca_convolution.cu"
    case ccaPrologueHeads = "cca_prologue_heads.cu"
    case decodeCCAPrologue = "decode_cca_prologue.cu"
    case zayaStream = "zaya_stream.cu"
    case zayaRouter = "zaya_router.cu"
    case moeGrouping = "moe_grouping.cu"
    case moeExperts = "moe_experts.cu"

    /// The file's text: the embedded copy, or, when the environment variable `CCA_KERNEL_SOURCES` names a
    /// folder holding a file of this name, that file (kernel development: edit a `.cu` file and rerun the
    /// same binary; the disk cache keys on the text, so an edited file is recompiled).
    var text: [UInt8] { Self.developmentCopy(rawValue) ?? embedded }

    /// `name` read from the `CCA_KERNEL_SOURCES` folder, if that variable is set and the file is there.
    static func developmentCopy(_ name: String) -> [UInt8]? {
        guard let folder = CUDALibrarySearch.environment("CCA_KERNEL_SOURCES") else { return nil }
        return try? readFile(folder + "/" + name)
    }

    private var embedded: [UInt8] {
        switch self {
        case .ccaPrologue: return PackageResources.cca_prologue_cu
        case .ccaPrologueTensorCores: return PackageResources.cca_prologue_mma_cu
        case .ccaValues: return PackageResources.cca_values_cu
        case .attentionTensorCores: return PackageResources.attention_mma_cu
        case .attentionHopper: return PackageResources.attention_wgmma_cu
        case .attentionFloat32: return PackageResources.attention_simt_cu
        case .attentionBackwardPrepare: return PackageResources.attention_backward_prepare_cu
        case .attentionBackwardTensorCores: return PackageResources.attention_backward_mma_cu
        case .attentionBackwardHopper: return PackageResources.attention_backward_wgmma_cu
        case .attentionBackwardFloat32: return PackageResources.attention_backward_simt_cu
        case .decodeAttention: return PackageResources.decode_attention_cu
        case .decodeAttentionTensorCores: return PackageResources.decode_attention_mma_cu
        case .sampling: return PackageResources.sampling_cu
        case .rmsNorm: return PackageResources.rms_norm_cu
        case .rotary: return PackageResources.rotary_cu
        case .mlaSplit: return PackageResources.mla_split_cu
        case .columnSums: return PackageResources.column_sums_cu
        case .swiGLU: return PackageResources.swiglu_cu
        case .embedding: return PackageResources.embedding_cu
        case .residual: return PackageResources.residual_cu
        case .crossEntropy: return PackageResources.cross_entropy_cu
        case .adamW: return PackageResources.adamw_cu
        case .gradientNorm: return PackageResources.gradient_norm_cu
        case .ccaConvolution: return PackageResources.cca_convolution_cu
        case .ccaPrologueHeads: return PackageResources.cca_prologue_heads_cu
        case .decodeCCAPrologue: return PackageResources.decode_cca_prologue_cu
        case .zayaStream: return PackageResources.zaya_stream_cu
        case .zayaRouter: return PackageResources.zaya_router_cu
        case .moeGrouping: return PackageResources.moe_grouping_cu
        case .moeExperts: return PackageResources.moe_experts_cu
        }
    }

    /// Headers the sources include, by include name.
    static let headers: [String: [UInt8]] = [
        "common.cuh": PackageResources.common_cuh, "mma.cuh": PackageResources.mma_cuh,
        "attention.cuh": PackageResources.attention_cuh, "documents.cuh": PackageResources.documents_cuh,
        "reduce.cuh": PackageResources.reduce_cuh, "elementwise.cuh": PackageResources.elementwise_cuh,
        "cca_rows.cuh": PackageResources.cca_rows_cuh, "wgmma.cuh": PackageResources.wgmma_cuh,
        "decode_attention.cuh": PackageResources.decode_attention_cuh, "few_rows.cuh": PackageResources.few_rows_cuh,
    ].reduce(into: [:]) { headers, entry in headers[entry.key] = developmentCopy(entry.key) ?? entry.value }

    /// Whether the file builds for `architecture`: the wgmma kernels need Hopper's `sm_90a`.
    func builds(for architecture: String) -> Bool {
        (self != .attentionHopper && self != .attentionBackwardHopper) || architecture == "sm_90a"
    }

    /// The storage types the file is written for (the attention kernels and the tensor-core prologue are
    /// one per type).
    var precisions: [CUDAPrecision] {
        switch self {
        case .attentionTensorCores, .attentionHopper, .ccaPrologueTensorCores, .attentionBackwardTensorCores,
             .attentionBackwardHopper, .decodeAttentionTensorCores: return [.bfloat16]
        case .attentionFloat32, .attentionBackwardFloat32: return [.float32]
        default: return CUDAPrecision.allCases
        }
    }
}

/// One build of a kernel source: its storage type and the values of its compile-time constants.
struct KernelVariant: CustomStringConvertible, Hashable, Sendable {
    let source: KernelSource
    let precision: CUDAPrecision
    let defines: [String: Int]

    /// The `-D` options of this build.
    var defineOptions: [String] {
        ["-DELEMENT=\(precision.kernelElement)"] + defines.sorted { $0.key < $1.key }.map { "-D\($0.key)=\($0.value)" }
    }

    var description: String { ([source.rawValue] + defineOptions).joined(separator: " ") }
}
