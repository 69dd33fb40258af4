extension MixtureOfExperts {
    /// The rows of a layer grouped by expert, on the device (`moe_grouping.cu`): expert `e`'s rows are the
    /// slots `offsets[e] ..< offsets[e + 1]` of `order`, which holds each slot's original row, in row order.
    struct DeviceGroups {
        /// int32 `[experts + 1]` and `[rows]` (slots past `offsets[experts]` unwritten).
        let offsets: DeviceBuffer, order: DeviceBuffer
        let rows: Int, experts: Int
    }

    /// The dynamic shared memory a block may opt in to on Hopper (227 KiB).
    static let maximumSharedBytes = 227 * 1024

    /// Experts a layer may have on the GPU: the grouping kernel gives each its own thread of one block.
    static let maximumDeviceExperts = 256

    /// Groups the rows of `experts` (int32 `[rows]`, -1 for a row that goes to no expert) by expert.
    /// - Throws: ``CUDAError/unsupported(_:)`` for more than ``maximumDeviceExperts`` experts.
    static func group(experts: DeviceBuffer, rows: Int, expertCount: Int, context: CUDAContext) throws -> DeviceGroups {
        guard (1...maximumDeviceExperts).contains(expertCount) else {
            throw CUDAError.unsupported("\(expertCount) experts in one layer (the GPU grouping takes 1 to \(maximumDeviceExperts))")
        }
        let offsets = try context.allocator.allocate((expertCount + 1) * 4), order = try context.allocator.allocate(max(1, rows) * 4)
        let kernel = try context.kernel("moe_group", in: .moeGrouping, precision: .float32)
        try context.launch(kernel, grid: (1, 1, 1), threads: 256,  // GROUP_THREADS in moe_grouping.cu
                           [experts.address, Int32(rows), Int32(expertCount), offsets.address, order.address])
        return DeviceGroups(offsets: offsets, order: order, rows: rows, experts: expertCount)
    }

    /// The grouped product of `moe_experts.cu` over every expert's slots at once: `out[slot] = a[row] · W_eᵀ`
    /// with `weight` `[experts, out, in]`. With `gather`, slot `s` reads row `order[s]` of `a`, else row `s`;
    /// with `scatter` (the router's float32 weights `[rows]`), slot `s`'s result times the weight of row
    /// `order[s]` goes to that row of `out`, else to row `s`.
    /// - Throws: ``CUDAError/unsupported(_:)`` when `in` is not a multiple of 8 (the kernel's 16-byte loads) or
    ///   its tile of input rows does not fit a block's shared memory.
    static func groupedProduct(_ a: DeviceTensor, weight: DeviceTensor, groups: DeviceGroups, gather: Bool,
                               scatter rowWeights: DeviceTensor?, into out: DeviceTensor, context: CUDAContext) throws {
        let (experts, outFeatures, inFeatures) = (weight.shape[0], weight.shape[1], weight.shape[2])
        precondition(experts == groups.experts && a.shape.last == inFeatures && out.shape.last == outFeatures
                     && a.precision == weight.precision && out.precision == weight.precision,
                     "grouped product: a \(a.shape), weight \(weight.shape), out \(out.shape)")
        // ROWS in moe_experts.cu; 2 columns per warp, so that a decode step's one expert (a tile of one row)
        // spreads its weights over twice as many blocks as the multiprocessors.
        let rowsPerTile = 8, columnsPerBlock = 16
        guard inFeatures % 8 == 0, rowsPerTile * inFeatures * 4 <= maximumSharedBytes else {
            throw CUDAError.unsupported("an expert input width of \(inFeatures) (the grouped product needs a multiple of 8, "
                                        + "at most \(maximumSharedBytes / (rowsPerTile * 4)))")
        }
        guard groups.rows > 0 else { return }
        let kernel = try context.kernel("moe_grouped_product", in: .moeExperts, precision: weight.precision)
        // The groups make at most ceil(rows / 8) + experts - 1 tiles (each ends in a partial one) and at most
        // one per row: one block per possible tile, no idle block for a one-row step; a block takes the
        // tiles past the grid in turn (the kernel works with any grid).
        let tiles = min(groups.rows, (groups.rows + rowsPerTile - 1) / rowsPerTile + experts - 1)
        try context.launch(kernel, grid: (tiles, (outFeatures + columnsPerBlock - 1) / columnsPerBlock, 1),
                           threads: 256, sharedBytes: min(groups.rows, rowsPerTile) * inFeatures * 4,
                           [a.address, gather ? groups.order.address : 0, weight.address, groups.offsets.address, Int32(experts),
                            Int32(inFeatures), Int32(outFeatures), Int32(columnsPerBlock),
                            rowWeights == nil ? 0 : groups.order.address, rowWeights?.address ?? 0, out.address])
    }

    /// Rows from which ``forward(_:experts:weights:gateUp:down:hostReads:context:)``, when allowed host reads,
    /// runs each expert's products on cuBLAS (tensor cores): the grouped product's tiles of 8 rows read an
    /// expert's weights once per tile, which is what a decode step wants and far from the tensor cores' rate
    /// for a prompt of thousands of rows. Not measured as the crossover: a prompt's step is well above it.
    static let rowsForProductsPerExpert = 256

    /// ``forward(_:experts:weights:gateUp:down:)`` on the GPU: `x` `[rows, E]`, each row's expert (int32
    /// `[rows]`, -1: none) and float32 weight `[rows]`, the stacked `gateUp` `[N, 2I, E]` and `down`
    /// `[N, E, I]` → `[rows, E]`, 0 for rows that go to no expert. Grouping, the gate|up product over every
    /// expert's rows, SwiGLU and the weighted down product with its scatter: five launches whatever the
    /// experts chosen, no host round trip. With `hostReads` (a step outside a CUDA graph) and at least
    /// ``rowsForProductsPerExpert`` rows, the group sizes are read to the host once and each expert's two
    /// products run on cuBLAS over its gathered rows instead.
    static func forward(_ x: DeviceTensor, experts: DeviceBuffer, weights: DeviceTensor, gateUp: DeviceTensor,
                        down: DeviceTensor, hostReads: Bool = false, context: CUDAContext) throws -> DeviceTensor {
        let rows = x.count / max(1, x.shape.last!)
        let groups = try group(experts: experts, rows: rows, expertCount: gateUp.shape[0], context: context)
        if hostReads && rows >= rowsForProductsPerExpert {
            return try forwardPerExpert(x, groups: groups, weights: weights, gateUp: gateUp, down: down, context: context)
        }
        let grouped = try context.empty([rows, gateUp.shape[1]], x.precision)
        try groupedProduct(x, weight: gateUp, groups: groups, gather: true, scatter: nil, into: grouped, context: context)
        let hidden = try SwiGLU.forward(grouped, context: context)
        let y = try context.empty([rows, down.shape[1]], x.precision)
        try context.zero(address: y.address, count: y.count, precision: y.precision)
        try groupedProduct(hidden, weight: down, groups: groups, gather: false, scatter: weights, into: y, context: context)
        return y
    }

    /// The products of ``forward(_:experts:weights:gateUp:down:hostReads:context:)`` per expert on cuBLAS: the
    /// rows gathered in group order, expert `e`'s slots `offsets[e] ..< offsets[e + 1]` (read to the host)
    /// through its gate|up and down weights, SwiGLU over all slots, and the weighted scatter back to the rows.
    private static func forwardPerExpert(_ x: DeviceTensor, groups: DeviceGroups, weights: DeviceTensor, gateUp: DeviceTensor,
                                         down: DeviceTensor, context: CUDAContext) throws -> DeviceTensor {
        let (width, hiddenWidth) = (x.shape.last!, down.shape[2])
        let offsets = try context.download(Int32.self, groups.experts + 1, from: groups.offsets).map(Int.init)
        let slots = offsets[groups.experts]
        let y = try context.empty([groups.rows, width], x.precision)
        try context.zero(address: y.address, count: y.count, precision: y.precision)
        guard slots > 0 else { return y }
        let gathered = try context.empty([slots, width], x.precision)
        let gather = try context.kernel("moe_gather_rows", in: .moeExperts, precision: x.precision)
        try context.launchElementwise(gather, count: gathered.count, [x.address, groups.order.address, gathered.address,
                                                                      Int64(slots), Int32(width)])
        let grouped = try context.empty([slots, 2 * hiddenWidth], x.precision)
        for (expert, (start, end)) in zip(offsets, offsets.dropFirst()).enumerated() where end > start {
            try Linear.forward(gathered.view([end - start, width], at: start * width).matrix,
                               gateUp.view([2 * hiddenWidth, width], at: expert * 2 * hiddenWidth * width),
                               into: grouped.view([end - start, 2 * hiddenWidth], at: start * 2 * hiddenWidth).matrix,
                               context: context)
        }
        let hidden = try SwiGLU.forward(grouped, context: context)
        let products = try context.empty([slots, width], x.precision)
        for (expert, (start, end)) in zip(offsets, offsets.dropFirst()).enumerated() where end > start {
            try Linear.forward(hidden.view([end - start, hiddenWidth], at: start * hiddenWidth).matrix,
                               down.view([width, hiddenWidth], at: expert * width * hiddenWidth),
                               into: products.view([end - start, width], at: start * width).matrix, context: context)
        }
        let scatter = try context.kernel("moe_scatter_rows", in: .moeExperts, precision: x.precision)
        try context.launchElementwise(scatter, count: products.count, [products.address, groups.order.address, weights.address,
                                                                       y.address, Int64(slots), Int32(width)])
        return y
    }
}
