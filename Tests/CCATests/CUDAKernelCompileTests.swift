@testable import CCA
import Testing

/// Every embedded CUDA kernel compiles for Hopper with NVRTC, on a machine with no GPU.
///
/// NVRTC is looked up as the library does (`$CCA_NVRTC`, the loader's path, /usr/local/cuda, pip's
/// `nvidia-cuda-nvrtc` wheels); the tests are skipped only when none of those has it.
@Suite struct CUDAKernelCompileTests {
    @Test(.enabled(if: CUDAKernels.compilerAvailable,
                   "NVRTC not found: `python3 -m pip install nvidia-cuda-nvrtc` or set CCA_NVRTC=/path/to/libnvrtc.so.13"))
    func everyKernelCompilesForHopper() throws {
        let builds = try CUDAKernels.compileAll(architecture: "sm_90a")
        // Thirteen sources; the tensor-core, wgmma and float32-only kernels are built for one precision each,
        // the others for both.
        #expect(builds.count == 20)
        for build in builds { #expect(build.byteCount > 0, "\(build.build) produced an empty CUBIN") }
    }

    /// The attention kernels at the head dims the layers use besides the default 128: 64, MLA's 96/64, and
    /// dims that are not multiples of 16 (20/8), which take the zero-padded paths.
    @Test(.enabled(if: CUDAKernels.compilerAvailable, "NVRTC not found"),
          arguments: [(64, 64), (96, 64), (20, 8)])
    func attentionKernelsCompileForOtherHeadDims(_ keyDim: Int, _ valueDim: Int) throws {
        for source in [KernelSource.attentionTensorCores, .attentionFloat32, .attentionBackwardTensorCores, .attentionBackwardFloat32] {
            let variant = KernelVariant(source: source, precision: source.precisions[0],
                                        defines: ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim])
            #expect(try KernelCompiler.cubin(variant, architecture: "sm_90a", diskCache: nil).count > 0, "\(variant)")
        }
    }

    @Test func compilerStatusExplainsItself() {
        let status = CUDAKernels.compilerStatus
        #expect(status.hasPrefix("NVRTC ") || status.contains("CCA_NVRTC"))
    }
}
