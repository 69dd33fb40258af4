import CCAKernels

/// The one matrix-product routine of the CPU path: `C = alpha · op(A) · op(B) + beta · C`,
/// row-major with leading dimensions, as BLAS `sgemm` defines it.
///
/// Large products go to a BLAS library when one loads at run time (``BLASLibrary``); everything else,
/// and every product issued from inside an already parallel region (`parallel: false`), runs the
/// package's own kernel (the `CCAKernels` C target): GotoBLAS-style blocking around a register tile of
/// fused multiply-adds, compiled for AVX-512, AVX2 + FMA, NEON and a portable baseline and run with the
/// ``CPUKernelVariant/selected`` one. A parallel product is split into about two blocks of C per core.
public enum MatrixMultiply {
    /// Which implementation handles products that may use threads.
    public static var backendName: String {
        BLASLibrary.loaded.map { "BLAS (\($0.path)\($0.core.map { ", OpenBLAS core \($0)" } ?? ""))" }
            ?? kernelName(CPUKernelVariant.selected)
    }

    /// The name of the package's own kernel in `variant`, with its register tile.
    public static func kernelName(_ variant: CPUKernelVariant) -> String {
        "CCA kernel \(variant.rawValue), \(variant.tileRows)×\(variant.tileColumns) tile"
    }

    /// `C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C`; `op` transposes when the flag is set.
    /// With `beta == 0`, C is only written: whatever it held (NaN included) does not reach the result.
    ///
    /// - Parameters:
    ///   - lda, ldb, ldc: row strides (in elements) of A, B and C as stored.
    ///   - parallel: split the product across cores; pass `false` from inside a `parallelFor` body.
    ///   - kernels: run the package's kernel in this variant (never BLAS); nil picks BLAS for large
    ///     products when one is loaded, else ``CPUKernelVariant/selected``.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool = true, kernels: CPUKernelVariant? = nil
    ) {
        guard m > 0, n > 0 else { return }
        let product = m.multipliedReportingOverflow(by: n), work = product.partialValue.multipliedReportingOverflow(by: max(k, 1))
        let size = product.overflow || work.overflow ? Int.max : work.partialValue
        if kernels == nil, parallel, size >= 1 << 15, let blas = BLASLibrary.loaded,
           let dimensions = Int32Dimensions(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc) {
            blas.sgemm(101, transposeA ? 112 : 111, transposeB ? 112 : 111, dimensions.m, dimensions.n, dimensions.k,
                       alpha, a, dimensions.lda, b, dimensions.ldb, beta, c, dimensions.ldc)
            return
        }
        let variant = kernels ?? .selected
        let grid = TaskGrid(m: m, n: n, tasks: parallel && size >= 1 << 18 ? 2 * coreCount : 1, variant: variant)
        parallelFor(grid.rowBlocks * grid.columnBlocks) { task in
            let i0 = (task / grid.columnBlocks) * grid.blockRows, j0 = (task % grid.columnBlocks) * grid.blockColumns
            cca_sgemm(variant.kernel, transposeA, transposeB, min(grid.blockRows, m - i0), min(grid.blockColumns, n - j0),
                      k, alpha, a + (transposeA ? i0 : i0 * lda), lda, b + (transposeB ? j0 * ldb : j0), ldb,
                      beta, c + i0 * ldc + j0, ldc)
        }
    }

    /// Convenience for tensors: `x[rows, K] · Wᵀ` with `W` stored `[N, K]` (a linear layer's weight).
    public static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                              weight: UnsafePointer<Float>, outFeatures: Int,
                              into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, parallel: Bool = true) {
        gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
             b: weight, ldb: inFeatures, beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, parallel: parallel)
    }
}

/// How one product is split into blocks of C for the cores: about `tasks` blocks, whole register tiles,
/// as square as the shape allows. A task packs the A rows and B columns of its block, so the packing per
/// multiply-add, `1/blockColumns + 1/blockRows`, is smallest for square blocks.
private struct TaskGrid {
    let blockRows: Int, blockColumns: Int, rowBlocks: Int, columnBlocks: Int

    init(m: Int, n: Int, tasks: Int, variant: CPUKernelVariant) {
        var best = (rows: 1, columns: 1, cost: Double.infinity)
        for columns in 1...tasks where tasks % columns == 0 {
            let rows = tasks / columns, cost = Double(rows) / Double(m) + Double(columns) / Double(n)
            if cost < best.cost { best = (rows, columns, cost) }
        }
        func blockSize(_ extent: Int, _ parts: Int, _ tile: Int) -> Int {
            let tiles = (extent + tile - 1) / tile
            return (tiles + parts - 1) / parts * tile
        }
        blockRows = blockSize(m, best.rows, variant.tileRows)
        blockColumns = blockSize(n, best.columns, variant.tileColumns)
        rowBlocks = (m + blockRows - 1) / blockRows
        columnBlocks = (n + blockColumns - 1) / blockColumns
    }
}

/// The sizes of one product as BLAS's 32-bit integers, or nil when one does not fit (the package's own
/// kernel takes such a product instead).
private struct Int32Dimensions {
    let m, n, k, lda, ldb, ldc: Int32

    init?(m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int) {
        guard let m = Int32(exactly: m), let n = Int32(exactly: n), let k = Int32(exactly: k),
              let lda = Int32(exactly: lda), let ldb = Int32(exactly: ldb), let ldc = Int32(exactly: ldc) else { return nil }
        (self.m, self.n, self.k, self.lda, self.ldb, self.ldc) = (m, n, k, lda, ldb, ldc)
    }
}
