import CCA
import Testing

/// Every embedded CUDA kernel compiles for Hopper with NVRTC, on a machine with no GPU.
///
/// NVRTC is looked up as the library does (`$CCA_NVRTC`, the loader's path, /usr/local/cuda, pip's
/// `nvidia-cuda-nvrtc` wheels); the test is skipped only when none of those has it.
@Suite struct CUDAKernelCompileTests {
    @Test(.enabled(if: CUDAKernels.compilerAvailable,
                   "NVRTC not found: `python3 -m pip install nvidia-cuda-nvrtc` or set CCA_NVRTC=/path/to/libnvrtc.so.13"))
    func everyKernelCompilesForHopper() throws {
        let builds = try CUDAKernels.compileAll(architecture: "sm_90a")
        // Nine sources; the attention kernels and the tensor-core prologue are built for one precision
        // each, the others for both.
        #expect(builds.count == 14)
        for build in builds { #expect(build.byteCount > 0, "\(build.build) produced an empty CUBIN") }
    }

    @Test func compilerStatusExplainsItself() {
        let status = CUDAKernels.compilerStatus
        #expect(status.hasPrefix("NVRTC ") || status.contains("CCA_NVRTC"))
    }
}
