extension CUDAContext {
    /// Launches `kernel`, a flat grid-stride loop over `count` elements (`for_each_element` in
    /// `elementwise.cuh`), with 256 threads a block and enough blocks to fill the GPU 32 times over (no
    /// more: each thread then takes several elements).
    func launchElementwise(_ kernel: Kernel, count: Int, _ arguments: [any KernelArgument]) throws {
        guard count > 0 else { return }
        try launch(kernel, grid: (min((count + 255) / 256, 32 * multiprocessorCount), 1, 1), threads: 256, arguments)
    }
}
