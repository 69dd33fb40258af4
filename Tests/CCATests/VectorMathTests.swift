import CCA
import RealModule
import Testing

/// The vectorised exponential and softmax pieces, in every kernel variant this CPU runs, against float64 math.
@Suite struct VectorMathTests {
    /// Lengths around the 16-lane vector, so full vectors and tails both run.
    static let counts = [0, 1, 5, 15, 16, 17, 33, 100]

    @Test func expMatchesFloat64() {
        let inputs: [Float] = (0..<1001).map { -100 + Float($0) * 0.1883 } + [.nan, -.infinity, 88.3, -87.3]
        for variant in CPUKernelVariant.supported {
            var values = inputs
            VectorMath.exp(&values, count: values.count, kernels: variant)
            for (x, y) in zip(inputs, values) {
                if x.isNaN {
                    #expect(y.isNaN, "\(variant.rawValue): exp(nan)")
                } else if x < -87.3 {
                    #expect(y == 0, "\(variant.rawValue): exp(\(x)) underflows to 0")
                } else if x <= 88.3 {
                    let expected = Double.exp(Double(x))
                    #expect(abs(Double(y) - expected) <= 2e-7 * expected, "\(variant.rawValue): exp(\(x)) = \(y)")
                } else {
                    #expect(y == .infinity, "\(variant.rawValue): exp(\(x)) overflows")
                }
            }
        }
    }

    @Test func maximumAndScaleMatchPlainLoops() {
        for variant in CPUKernelVariant.supported {
            for count in Self.counts {
                var values = Tensor<Float>(randomNormal: [count + 1], seed: UInt64(count)).storage
                if count > 2 { values[count / 2] = .nan }
                let expected = values[..<count].filter { !$0.isNaN }.max() ?? -.infinity
                #expect(VectorMath.maximum(values, count: count, kernels: variant) == expected, "\(variant.rawValue) \(count)")
                let original = values
                VectorMath.scale(&values, count: count, by: -0.75, kernels: variant)
                for i in 0..<count where !original[i].isNaN { #expect(values[i] == original[i] * -0.75) }
                #expect(values[count] == original[count], "wrote past the end")
            }
        }
    }

    @Test func exponentiateShiftedSumsFloat64Exponentials() {
        for variant in CPUKernelVariant.supported {
            for count in Self.counts {
                let inputs = Tensor<Float>(randomNormal: [count], std: 3, seed: UInt64(count)).storage
                var values = inputs
                let sum = VectorMath.exponentiateShifted(&values, count: count, shift: 2.5, kernels: variant)
                // The difference to the shift is rounded to float32 first, as the kernel computes it.
                let expected = inputs.map { Double.exp(Double($0 - 2.5)) }
                for i in 0..<count { #expect(abs(Double(values[i]) - expected[i]) <= 3e-7 * expected[i]) }
                #expect(abs(Double(sum) - expected.reduce(0, +)) <= 1e-6 * max(expected.reduce(0, +), 1e-30),
                        "\(variant.rawValue) \(count)")
            }
        }
    }

    /// A causal staircase of rows with -inf entries, one row masked completely, strided rows whose padding
    /// must stay untouched.
    @Test func softmaxRowsMatchFloat64Softmax() {
        let (rows, width, stride) = (21, 37, 41)
        for variant in CPUKernelVariant.supported {
            var values = Tensor<Float>(randomNormal: [rows * stride], std: 4, seed: 9).storage
            for r in 0..<rows where r % 5 == 1 { values[r * stride + r / 2] = -.infinity }
            for c in 0..<width { values[3 * stride + c] = -.infinity }
            let original = values
            VectorMath.softmaxRowsInPlace(&values, rows: rows, rowStride: stride, width: width, visible: 17, visibleStep: 1,
                                          kernels: variant)
            for r in 0..<rows {
                let visible = min(17 + r, width)
                let scores = original[(r * stride)..<(r * stride + visible)]
                let top = scores.max()!
                // Float32 holds the scores and their difference to the maximum; the exp and the sum are compared.
                let weights = scores.map { top == -.infinity ? 0 : Double.exp(Double($0 - top)) }
                let total = weights.reduce(0, +)
                for c in 0..<width {
                    let expected = c < visible && total > 0 ? weights[c] / total : 0
                    #expect(abs(Double(values[r * stride + c]) - expected) <= 1e-6 * expected + 1e-30,
                            "\(variant.rawValue) row \(r) column \(c)")
                }
                for c in width..<stride { #expect(values[r * stride + c] == original[r * stride + c], "padding") }
            }
        }
    }
}
