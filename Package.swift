// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-cca",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "CCA", targets: ["CCA"]),
        .executable(name: "cca", targets: ["cca"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The hot CPU kernels in C, each compiled for several instruction sets and chosen at run time
        // (clang's per-function target attributes), so the package needs no CPU flag of its own.
        .target(name: "CCAKernels"),
        .target(
            name: "CCA",
            dependencies: ["CCAKernels", .product(name: "RealModule", package: "swift-numerics")],
            resources: [
                // CUDA kernels, compiled at run time by NVRTC; embedded as byte arrays (PackageResources).
                .embedInCode("CUDA/Kernels/common.cuh"),
                .embedInCode("CUDA/Kernels/mma.cuh"),
                .embedInCode("CUDA/Kernels/attention.cuh"),
                .embedInCode("CUDA/Kernels/documents.cuh"),
                .embedInCode("CUDA/Kernels/reduce.cuh"),
                .embedInCode("CUDA/Kernels/elementwise.cuh"),
                .embedInCode("CUDA/Kernels/cca_rows.cuh"),
                .embedInCode("CUDA/Kernels/wgmma.cuh"),
                .embedInCode("CUDA/Kernels/decode_attention.cuh"),
                .embedInCode("CUDA/Kernels/few_rows.cuh"),
                .embedInCode("CUDA/Kernels/cca_prologue.cu"),
                .embedInCode("CUDA/Kernels/cca_prologue_mma.cu"),
                .embedInCode("CUDA/Kernels/cca_values.cu"),
                .embedInCode("CUDA/Kernels/attention_mma.cu"),
                .embedInCode("CUDA/Kernels/attention_wgmma.cu"),
                .embedInCode("CUDA/Kernels/attention_simt.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_prepare.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_mma.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_wgmma.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_simt.cu"),
                .embedInCode("CUDA/Kernels/decode_attention.cu"),
                .embedInCode("CUDA/Kernels/decode_attention_mma.cu"),
                .embedInCode("CUDA/Kernels/sampling.cu"),
                .embedInCode("CUDA/Kernels/decode_cca_prologue.cu"),
                .embedInCode("CUDA/Kernels/zaya_stream.cu"),
                .embedInCode("CUDA/Kernels/zaya_router.cu"),
                .embedInCode("CUDA/Kernels/moe_grouping.cu"),
                .embedInCode("CUDA/Kernels/moe_experts.cu"),
                .embedInCode("CUDA/Kernels/rms_norm.cu"),
                .embedInCode("CUDA/Kernels/rotary.cu"),
                .embedInCode("CUDA/Kernels/mla_split.cu"),
                // The training path's operations.
                .embedInCode("CUDA/Kernels/column_sums.cu"),
                .embedInCode("CUDA/Kernels/swiglu.cu"),
                .embedInCode("CUDA/Kernels/embedding.cu"),
                .embedInCode("CUDA/Kernels/residual.cu"),
                .embedInCode("CUDA/Kernels/cross_entropy.cu"),
                .embedInCode("CUDA/Kernels/adamw.cu"),
                .embedInCode("CUDA/Kernels/gradient_norm.cu"),
                .embedInCode("CUDA/Kernels/cca_convolution.cu"),
                .embedInCode("CUDA/Kernels/cca_prologue_heads.cu"),
            ]
        ),
        // The HTTP server of `cca serve`, apart so that the library itself does not depend on Hummingbird.
        .target(name: "CCAServe", dependencies: ["CCA", .product(name: "Hummingbird", package: "hummingbird"),
                                                 .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "cca",
            dependencies: ["CCA", "CCAServe", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "CCATests",
            dependencies: ["CCA", "CCAServe", .product(name: "RealModule", package: "swift-numerics")],
            // Model directories the tests read from disk, as a user's would be.
            exclude: ["Fixtures"]
        ),
    ]
)
