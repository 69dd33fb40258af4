import CCA
import RealModule
import Testing

@Suite struct MatrixMultiplyTests {
    /// The automatic choice (BLAS when one loads) and every kernel variant this CPU runs, serial and parallel.
    static let variants: [CPUKernelVariant?] = {
        let untested = CPUKernelVariant.allCases.filter { !$0.isSupported }.map(\.rawValue)
        print("MatrixMultiplyTests: kernel variants \(CPUKernelVariant.supported.map(\.rawValue).joined(separator: ", "))"
              + (untested.isEmpty ? "" : "; not run on this CPU: \(untested.joined(separator: ", "))"))
        return [nil] + CPUKernelVariant.supported
    }()

    /// Every transpose combination, edge sizes around the register tiles (4×16, 6×16, 14×32) and the 256-deep
    /// K block, strided operands, alpha/beta, for every variant, serial and parallel, against float64 loops.
    @Test(arguments: [(1, 1, 1), (7, 17, 5), (8, 32, 256), (14, 32, 256), (13, 33, 257), (15, 63, 513), (97, 300, 70),
                      (200, 64, 600), (29, 1100, 3)])
    func everyVariantMatchesFloat64Loops(m: Int, n: Int, k: Int) {
        for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
            let pad = 3
            let (lda, ldb, ldc) = ((transposeA ? m : k) + pad, (transposeB ? k : n) + pad, n + pad)
            let a = Tensor<Float>(randomNormal: [(transposeA ? k : m) * lda], seed: 1).storage
            let b = Tensor<Float>(randomNormal: [(transposeB ? n : k) * ldb], seed: 2).storage
            let before = Tensor<Float>(randomNormal: [m * ldc], seed: 3).storage
            let (alpha, beta): (Float, Float) = (0.5, 2)
            var expected = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        sum += Double(a[transposeA ? p * lda + i : i * lda + p]) * Double(b[transposeB ? j * ldb + p : p * ldb + j])
                    }
                    expected[i * n + j] = Double(alpha) * sum + Double(beta) * Double(before[i * ldc + j])
                }
            }
            let scale = expected.map(abs).max()!
            for variant in Self.variants {
                for parallel in [false, true] {
                    var c = before
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        MatrixMultiply.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                            a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta,
                                            c: pc.baseAddress!, ldc: ldc, parallel: parallel, kernels: variant)
                    }}}
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - expected[i * n + j])) }
                        #expect(c[(i * ldc + n)..<(i * ldc + ldc)] == before[(i * ldc + n)..<(i * ldc + ldc)], "wrote past the row")
                    }
                    #expect(worst / scale < 1e-5,
                            "m\(m) n\(n) k\(k) tA \(transposeA) tB \(transposeB) parallel \(parallel) \(variant?.rawValue ?? "auto")")
                }
            }
        }
    }

    @Test func betaZeroIgnoresGarbageInC() {
        let a = Tensor<Float>(randomNormal: [4 * 4], seed: 1)
        for variant in Self.variants {
            var c = Tensor<Float>(zeros: [16], value: .nan)
            a.storage.withUnsafeBufferPointer { pa in c.storage.withUnsafeMutableBufferPointer { pc in
                MatrixMultiply.gemm(m: 4, n: 4, k: 4, a: pa.baseAddress!, lda: 4, b: pa.baseAddress!, ldb: 4, c: pc.baseAddress!,
                                    ldc: 4, kernels: variant)
            }}
            #expect(c.storage.allSatisfy { $0.isFinite }, "\(variant?.rawValue ?? "auto")")
        }
    }

    /// With beta 0 the first of several depth blocks stores over C (it is not zeroed first): NaN there must
    /// not survive in any tile, edge tiles included, and the later blocks must add to the first.
    @Test func betaZeroOverSeveralDepthBlocksMatchesFloat64() {
        let (m, n, k) = (29, 45, 600)
        let a = Tensor<Float>(randomNormal: [m * k], seed: 4).storage, b = Tensor<Float>(randomNormal: [k * n], seed: 5).storage
        for variant in Self.variants {
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                MatrixMultiply.gemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!,
                                    ldc: n, kernels: variant)
            }}}
            #expect(c.allSatisfy { $0.isFinite }, "\(variant?.rawValue ?? "auto"): NaN from C survived")
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k { sum += Double(a[i * k + p]) * Double(b[p * n + j]) }
                    worst = max(worst, abs(Double(c[i * n + j]) - sum) / Double(k).squareRoot())
                }
            }
            #expect(worst < 1e-5, "\(variant?.rawValue ?? "auto"): worst error \(worst)")
        }
    }

    /// k = 0 leaves `beta · C`; alpha = 0 must not read A or B (NaN there does not reach C).
    @Test func emptyDepthAndZeroAlphaScaleCOnly() {
        let nans = [Float](repeating: .nan, count: 12)
        for variant in CPUKernelVariant.supported {
            for (k, alpha) in [(0, Float(1)), (3, 0)] {
                var c: [Float] = [1, 2, 3, 4, 5, 6]
                nans.withUnsafeBufferPointer { p in c.withUnsafeMutableBufferPointer { pc in
                    MatrixMultiply.gemm(m: 2, n: 3, k: k, alpha: alpha, a: p.baseAddress!, lda: 3, b: p.baseAddress!, ldb: 3,
                                        beta: 2, c: pc.baseAddress!, ldc: 3, kernels: variant)
                }}
                #expect(c == [2, 4, 6, 8, 10, 12], "\(variant.rawValue) k \(k) alpha \(alpha)")
            }
        }
    }
}

@Suite struct HalfPrecisionTests {
    /// Against the definitions: bf16 keeps the top 16 bits after round-to-nearest-even; f16 values are
    /// sign · 2^(e-15) · (1 + m/1024) or subnormal m · 2^-24.
    @Test func roundTripsAndRounding() {
        for bits in stride(from: 0, through: 0xFFFF, by: 7).map(UInt16.init) {
            let bf = HalfPrecision.float(bfloat16: bits)
            if !bf.isNaN { #expect(HalfPrecision.bfloat16Bits(bf) == bits) }
            let exponent = Int((bits >> 10) & 0x1F), mantissa = Double(bits & 0x3FF), negative = bits & 0x8000 != 0
            guard exponent != 0x1F else { continue }
            var expected = exponent == 0 ? mantissa * 0x1p-24 : (1 + mantissa / 1024) * Double.pow2(exponent - 15)
            if negative { expected = -expected }
            #expect(Double(HalfPrecision.float(float16: bits)) == expected)
            #expect(HalfPrecision.float16Bits(Float(expected)) == bits || expected == 0)
        }
        #expect(HalfPrecision.bfloat16Bits(1 + 0x1p-8) == 0x3F80, "a tie rounds to even")
        #expect(HalfPrecision.bfloat16Bits(1 + 3 * 0x1p-8) == 0x3F82, "a tie rounds to even, upwards")
        #expect(HalfPrecision.float16Bits(70_000) == 0x7C00, "overflow goes to infinity")
        #expect(HalfPrecision.float16Bits(1 + 0x1p-11) == 0x3C00, "f16 tie rounds to even")
        #expect(HalfPrecision.float16Bits(0x1p-25 * 1.5) == 0x0001, "rounds up into the smallest subnormal")
    }
}

extension Double {
    static func pow2(_ exponent: Int) -> Double { exponent >= 0 ? Double(1 << exponent) : 1 / Double(1 << -exponent) }
}

@Suite struct SoftmaxTests {
    /// The vectorised exp inside the softmax, through the public attention core: one query attending to
    /// keys chosen so the scores span [-90, 0], against float64 softmax.
    @Test func attentionWeightsMatchFloat64Softmax() throws {
        let keys = 300
        let scores: [Double] = (0..<keys).map { (s: Int) -> Double in
            let spread: Double = -90 * Double(s) / Double(keys - 1)
            return s % 7 == 0 ? spread / 100 : spread
        }
        // q = e0, k_s = scores[s]·e0, v_s = e_s (one-hot): the output is exactly the softmax weights.
        var q = Tensor<Float>(zeros: [keys, 1, 1]), k = Tensor<Float>(zeros: [keys, 1, 1]), v = Tensor<Float>(zeros: [keys, 1, keys])
        for s in 0..<keys {
            q.storage[s] = 1
            k.storage[s] = Float(scores[s])
            v.storage[s * keys + s] = 1
        }
        let heads = Attention.Heads(queryHeads: 1, keyValueHeads: 1, keyDim: 1, valueDim: keys, scale: 1)
        let out = Attention.forward(q: q, k: k, v: v, layout: try SequenceLayout(batch: 1, length: keys), heads: heads).out
        let last = Array(out.storage[((keys - 1) * keys)...])
        // Float32 holds the scores and their difference to the maximum; only the exp and the sum are compared.
        let top = k.storage.max()!
        let shifted = k.storage.map { Double($0 - top) }
        let total = shifted.reduce(0) { $0 + Double.exp($1) }
        for s in 0..<keys {
            let expected = Double.exp(shifted[s]) / total
            #expect(abs(Double(last[s]) - expected) <= 1e-6 * expected + 1e-37, "key \(s)")
        }
    }
}
