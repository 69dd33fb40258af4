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
        .target(
            name: "CCA",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")],
            resources: [
                // CUDA kernels, compiled at run time by NVRTC; embedded as byte arrays (PackageResources).
                .embedInCode("CUDA/Kernels/common.cuh"),
                .embedInCode("CUDA/Kernels/mma.cuh"),
                .embedInCode("CUDA/Kernels/attention.cuh"),
                .embedInCode("CUDA/Kernels/cca_prologue.cu"),
                .embedInCode("CUDA/Kernels/cca_prologue_mma.cu"),
                .embedInCode("CUDA/Kernels/cca_values.cu"),
                .embedInCode("CUDA/Kernels/attention_mma.cu"),
                .embedInCode("CUDA/Kernels/attention_wgmma.cu"),
                .embedInCode("CUDA/Kernels/attention_simt.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_prepare.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_mma.cu"),
                .embedInCode("CUDA/Kernels/attention_backward_simt.cu"),
                .embedInCode("CUDA/Kernels/rms_norm.cu"),
                .embedInCode("CUDA/Kernels/rotary.cu"),
                .embedInCode("CUDA/Kernels/mla_split.cu"),
            ],
            swiftSettings: [
                .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                // AVX2 + FMA for the SIMD matrix kernel: every x86-64 CPU since 2013 has them.
                .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux])),
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
            dependencies: ["CCA", "CCAServe", .product(name: "RealModule", package: "swift-numerics")]
        ),
    ]
)
