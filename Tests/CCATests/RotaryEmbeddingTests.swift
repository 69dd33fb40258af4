@testable import CCA
import Testing

/// RoPE through its cached table (and past it) against the float64 rotation written out in `Reference.rope`.
@Suite struct RotaryEmbeddingTests {
    /// Rows at positions inside the shared table, past its limit, and restarting (packed documents), with
    /// enough rows that the rotation splits over the cores.
    @Test(arguments: [(16, 1.0), (16, 0.5), (6, 1.0)])
    func forwardMatchesFloat64(headDim: Int, fraction: Double) {
        let rotaryDim = Int(Double(headDim) * fraction), heads = 3, theta = 10_000.0
        let limit = RotaryTable<Float>.positionLimit
        let positions = Array(0..<700) + Array(0..<300) + [limit - 1, limit, limit + 12_345, 3 * limit]
        let rotary = RotaryEmbedding(rotaryDim: rotaryDim, theta: theta)
        let x = Tensor<Float>(randomNormal: [positions.count, heads * headDim], seed: 7)
        var y = x
        rotary.forward(&y, positions: positions, heads: heads, headStride: headDim)
        var worst = 0.0
        for (row, position) in positions.enumerated() {
            for h in 0..<heads {
                let start = row * heads * headDim + h * headDim
                let head = x.storage[start..<(start + headDim)].map(Double.init)
                let expected = Reference.rope(head, position: position, rotaryDim: rotaryDim, theta: theta)
                for i in 0..<headDim { worst = max(worst, abs(Double(y.storage[start + i]) - expected[i])) }
            }
        }
        #expect(worst < 2e-6, "largest difference \(worst)")
    }

    /// The backward pass is the inverse rotation: it brings the rotated rows back.
    @Test func backwardUndoesForward() {
        let positions = Array(0..<900) + [RotaryTable<Float>.positionLimit + 5]
        let rotary = RotaryEmbedding(rotaryDim: 16, theta: 500_000)
        let x = Tensor<Float>(randomNormal: [positions.count, 2 * 16], seed: 8)
        var y = x
        rotary.forward(&y, positions: positions, heads: 2, headStride: 16)
        #expect(y.relativeError(to: x) > 0.1)
        rotary.backward(&y, positions: positions, heads: 2, headStride: 16)
        #expect(y.relativeError(to: x) < 1e-6)
    }
}
