extension Linear {
    /// Output features converted per block: about 256 KB of `Float`, which stays in a core's L2 cache while
    /// every row of `x` meets it.
    static let storedBlockElements = 1 << 16
    /// Below this many rows (a decode step) dot products beat the matrix kernel, whose register tile is 6 rows tall.
    static let fewRows = 6

    /// `x` `[…, in]` → `[…, out]` for a weight `[out, in]` read in place from its file (``StoredTensor``),
    /// plus `bias` `[out]` when given: a BF16 (or F16, F64) weight is never converted whole.
    ///
    /// The output features are cut into blocks; each core converts a block to `Float` in a scratch buffer of
    /// its own and multiplies every row of `x` by it there. An aligned F32 weight is used where it lies.
    public static func forward(_ x: Tensor<Float>, stored weight: StoredTensor, bias: Tensor<Float>? = nil) -> Tensor<Float> {
        precondition(weight.shape.count == 2 && x.shape.last == weight.shape[1],
                     "linear: input \(x.shape) does not end in the in-features of weight '\(weight.name)' \(weight.shape)")
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        let rows = x.count / max(1, inFeatures)
        var y = Tensor<Float>(zeros: Array(x.shape.dropLast()) + [outFeatures])
        guard rows > 0, outFeatures > 0 else { return y }
        x.storage.withUnsafeBufferPointer { xs in y.storage.withUnsafeMutableBufferPointer { ys in
            let (xs, ys) = (xs.baseAddress!, ys.baseAddress!)
            if let floats = weight.floats {
                Float.gemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: 1, a: xs, lda: inFeatures,
                           b: floats, ldb: inFeatures, beta: 0, c: ys, ldc: outFeatures, parallel: true)
                return
            }
            let blockRows = max(1, min(outFeatures, storedBlockElements / max(1, inFeatures)))
            let blocks = (outFeatures + blockRows - 1) / blockRows
            let tasks = min(blocks, 4 * coreCount)
            parallelFor(tasks) { task in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * inFeatures)
                defer { scratch.deallocate() }
                for block in stride(from: task, to: blocks, by: tasks) {
                    let first = block * blockRows, count = min(blockRows, outFeatures - first)
                    weight.decode((first * inFeatures)..<((first + count) * inFeatures), into: scratch)
                    if rows < fewRows {
                        for o in 0..<count {
                            for r in 0..<rows {
                                ys[r * outFeatures + first + o] = dotProduct(xs + r * inFeatures, scratch + o * inFeatures, count: inFeatures)
                            }
                        }
                    } else {
                        Float.gemm(transposeA: false, transposeB: true, m: rows, n: count, k: inFeatures, alpha: 1, a: xs, lda: inFeatures,
                                   b: scratch, ldb: inFeatures, beta: 0, c: ys + first, ldc: outFeatures, parallel: false)
                    }
                }
            }
        }}
        if let bias {
            for row in 0..<rows { for c in 0..<outFeatures { y.storage[row * outFeatures + c] += bias.storage[c] } }
        }
        return y
    }
}

/// `Σ a[i]·b[i]` over `count` elements, 32 at a time in two vector accumulators.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var sum0 = SIMD16<Float>(), sum1 = SIMD16<Float>()
    var i = 0
    while i + 32 <= count {
        let (a0, b0) = (UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self), UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
        let (a1, b1) = (UnsafeRawPointer(a + i + 16).loadUnaligned(as: SIMD16<Float>.self), UnsafeRawPointer(b + i + 16).loadUnaligned(as: SIMD16<Float>.self))
        sum0.addProduct(a0, b0)
        sum1.addProduct(a1, b1)
        i += 32
    }
    var total = (sum0 + sum1).sum()
    while i < count {
        total += a[i] * b[i]
        i += 1
    }
    return total
}
