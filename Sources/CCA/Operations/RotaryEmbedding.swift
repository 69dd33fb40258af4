import RealModule

/// Rotary position embedding, NeoX "rotate-half" style, on `rotaryDim` channels of each head, and its
/// backward pass (the inverse rotation, since a rotation's transpose is its inverse).
///
/// Channel `i` and `i + rotaryDim/2` form a pair rotated by `position · theta^(−2i/rotaryDim)`; the
/// angles are computed in `Double`, so long positions stay exact. Their cosines and sines are computed
/// once per process for the first ``RotaryTable/positionLimit`` positions (``RotaryTable``), not per call.
public struct RotaryEmbedding: Sendable, Equatable {
    public let rotaryDim: Int
    public let theta: Double
    /// `theta^(−2i/rotaryDim)` for each pair `i`: what the GPU kernels read too, so both rotate alike.
    public let inverseFrequencies: [Double]

    public init(rotaryDim: Int, theta: Double) {
        self.rotaryDim = rotaryDim
        self.theta = theta
        inverseFrequencies = (0..<(rotaryDim / 2)).map { Double.pow(theta, -2 * Double($0) / Double(rotaryDim)) }
    }

    /// Rotates `x` in place: row `r` (of `x.count / positions.count` values) at `positions[r]`, its
    /// `heads` heads `headStride` apart, the rotary channels starting at `offset` within each head.
    public func forward<S: TensorScalar>(_ x: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int = 0) {
        rotate(&x, positions: positions, heads: heads, headStride: headStride, offset: offset, inverse: false)
    }

    /// The gradient through ``forward(_:positions:heads:headStride:offset:)``: `dy` rotated back in place.
    public func backward<S: TensorScalar>(_ dy: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int = 0) {
        rotate(&dy, positions: positions, heads: heads, headStride: headStride, offset: offset, inverse: true)
    }

    /// `cos` and `sin` of pair `i`'s angle at `position`, rounded to `S`.
    @inline(__always)
    func angle<S: TensorScalar>(_ position: Int, pair i: Int) -> (cos: S, sin: S) {
        let angle = Double(position) * inverseFrequencies[i]
        return (S(Double.cos(angle)), S(Double.sin(angle)))
    }

    @_specialize(where S == Float)
    func rotate<S: TensorScalar>(_ x: inout Tensor<S>, positions: [Int], heads: Int, headStride: Int, offset: Int,
                                 inverse: Bool) {
        let half = rotaryDim / 2, rows = positions.count
        guard half > 0, rows > 0 else { return }
        let rowStride = x.count / rows
        let table = RotaryTable<S>.shared(for: self, covering: min(positions.max()!, RotaryTable<S>.positionLimit) + 1)
        x.storage.withUnsafeMutableBufferPointer { buffer in table.values.withUnsafeBufferPointer { values in
            let (data, values) = (buffer.baseAddress!, values.baseAddress!)
            parallelRanges(rows, costPerItem: heads * half * 6) { range in
                // Rows at positions outside the table: their own angles, in this buffer.
                let own = UnsafeMutablePointer<S>.allocate(capacity: 2 * half)
                defer { own.deallocate() }
                for r in range {
                    let position = positions[r]
                    let cosines: UnsafePointer<S>
                    if (0..<table.positions).contains(position) {
                        cosines = values + position * 2 * half
                    } else {
                        for i in 0..<half { (own[i], own[half + i]) = angle(position, pair: i) }
                        cosines = UnsafePointer(own)
                    }
                    let sines = cosines + half, sign: S = inverse ? -1 : 1
                    for h in 0..<heads {
                        let head = data + r * rowStride + h * headStride + offset
                        for i in 0..<half {
                            let (x1, x2, s) = (head[i], head[i + half], sign * sines[i])
                            head[i] = x1 * cosines[i] - x2 * s
                            head[i + half] = x2 * cosines[i] + x1 * s
                        }
                    }
                }
            }
        }}
    }
}

/// The cosines and sines of a ``RotaryEmbedding``'s angles at positions `0..<positions`, in `S`: row `p`
/// holds the `rotaryDim / 2` cosines, then the sines. One table per (rotaryDim, theta, scalar type) is
/// shared by the whole process and grows (by doubling) to the positions asked for, up to ``positionLimit``.
struct RotaryTable<S: TensorScalar>: Sendable {
    let positions: Int
    let values: [S]

    /// The most positions a table holds: 2^14 positions of 64 pairs are 8 MiB of float32. Rows at later
    /// positions (long decodes) compute their own angles, a few per call.
    static var positionLimit: Int { 1 << 14 }

    /// The shared table for `embedding`, holding at least `min(covering, positionLimit)` positions.
    static func shared(for embedding: RotaryEmbedding, covering count: Int) -> RotaryTable {
        let key = RotaryTableKey(rotaryDim: embedding.rotaryDim, theta: embedding.theta, scalar: ObjectIdentifier(S.self))
        let wanted = min(count, positionLimit)
        return rotaryTables.withLock { tables in
            if let table = tables[key] as? RotaryTable, table.positions >= wanted { return table }
            var positions = 1024
            while positions < wanted { positions *= 2 }
            let table = RotaryTable(embedding, positions: min(positions, positionLimit))
            tables[key] = table
            return table
        }
    }

    init(_ embedding: RotaryEmbedding, positions: Int) {
        let half = embedding.rotaryDim / 2
        self.positions = positions
        values = [S](count: positions * 2 * half) { buffer in
            let values = buffer.baseAddress!
            parallelRanges(positions, costPerItem: 40 * half) { range in
                for position in range {
                    for i in 0..<half {
                        (values[position * 2 * half + i], values[position * 2 * half + half + i]) = embedding.angle(position, pair: i)
                    }
                }
            }
        }
    }
}

private struct RotaryTableKey: Hashable {
    let rotaryDim: Int, theta: Double, scalar: ObjectIdentifier
}

private let rotaryTables = Locked<[RotaryTableKey: any Sendable]>([:])
