import Foundation
import Testing
@testable import CCA

/// Every embedded CUDA kernel compiles for Hopper with NVRTC, on a machine with no GPU, and every kernel a
/// Swift wrapper launches by name is in the CUBIN of the source it names (a misspelt name would otherwise
/// surface only on a GPU, as `cuModuleGetFunction` failing).
///
/// NVRTC is looked up as the library does (`$CCA_NVRTC`, the loader's path, /usr/local/cuda, pip's
/// `nvidia-cuda-nvrtc` wheels); the tests are skipped only when none of those has it.
@Suite struct CUDAKernelCompileTests {
    @Test(.enabled(if: CUDAKernels.compilerAvailable,
                   "NVRTC not found: `python3 -m pip install nvidia-cuda-nvrtc` or set CCA_NVRTC=/path/to/libnvrtc.so.13"))
    func everyKernelCompilesForHopper() throws {
        let builds = try CUDAKernels.cubins(architecture: "sm_90a")
        // Thirty sources; the attention kernels (decode attention's tensor-core one too), the tensor-core
        // prologue and the float32-only kernels are built for one precision each, the others for both.
        #expect(builds.count == 52)
        for build in builds { #expect(!build.cubin.isEmpty, "\(build.variant) produced an empty CUBIN") }
        let launched = try Self.launchedKernels()
        #expect(launched.count >= 25, "found only \(launched.count) launches; has the wrappers' call pattern changed?")
        for (source, name) in launched {
            for build in builds where build.variant.source == source {
                // An entry point's name is in the CUBIN's string table, between NULs.
                #expect(build.cubin.firstRange(of: [0] + Array(name.utf8) + [0]) != nil, "\(name) is not in \(build.variant)")
            }
        }
    }

    /// The attention kernels at the head dims the layers use besides the default 128: 64 (also the Hopper
    /// forward's and backward's other head dim), MLA's 96/64, and dims that are not multiples of 16 (20/8), which take the
    /// zero-padded paths.
    @Test(.enabled(if: CUDAKernels.compilerAvailable, "NVRTC not found"),
          arguments: [(64, 64), (96, 64), (20, 8)])
    func attentionKernelsCompileForOtherHeadDims(_ keyDim: Int, _ valueDim: Int) throws {
        let hopper: [KernelSource] = keyDim == 64 ? [.attentionHopper, .attentionBackwardHopper] : []
        for source in [KernelSource.attentionTensorCores, .attentionFloat32, .attentionBackwardTensorCores, .attentionBackwardFloat32] + hopper {
            let variant = KernelVariant(source: source, precision: source.precisions[0],
                                        defines: ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim])
            #expect(try KernelCompiler.cubin(variant, architecture: "sm_90a", diskCache: nil).count > 0, "\(variant)")
        }
    }

    @Test func compilerStatusExplainsItself() {
        let status = CUDAKernels.compilerStatus
        #expect(status.hasPrefix("NVRTC ") || status.contains("CCA_NVRTC"))
    }

    /// The launches `kernel("name", in: .source` in the CUDA wrappers' sources, as (source, kernel name).
    static func launchedKernels() throws -> [(source: KernelSource, name: String)] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/CCA/CUDA")
        let pattern = try NSRegularExpression(pattern: #"kernel\("([a-z0-9_]+)", in: \.([A-Za-z0-9]+)"#)
        let sources = Dictionary(uniqueKeysWithValues: KernelSource.allCases.map { ("\($0)", $0) })
        var found: [(KernelSource, String)] = []
        for case let file as URL in FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)!
        where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let name = String(text[Range(match.range(at: 1), in: text)!]), source = String(text[Range(match.range(at: 2), in: text)!])
                guard let kernelSource = sources[source] else {
                    Issue.record("\(file.lastPathComponent) launches \(name) from .\(source), which is no KernelSource")
                    continue
                }
                found.append((kernelSource, name))
            }
        }
        return found
    }
}
