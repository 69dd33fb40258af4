@testable import CCA
import RealModule
import Testing

/// The fused attention forward of the CPU kernels, in every variant this CPU runs, against softmax
/// attention written plainly in float64.
@Suite struct AttentionKernelTests {
    /// One sequence's case: `queries` rows after `keyOffset` earlier keys, random q/k/v in strided rows.
    struct Case {
        var queries: Int, keyOffset: Int, queryHeads: Int, keyValueHeads: Int, keyDim: Int, valueDim: Int, causal: Bool
        var keys: Int { keyOffset + queries }
    }

    static let cases: [Case] = [
        // Crosses the kernel's 256-key tile, with a partial last block of rows and two query heads per KV head.
        Case(queries: 300, keyOffset: 0, queryHeads: 2, keyValueHeads: 1, keyDim: 16, valueDim: 24, causal: true),
        // Odd sizes everywhere, fewer rows than a block.
        Case(queries: 5, keyOffset: 0, queryHeads: 3, keyValueHeads: 3, keyDim: 7, valueDim: 5, causal: true),
        // A chunk that continues a cache: the staircase starts at key 290.
        Case(queries: 70, keyOffset: 290, queryHeads: 1, keyValueHeads: 1, keyDim: 33, valueDim: 17, causal: true),
        // A single decode step.
        Case(queries: 1, keyOffset: 12, queryHeads: 2, keyValueHeads: 1, keyDim: 8, valueDim: 8, causal: true),
        // Two panels of query rows in the transposed score tile, keys past the 256-key tile in a partial
        // group of the register tile, two value panels (P·V's column tiles).
        Case(queries: 45, keyOffset: 219, queryHeads: 2, keyValueHeads: 1, keyDim: 40, valueDim: 70, causal: true),
        // Every query sees every key.
        Case(queries: 65, keyOffset: 0, queryHeads: 2, keyValueHeads: 2, keyDim: 9, valueDim: 11, causal: false),
    ]

    @Test(arguments: cases.indices)
    func matchesFloat64Attention(_ index: Int) {
        let c = Self.cases[index]
        let (qStride, kStride, vStride, outStride) = (c.queryHeads * c.keyDim + 3, c.keyValueHeads * c.keyDim + 1,
                                                      c.keyValueHeads * c.valueDim + 2, c.queryHeads * c.valueDim + 4)
        let q = Tensor<Float>(randomNormal: [c.queries * qStride], std: 2, seed: 1).storage
        let k = Tensor<Float>(randomNormal: [c.keys * kStride], seed: 2).storage
        let v = Tensor<Float>(randomNormal: [c.keys * vStride], seed: 3).storage
        let heads = Attention.Heads(queryHeads: c.queryHeads, keyValueHeads: c.keyValueHeads, keyDim: c.keyDim,
                                    valueDim: c.valueDim, scale: 1 / Double(c.keyDim).squareRoot(), causal: c.causal)
        let group = c.queryHeads / c.keyValueHeads
        for variant in CPUKernelVariant.supported {
            var out = [Float](repeating: .nan, count: c.queries * outStride)
            var lse = [Float](repeating: .nan, count: c.queries * c.queryHeads)
            q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { out in lse.withUnsafeMutableBufferPointer { lse in
                let sequence = Attention.Sequence(q: q.baseAddress!, qStride: qStride, k: k.baseAddress!, kStride: kStride,
                                                  v: v.baseAddress!, vStride: vStride, out: out.baseAddress!, outStride: outStride,
                                                  lse: lse.baseAddress!, queries: c.queries, keyOffset: c.keyOffset, keyValid: nil)
                #expect(AttentionKernel.handles([sequence], heads: heads))
                AttentionKernel.forward([sequence], heads: heads, kernels: variant)
            }}}}}
            for t in 0..<c.queries {
                for h in 0..<c.queryHeads {
                    let g = h / group
                    let seen = c.causal ? c.keyOffset + t + 1 : c.keys
                    let scores = (0..<seen).map { s in
                        (0..<c.keyDim).reduce(0.0) { $0 + Double(q[t * qStride + h * c.keyDim + $1]) * Double(k[s * kStride + g * c.keyDim + $1]) }
                            * heads.scale
                    }
                    let top = scores.max()!
                    let weights = scores.map { Double.exp($0 - top) }, total = weights.reduce(0, +)
                    let expectedLSE = top + Double.log(total)
                    #expect(abs(Double(lse[t * c.queryHeads + h]) - expectedLSE) <= 1e-5 * max(1, abs(expectedLSE)),
                            "\(variant.rawValue) case \(index) row \(t) head \(h) lse")
                    for e in 0..<c.valueDim {
                        let expected = (0..<seen).reduce(0.0) { $0 + weights[$1] * Double(v[$1 * vStride + g * c.valueDim + e]) } / total
                        let actual = Double(out[t * outStride + h * c.valueDim + e])
                        #expect(abs(actual - expected) <= 2e-6 + 1e-5 * abs(expected),
                                "\(variant.rawValue) case \(index) row \(t) head \(h) column \(e): \(actual) vs \(expected)")
                    }
                }
                for e in (c.queryHeads * c.valueDim)..<outStride { #expect(out[t * outStride + e].isNaN, "wrote into the row's padding") }
            }
        }
    }

    /// A query that sees only -inf scores gets zeros and lse -inf; one -inf among finite scores drops out;
    /// a NaN among -inf scores, or a +inf score, makes the row NaN (as the reference softmax does).
    @Test func nonFiniteScoresFollowTheReference() {
        let (keys, d) = (3, 1)
        // With d = 1 and q = 1 the scores are the keys themselves.
        let cases: [(k: [Float], expectNaN: Bool, expectZero: Bool)] = [
            ([-.infinity, -.infinity, -.infinity], false, true),
            ([.nan, -.infinity, -.infinity], true, false),
            ([0, .infinity, 1], true, false),
            ([0.5, -.infinity, 1], false, false),
        ]
        for variant in CPUKernelVariant.supported {
            for (k, expectNaN, expectZero) in cases {
                let q: [Float] = [1, 1, 1], v: [Float] = [2, 3, 5]
                var out = [Float](repeating: 7, count: keys), lse = [Float](repeating: 7, count: keys)
                q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { out in lse.withUnsafeMutableBufferPointer { lse in
                    let sequence = Attention.Sequence(q: q.baseAddress!, qStride: d, k: k.baseAddress!, kStride: d, v: v.baseAddress!,
                                                      vStride: d, out: out.baseAddress!, outStride: d, lse: lse.baseAddress!,
                                                      queries: keys, keyOffset: 0, keyValid: nil)
                    let heads = Attention.Heads(queryHeads: 1, keyValueHeads: 1, keyDim: d, valueDim: d, scale: 1, causal: false)
                    AttentionKernel.forward([sequence], heads: heads, kernels: variant)
                }}}}}
                if expectNaN {
                    #expect(out.allSatisfy(\.isNaN) && lse.allSatisfy(\.isNaN), "\(variant.rawValue) \(k): \(out) \(lse)")
                } else if expectZero {
                    #expect(out == [0, 0, 0] && lse == [-.infinity, -.infinity, -.infinity], "\(variant.rawValue) \(k)")
                } else {
                    // Keys 0 and 2 only: softmax of (0.5, 1) over the values 2 and 5.
                    let w = (Double.exp(0.5), Double.exp(1.0)), expected = (2 * w.0 + 5 * w.1) / (w.0 + w.1)
                    #expect(out.allSatisfy { abs(Double($0) - expected) < 1e-6 }, "\(variant.rawValue) \(k): \(out)")
                    #expect(lse.allSatisfy { abs(Double($0) - Double.log(w.0 + w.1)) < 1e-6 }, "\(variant.rawValue) lse \(lse)")
                }
            }
        }
    }

    /// Sliding windows and key masks are not the kernel's: they keep running the reference blocks.
    @Test func windowsAndKeyMasksAreLeftToTheReference() {
        let values = [Float](repeating: 1, count: 4), valid = [true, false]
        values.withUnsafeBufferPointer { p in valid.withUnsafeBufferPointer { flags in
            let pointer = UnsafeMutablePointer(mutating: p.baseAddress!)
            let plain = Attention.Sequence(q: p.baseAddress!, qStride: 1, k: p.baseAddress!, kStride: 1, v: p.baseAddress!, vStride: 1,
                                           out: pointer, outStride: 1, lse: pointer, queries: 2, keyOffset: 0, keyValid: nil)
            var masked = plain
            masked.keyValid = flags.baseAddress!
            let heads = Attention.Heads(queryHeads: 1, keyValueHeads: 1, keyDim: 1, valueDim: 1, scale: 1)
            var windowed = heads
            windowed.window = 1
            #expect(AttentionKernel.handles([plain], heads: heads))
            #expect(!AttentionKernel.handles([masked], heads: heads))
            #expect(!AttentionKernel.handles([plain], heads: windowed))
        }}
    }
}
