/// Turns a ``KernelVariant`` into a CUBIN with NVRTC, through the on-disk cache.
enum KernelCompiler {
    /// The NVRTC options for `variant` on `architecture`.
    static func options(_ variant: KernelVariant, architecture: String, nvrtc: NVRTC) -> [String] {
        ["--gpu-architecture=\(architecture)", "-std=c++17"] + variant.defineOptions
            + nvrtc.includeDirectories.map { "--include-path=\($0)" }
    }

    /// The CUBIN of `variant` for `architecture`: from `diskCache` when present there, otherwise compiled
    /// (and then stored). The cache key covers the source, its headers, the options and NVRTC's version.
    static func cubin(_ variant: KernelVariant, architecture: String, diskCache: KernelDiskCache?) throws -> [UInt8] {
        let nvrtc = try NVRTC.shared.get()
        let options = options(variant, architecture: architecture, nvrtc: nvrtc)
        let key = KernelDiskCache.key(
            name: variant.source.rawValue.split(separator: ".")[0],
            parts: [variant.source.text] + KernelSource.headers.sorted { $0.key < $1.key }.map(\.value)
                + [Array((options + ["nvrtc \(nvrtc.version.major).\(nvrtc.version.minor)"]).joined(separator: "\n").utf8)])
        if let cached = diskCache?.load(key) { return cached }
        let cubin = try nvrtc.compile(source: variant.source.text, name: variant.source.rawValue,
                                      headers: KernelSource.headers, options: options)
        diskCache?.store(key, cubin)
        return cubin
    }
}

/// Checks and lists the kernels without a GPU.
public enum CUDAKernels {
    /// Whether NVRTC can be loaded here (see ``compilerStatus``).
    public static var compilerAvailable: Bool { (try? NVRTC.shared.get()) != nil }

    /// Where NVRTC was found and its version, or why it was not.
    public static var compilerStatus: String {
        switch NVRTC.shared {
        case let .success(nvrtc):
            let includes = nvrtc.includeDirectories.isEmpty ? "none" : nvrtc.includeDirectories.joined(separator: ", ")
            return "NVRTC \(nvrtc.version.major).\(nvrtc.version.minor) from \(nvrtc.library.path); include paths: \(includes)"
        case let .failure(error):
            return "\(error)"
        }
    }

    /// Compiles every embedded `.cu` file for every storage type it supports, with its default constants,
    /// for `architecture`, bypassing the disk cache. Needs NVRTC only, no GPU.
    /// - Returns: each build's description and CUBIN size in bytes.
    /// - Throws: the first ``CUDAError/compilation(kernel:options:log:)`` (with NVRTC's log).
    public static func compileAll(architecture: String = "sm_90a") throws -> [(build: String, byteCount: Int)] {
        try cubins(architecture: architecture).map { ($0.variant.description, $0.cubin.count) }
    }

    /// The CUBIN of every build ``compileAll(architecture:)`` makes.
    static func cubins(architecture: String) throws -> [(variant: KernelVariant, cubin: [UInt8])] {
        try KernelSource.allCases.filter { $0.builds(for: architecture) }.flatMap { source in
            try source.precisions.map { precision in
                let variant = KernelVariant(source: source, precision: precision, defines: [:])
                return (variant, try KernelCompiler.cubin(variant, architecture: architecture, diskCache: nil))
            }
        }
    }
}
