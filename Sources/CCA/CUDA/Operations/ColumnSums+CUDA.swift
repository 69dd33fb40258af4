/// Deterministic float32 sums over the rows of a matrix, one per column (`column_sums.cu` on
/// `reduce.cuh`): bias and weight-vector gradients, and the second pass of every other reduction over rows.
///
/// No atomics: blocks sum fixed chunks of rows in a fixed order, so each run gives the same bits.
enum ColumnSums {
    /// Rows a block sums in one pass (256: 32 per row lane); more rows make more chunks, summed again.
    static let rowsPerChunk = 256

    /// Chunks of rows the first pass of a reduction over `rows` rows splits into (at most the grid's 65535).
    static func chunks(rows: Int) -> Int { min(65_535, max(1, (rows + rowsPerChunk - 1) / rowsPerChunk)) }

    /// Writes the sums over the rows of `x` (T, or float32) into `out` `[x.columns]` (float32), or adds
    /// them to it with `accumulate`.
    static func sum(_ x: DeviceMatrix, into out: DeviceTensor, accumulate: Bool, context: CUDAContext) throws {
        // The float32 build of column_sums reads float32; the bfloat16 build reads bfloat16.
        let kernel = try context.kernel("column_sums", in: .columnSums, precision: x.precision)
        try reduce(rows: x.rows, width: x.columns, into: out, accumulate: accumulate, context: context) { grid, destination, add in
            try context.launch(kernel, grid: grid, threads: 256,
                               [x.address, Int64(x.rows), Int32(x.columns), Int64(x.stride), destination, add])
        }
    }

    /// Runs the first pass of a `reduce_columns` kernel over `rows` rows of `width` columns, then sums its
    /// partial sums again until one row is left, in `out` `[width]` (float32).
    ///
    /// `firstPass(grid, destination, accumulate)` launches the kernel on `grid` (blocks of 256 threads)
    /// with its last two arguments `destination` and `accumulate`.
    static func reduce(rows: Int, width: Int, into out: DeviceTensor, accumulate: Bool, context: CUDAContext,
                       firstPass: ((x: Int, y: Int, z: Int), UInt64, Int32) throws -> Void) throws {
        precondition(out.precision == .float32 && out.count == width, "a column sum of \(width) columns into \(out.shape) \(out.precision)")
        guard width > 0 else { return }
        let chunks = chunks(rows: rows)
        let grid = (x: (width + 31) / 32, y: chunks, z: 1)  // REDUCE_COLUMNS columns a block
        guard chunks > 1 else { return try firstPass(grid, out.address, accumulate ? 1 : 0) }
        let partials = try context.empty([chunks, width], .float32)
        try firstPass(grid, partials.address, 0)
        try sum(partials.matrix, into: out, accumulate: accumulate, context: context)
    }
}
