@testable import CCA
import Testing

/// Properties that hold for any weights: causality, padding, the QK-mean identity, the value shift's reach.
@Suite struct LayerPropertyTests {
    static func layers() throws -> [(String, any AttentionLayer<Float>)] {
        [
            ("mha", try GQA<Float>(config: .mha(hiddenSize: 32, heads: 4), seed: 1)),
            ("gqa", try GQA<Float>(config: GQAConfig(hiddenSize: 32, queryHeads: 4, keyValueHeads: 2), seed: 2)),
            ("mla", try MLA<Float>(config: MLAConfig(hiddenSize: 32, heads: 2, queryRank: 16, keyValueRank: 8, noPEHeadDim: 8,
                                              ropeHeadDim: 4, valueHeadDim: 8), seed: 3)),
            ("cca", try CCA<Float>(config: CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8), seed: 4)),
            ("ccgqa", try CCA<Float>(config: CCAConfig(hiddenSize: 32, queryHeads: 4, keyValueHeads: 1, headDim: 8, rope: RoPEConfig(theta: 10_000, fraction: 0.5)), seed: 5)),
        ]
    }

    /// Rows `t` of a `[B,S,W]` tensor for sequence `b`.
    static func rows(_ t: Tensor<Float>, _ b: Int, _ range: Range<Int>) -> [Float] {
        let (s, w) = (t.shape[1], t.shape[2])
        return Array(t.storage[((b * s + range.lowerBound) * w)..<((b * s + range.upperBound) * w)])
    }

    @Test func changingATokenNeverChangesEarlierOutputs() throws {
        for (name, layer) in try Self.layers() {
            let x = Tensor<Float>(randomNormal: [2, 9, 32], seed: 20)
            let y = try layer.forward(x)
            for t in [0, 4, 8] {
                var changed = x
                for c in 0..<32 { changed.storage[(1 * 9 + t) * 32 + c] += 3 }
                let z = try layer.forward(changed)
                #expect(Self.rows(z, 1, 0..<t) == Self.rows(y, 1, 0..<t), "\(name): position \(t) leaked backwards")
                #expect(Self.rows(z, 1, t..<(t + 1)) != Self.rows(y, 1, t..<(t + 1)), "\(name): position \(t) had no effect")
                #expect(Self.rows(z, 0, 0..<9) == Self.rows(y, 0, 0..<9), "\(name): batch rows mixed")
            }
        }
    }

    @Test func paddedRowsDoNotChangeValidOutputs() throws {
        let mask = try Tensor<Float>(shape: [2, 8], storage: [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0])
        for (name, layer) in try Self.layers() {
            let x = Tensor<Float>(randomNormal: [2, 8, 32], seed: 21)
            var scrambled = x
            for row in 0..<16 where mask.storage[row] == 0 {
                for c in 0..<32 { scrambled.storage[row * 32 + c] = Float(c) - 100 }
            }
            let y = try layer.forward(x, mask: mask), z = try layer.forward(scrambled, mask: mask)
            #expect(y == z, "\(name): padded content leaked")
            for row in 0..<16 where mask.storage[row] == 0 {
                #expect(y.storage[(row * 32)..<(row * 32 + 32)].allSatisfy { $0 == 0 }, "\(name): padded output not zero")
            }
        }
    }

    /// Left padding acts like a shorter sequence: RoPE only sees relative positions, and the zeroed rows
    /// look exactly like the convolution's and the value shift's zero padding.
    @Test func leftPaddingEqualsTheUnpaddedSequence() throws {
        for (name, layer) in try Self.layers() {
            let x = Tensor<Float>(randomNormal: [1, 5, 32], seed: 22)
            let padded = try Tensor<Float>(shape: [1, 8, 32], storage: [Float](repeating: 7, count: 3 * 32) + x.storage)
            let mask = try Tensor<Float>(shape: [1, 8], storage: [0, 0, 0, 1, 1, 1, 1, 1])
            let y = try layer.forward(x), z = try layer.forward(padded, mask: mask)
            let tail = try Tensor<Float>(shape: [1, 5, 32], storage: Self.rows(z, 0, 3..<8))
            #expect(tail.relativeError(to: y) < 1e-5, "\(name)")
        }
    }

    /// With g = 1, no convolution and the QK-mean on, q = q0 + (q0+k0)/2 and k = k0 + (q0+k0)/2: the same
    /// layer as one without the mean whose projections are (3Wq + Wk)/2 and (Wq + 3Wk)/2.
    @Test func qkMeanWithOneGroupIsTheAverageOfQ0AndK0() throws {
        let config = CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8, convolutions: 0)
        let layer = try CCA<Float>(config: config, seed: 23)
        var folded = layer.weights
        let wq = layer.weights["qkv_proj.q_proj.weight"]!.storage, wk = layer.weights["qkv_proj.k_proj.weight"]!.storage
        folded["qkv_proj.q_proj.weight"]!.storage = zip(wq, wk).map { (3 * $0 + $1) / 2 }
        folded["qkv_proj.k_proj.weight"]!.storage = zip(wq, wk).map { ($0 + 3 * $1) / 2 }
        var withoutMean = config
        withoutMean.qkMean = false
        let equivalent = try CCA<Float>(config: withoutMean, weights: folded)
        let x = Tensor<Float>(randomNormal: [2, 6, 32], seed: 24)
        #expect(try layer.forward(x).relativeError(to: equivalent.forward(x)) < 1e-5)
        #expect(try layer.forward(x).relativeError(to: CCA<Float>(config: withoutMean, weights: layer.weights).forward(x)) > 1e-3)
    }

    @Test func valueShiftReadsOnlyTheCurrentAndPreviousToken() throws {
        for keyValueHeads in [1, 2] {
            let config = CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: keyValueHeads, headDim: 8)
            let layer = try CCA<Float>(config: config, seed: 25)
            let x = Tensor<Float>(randomNormal: [1, 7, 32], seed: 26)
            let v = try Self.values(layer, x)
            let width = keyValueHeads * 8, half = width / 2
            func values(_ v: Tensor<Float>, _ t: Int) -> (current: [Float], delayed: [Float]) {
                (Array(v.storage[(t * width)..<(t * width + half)]), Array(v.storage[(t * width + half)..<((t + 1) * width)]))
            }
            let t = 4
            for (moved, expectCurrent, expectDelayed) in [(t - 2, false, false), (t - 1, false, true), (t, true, false), (t + 1, false, false)] {
                var changed = x
                for c in 0..<32 { changed.storage[moved * 32 + c] += 1 }
                let w = try Self.values(layer, changed)
                #expect((values(w, t).current != values(v, t).current) == expectCurrent, "token \(moved) vs current half")
                #expect((values(w, t).delayed != values(v, t).delayed) == expectDelayed, "token \(moved) vs delayed half")
            }
            #expect(values(v, 0).delayed.allSatisfy { $0 == 0 }, "the first token's delayed half sees x_{-1} = 0")
        }
    }

    /// The attention's values `v` `[S, Hkv, d]` for one sequence, after the value shift.
    static func values(_ layer: CCA<Float>, _ x: Tensor<Float>) throws -> Tensor<Float> {
        try layer.forward(x, layout: SequenceLayout(batch: 1, length: x.shape[1]), states: nil, keep: true).saved!.v
    }
}

/// Bad numbers are never turned into plausible ones: a NaN or infinity in a weight reaches the output as
/// NaN (as PyTorch's arithmetic would), and a mask that is not made of 0s and 1s is refused.
@Suite struct NonFiniteTests {
    @Test func nonFiniteWeightsGiveNaNOutputs() throws {
        let x = Tensor<Float>(randomNormal: [1, 6, 32], seed: 50)
        for (name, layer) in try LayerPropertyTests.layers() {
            for poison in [Float.nan, .infinity] {
                var weights = layer.weights
                let weightName = weights.keys.sorted().first { $0.contains("q_") || $0.contains("q_a_proj") }!
                weights[weightName]!.storage[3] = poison
                let poisoned = try layer.config.makeLayer(weights: weights) as any AttentionLayer<Float>
                let y = try poisoned.forward(x)
                #expect(y.storage.contains { $0.isNaN }, "\(name): \(poison) in \(weightName) gave a finite output")
            }
        }
        var config = CCAConfig(hiddenSize: 32, queryHeads: 2, keyValueHeads: 2, headDim: 8)
        config.temperature = .linear
        var weights = try CCA<Float>(config: config, seed: 51).weights
        weights["qk_norm.temp"]!.storage[0] = .nan
        #expect(try CCA<Float>(config: config, weights: weights).forward(x).storage.contains { $0.isNaN })
    }

    @Test func masksAreZerosAndOnes() throws {
        let layer = try GQA<Float>(config: .mha(hiddenSize: 32, heads: 4), seed: 52)
        let x = Tensor<Float>(randomNormal: [1, 3, 32], seed: 53)
        for bad in [Float.nan, -1, 0.5] {
            let mask = try Tensor<Float>(shape: [1, 3], storage: [1, bad, 1])
            #expect(throws: MaskError.self) { try layer.forward(x, mask: mask) }
        }
    }
}
