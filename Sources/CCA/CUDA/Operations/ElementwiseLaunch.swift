extension CUDAContext {
    /// Launches `kernel`, a flat grid-stride loop over `count` elements (`for_each_element` in
    /// `elementwise.cuh`), with 256 threads a block and enough blocks to fill the GPU 32 times over (no
    /// more: each thread then takes several elements).
    func launchElementwise(_ kernel: Kernel, count: Int, _ arguments: [any KernelArgument]) throws {
        guard count > 0 else { return }
        try launch(kernel, grid: (min((count + 255) / 256, 32 * multiprocessorCount), 1, 1), threads: 256, arguments)
    }

    /// How many consecutive elements a step of the row kernels takes (`Elements<N>` in `elementwise.cuh`): 8,
    /// as whole 16-byte words, when rows of `width` elements start 16-byte aligned in every one of
    /// `tensors`, else 1.
    static func elementsPerStep(width: Int, _ tensors: DeviceTensor...) -> Int {
        elementsPerStep(width: width, addresses: tensors.map(\.address))
    }

    /// ``elementsPerStep(width:_:)`` for rows that start at `addresses` and, in matrices of more rows, every
    /// `strides` elements after them.
    static func elementsPerStep(width: Int, addresses: [UInt64], strides: [Int] = []) -> Int {
        width % 8 == 0 && addresses.allSatisfy { $0 % 16 == 0 } && strides.allSatisfy { $0 % 8 == 0 } ? 8 : 1
    }
}
