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
    /// `[N, E, I]` → `[rows, E]`, 0 for rows that go to no expert. Up to ``maximumFewRows`` rows (a decode
    /// step) two launches: the gate|up product with SwiGLU and the weighted down product, each reading every
    /// chosen expert's weights once over all the multiprocessors. Above, grouping, the gate|up product over
    /// every expert's rows, SwiGLU and the weighted down product with its scatter: five launches whatever the
    /// experts chosen, no host round trip. With `hostReads` (a step outside a CUDA graph) and at least
    /// ``rowsForProductsPerExpert`` rows, the group sizes are read to the host once and each expert's two
    /// products run on cuBLAS over its gathered rows instead.
    static func forward(_ x: DeviceTensor, experts: DeviceBuffer, weights: DeviceTensor, gateUp: DeviceTensor,
                        down: DeviceTensor, hostReads: Bool = false, context: CUDAContext) throws -> DeviceTensor {
        let rows = x.count / max(1, x.shape.last!)
        if takesFewRows(rows: rows, gateUp: gateUp) {
            let y = try context.empty([rows, down.shape[1]], x.precision)
            _ = try forwardFewRows(x, experts: experts, weights: weights, gateUp: gateUp, down: down, into: .output(y), context: context)
            return y
        }
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

    /// Rows up to which the products take the few-row kernels of `moe_experts.cu` (`FEW_ROWS` there): a decode
    /// step's rows, whose inputs every block keeps in shared memory while the blocks split the weights' columns.
    static let maximumFewRows = 8

    /// Whether `rows` rows over `gateUp` `[N, 2I, E]` take the few-row kernels: at most ``maximumFewRows``, E
    /// and I multiples of 8 (16-byte loads), and the rows' inputs within a block's shared memory; else the
    /// grouped path.
    private static func takesFewRows(rows: Int, gateUp: DeviceTensor) -> Bool {
        let (hiddenWidth, width) = (gateUp.shape[1] / 2, gateUp.shape[2])
        return rows <= maximumFewRows && width % 8 == 0 && hiddenWidth % 8 == 0
            && rows * max(width, hiddenWidth) * 4 <= maximumSharedBytes
    }

    /// ZAYA's float32 residual stream, which the few-row down product merges its result into in place.
    struct StreamMerge {
        /// float32 `[rows, E]`, updated as ``ResidualScaling/forward(_:residual:)`` with the experts' output.
        let stream: DeviceTensor
        let scaling: DeviceResidualScaling
        /// The next layer's input RMSNorm of the merged stream, with a device counter (one int, 0 between
        /// launches) that lets the down product's last block write it.
        let norm: (weight: DeviceTensor, epsilon: Float, blocksDone: DeviceBuffer)?
    }

    /// ``forward(_:experts:weights:gateUp:down:hostReads:context:)`` merged into ZAYA's residual stream:
    /// `merge.stream` becomes `(y + b_h) ∘ s_h + (stream + b_r) ∘ s_r`, and with `merge.norm` the RMSNorm of the
    /// merged stream comes back in `x`'s precision. Up to ``maximumFewRows`` rows that is two launches (the
    /// gate|up product with SwiGLU, and the down product with the routing weight, the merge and the norm);
    /// more rows run the grouped products and ``ResidualScaling/merge(_:scaling:into:norm:precision:keepFloat:context:)``.
    static func forward(_ x: DeviceTensor, experts: DeviceBuffer, weights: DeviceTensor, gateUp: DeviceTensor, down: DeviceTensor,
                        merging merge: StreamMerge, hostReads: Bool, context: CUDAContext) throws -> DeviceTensor? {
        let rows = x.count / max(1, x.shape.last!)
        guard takesFewRows(rows: rows, gateUp: gateUp) else {
            let y = try forward(x, experts: experts, weights: weights, gateUp: gateUp, down: down, hostReads: hostReads, context: context)
            return try ResidualScaling.merge(y, scaling: merge.scaling, into: merge.stream,
                                             norm: merge.norm.map { ($0.weight, $0.epsilon) }, precision: x.precision, context: context).y
        }
        return try forwardFewRows(x, experts: experts, weights: weights, gateUp: gateUp, down: down, into: .stream(merge),
                                  context: context)
    }

    /// Where the few-row down product writes: a plain output `[rows, E]` in the storage precision, or the stream.
    private enum FewRowsDestination {
        case output(DeviceTensor)
        case stream(StreamMerge)
    }

    /// The two few-row kernels (for shapes ``takesFewRows(rows:gateUp:)`` accepts): `hidden` (float32
    /// `[rows, I]`) = SwiGLU of each row's gate|up product, then the weighted down product into `destination`;
    /// returns the merged stream's norm when asked for one.
    private static func forwardFewRows(_ x: DeviceTensor, experts: DeviceBuffer, weights: DeviceTensor, gateUp: DeviceTensor,
                                       down: DeviceTensor, into destination: FewRowsDestination, context: CUDAContext) throws
        -> DeviceTensor? {
        let (width, hiddenWidth) = (down.shape[1], down.shape[2])
        let rows = x.count / max(1, width)
        precondition(x.shape.last == width && gateUp.shape[1] == 2 * hiddenWidth && gateUp.shape[2] == width
                     && x.precision == gateUp.precision && down.precision == gateUp.precision
                     && takesFewRows(rows: rows, gateUp: gateUp),
                     "few-row experts: x \(x.shape), gate_up \(gateUp.shape), down \(down.shape)")
        var (output, merge): (DeviceTensor?, StreamMerge?) = (nil, nil)
        switch destination {
        case let .output(y): output = y
        case let .stream(streamMerge): merge = streamMerge
        }
        let normed = merge?.norm == nil ? nil : try context.empty([rows, width], x.precision)
        guard rows > 0 else { return normed }
        let warps = 8  // WARPS in moe_experts.cu: one output column per warp at a time
        let hidden = try context.empty([rows, hiddenWidth], .float32)
        let gateUpKernel = try context.kernel("moe_few_rows_gate_up", in: .moeExperts, precision: x.precision)
        try context.launch(gateUpKernel, grid: ((hiddenWidth + warps - 1) / warps, 1, 1), threads: 256, sharedBytes: rows * width * 4,
                           [x.address, experts.address, gateUp.address, hidden.address, Int32(rows), Int32(width),
                            Int32(hiddenWidth)])
        let downKernel = try context.kernel("moe_few_rows_down", in: .moeExperts, precision: x.precision)
        try context.launch(downKernel, grid: ((width + warps - 1) / warps, 1, 1), threads: 256, sharedBytes: rows * hiddenWidth * 4,
                           [hidden.address, experts.address, weights.address, down.address, Int32(rows), Int32(width),
                            Int32(hiddenWidth), output?.address ?? 0, merge?.stream.address ?? 0,
                            merge?.scaling.hiddenScale.address ?? 0, merge?.scaling.hiddenBias.address ?? 0,
                            merge?.scaling.residualScale.address ?? 0, merge?.scaling.residualBias.address ?? 0,
                            merge?.norm?.weight.address ?? 0, merge?.norm?.epsilon ?? 0, normed?.address ?? 0,
                            merge?.norm?.blocksDone.address ?? 0])
        return normed
    }
}
