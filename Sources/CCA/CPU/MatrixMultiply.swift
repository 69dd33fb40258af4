/// The one matrix-product routine of the CPU path: `C = alpha · op(A) · op(B) + beta · C`,
/// row-major with leading dimensions, as BLAS `sgemm` defines it.
///
/// Large products go to a BLAS library when one loads at run time (``BLASLibrary``); everything else,
/// and every product issued from inside an already parallel region (`parallel: false`), runs the
/// pure-Swift kernel below: GotoBLAS-style blocking (K blocks of `kc`, A packed in 6-row panels,
/// B in 16-column panels) around a 6×16 register tile of fused multiply-adds.
public enum MatrixMultiply {
    /// Which implementation handles products that may use threads.
    public static var backendName: String {
        BLASLibrary.loaded.map { "BLAS (\($0.path))" } ?? "Swift SIMD kernel"
    }

    /// `C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C`; `op` transposes when the flag is set.
    ///
    /// - Parameters:
    ///   - lda, ldb, ldc: row strides (in elements) of A, B and C as stored.
    ///   - parallel: split the product across cores; pass `false` from inside a `parallelFor` body.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool = true
    ) {
        guard m > 0, n > 0 else { return }
        if parallel, let blas = BLASLibrary.loaded, m * n * k >= 1 << 15 {
            blas.sgemm(101, transposeA ? 112 : 111, transposeB ? 112 : 111, Int32(m), Int32(n), Int32(k),
                       alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        let operands = Operands(a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb, transposeB: transposeB,
                                c: c, ldc: ldc, k: k, alpha: alpha, beta: beta)
        let rowTiles = (m + tileRows - 1) / tileRows, columnTiles = (n + tileColumns - 1) / tileColumns
        let tasks = parallel && m * n * k >= 1 << 18 ? rowTiles * columnTiles : 1
        if tasks == 1 {
            operands.multiplyBlock(rows: 0..<m, columns: 0..<n)
            return
        }
        parallelFor(tasks) { task in
            let rowStart = (task / columnTiles) * tileRows, columnStart = (task % columnTiles) * tileColumns
            operands.multiplyBlock(rows: rowStart..<min(m, rowStart + tileRows),
                                   columns: columnStart..<min(n, columnStart + tileColumns))
        }
    }

    /// Convenience for tensors: `x[rows, K] · Wᵀ` with `W` stored `[N, K]` (a linear layer's weight).
    public static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                              weight: UnsafePointer<Float>, outFeatures: Int,
                              into y: UnsafeMutablePointer<Float>, accumulate: Bool = false, parallel: Bool = true) {
        gemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
             b: weight, ldb: inFeatures, beta: accumulate ? 1 : 0, c: y, ldc: outFeatures, parallel: parallel)
    }

    static let panelRows = 6, panelColumns = 16, depthBlock = 256
    static let tileRows = 96, tileColumns = 256
}

private struct Operands {
    let a: UnsafePointer<Float>, lda: Int, transposeA: Bool
    let b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
    let c: UnsafeMutablePointer<Float>, ldc: Int
    let k: Int, alpha: Float, beta: Float

    @inline(__always) func elementA(_ i: Int, _ p: Int) -> Float { transposeA ? a[p * lda + i] : a[i * lda + p] }
    @inline(__always) func elementB(_ p: Int, _ j: Int) -> Float { transposeB ? b[j * ldb + p] : b[p * ldb + j] }

    /// Computes the C block `rows × columns` completely, packing its own panels.
    func multiplyBlock(rows: Range<Int>, columns: Range<Int>) {
        let mr = MatrixMultiply.panelRows, nr = MatrixMultiply.panelColumns
        for i in rows {
            let row = c + i * ldc
            if beta == 0 {
                for j in columns { row[j] = 0 }
            } else if beta != 1 {
                for j in columns { row[j] *= beta }
            }
        }
        let rowPanels = (rows.count + mr - 1) / mr, columnPanels = (columns.count + nr - 1) / nr
        let kc = min(k, MatrixMultiply.depthBlock)
        let packedA = UnsafeMutablePointer<Float>.allocate(capacity: rowPanels * mr * kc)
        let packedB = UnsafeMutablePointer<Float>.allocate(capacity: columnPanels * nr * kc)
        defer { packedA.deallocate(); packedB.deallocate() }
        var depthStart = 0
        while depthStart < k {
            let depth = min(kc, k - depthStart)
            packA(rows: rows, depth: depthStart..<(depthStart + depth), into: packedA)
            packB(columns: columns, depth: depthStart..<(depthStart + depth), into: packedB)
            for columnPanel in 0..<columnPanels {
                let j0 = columns.lowerBound + columnPanel * nr
                let width = min(nr, columns.upperBound - j0)
                for rowPanel in 0..<rowPanels {
                    let i0 = rows.lowerBound + rowPanel * mr
                    microKernel(depth: depth, a: packedA + rowPanel * mr * depth, b: packedB + columnPanel * nr * depth,
                                c: c + i0 * ldc + j0, height: min(mr, rows.upperBound - i0), width: width)
                }
            }
            depthStart += depth
        }
    }

    /// A panels: for each group of 6 rows, `depth` columns of 6 contiguous values (zero past the edge).
    private func packA(rows: Range<Int>, depth: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let mr = MatrixMultiply.panelRows
        var out = buffer
        for i0 in stride(from: rows.lowerBound, to: rows.upperBound, by: mr) {
            for p in depth {
                for r in 0..<mr { out[r] = i0 + r < rows.upperBound ? elementA(i0 + r, p) : 0 }
                out += mr
            }
        }
    }

    /// B panels: for each group of 16 columns, `depth` rows of 16 contiguous values (zero past the edge).
    private func packB(columns: Range<Int>, depth: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let nr = MatrixMultiply.panelColumns
        var out = buffer
        for j0 in stride(from: columns.lowerBound, to: columns.upperBound, by: nr) {
            let width = min(nr, columns.upperBound - j0)
            for p in depth {
                if !transposeB && width == nr {
                    (out).update(from: b + p * ldb + j0, count: nr)
                } else {
                    for j in 0..<nr { out[j] = j < width ? elementB(p, j0 + j) : 0 }
                }
                out += nr
            }
        }
    }

    /// The 6×16 register tile: C[0..<height, 0..<width] += alpha · Apanel · Bpanel.
    @inline(__always)
    private func microKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             c: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>()
        var c3 = SIMD16<Float>(), c4 = SIMD16<Float>(), c5 = SIMD16<Float>()
        var pa = a, pb = UnsafeRawPointer(b)
        for _ in 0..<depth {
            let bv = pb.loadUnaligned(as: SIMD16<Float>.self)
            c0.addProduct(SIMD16(repeating: pa[0]), bv)
            c1.addProduct(SIMD16(repeating: pa[1]), bv)
            c2.addProduct(SIMD16(repeating: pa[2]), bv)
            c3.addProduct(SIMD16(repeating: pa[3]), bv)
            c4.addProduct(SIMD16(repeating: pa[4]), bv)
            c5.addProduct(SIMD16(repeating: pa[5]), bv)
            pa += 6
            pb += 64
        }
        store(c0, row: 0, c: c, height: height, width: width)
        store(c1, row: 1, c: c, height: height, width: width)
        store(c2, row: 2, c: c, height: height, width: width)
        store(c3, row: 3, c: c, height: height, width: width)
        store(c4, row: 4, c: c, height: height, width: width)
        store(c5, row: 5, c: c, height: height, width: width)
    }

    @inline(__always)
    private func store(_ values: SIMD16<Float>, row: Int, c: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        guard row < height else { return }
        let destination = c + row * ldc
        if width == 16 {
            let raw = UnsafeMutableRawPointer(destination)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD16<Float>.self) + alpha * values, as: SIMD16<Float>.self)
        } else {
            for j in 0..<width { destination[j] += alpha * values[j] }
        }
    }
}
