/// `exp` on eight floats at once, for the softmax of the attention core, where a scalar `expf` per score
/// costs as much as the two matrix products around it.
///
/// `exp(x) = 2^n · e^r` with `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2`; `e^r` by its Taylor series to
/// degree 7 (truncation error below 1e-8 relative), `2^n` built in the exponent bits. Inputs below
/// -87.3 give 0 (true value under 1.2e-38); the softmax only feeds it `x - max ≤ 0`.
@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let clamped = x.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.7))
    let n = (clamped * 1.442_695_040_888_963_4).rounded(.toNearestOrEven)
    // ln 2 split in a part exact in float (hi) and the rest (lo), so r loses no bits.
    let r = clamped - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187e-6
    var p = SIMD8<Float>(repeating: 1.0 / 5040)
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let scale = unsafeBitCast((SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23, to: SIMD8<Float>.self)
    return (p * scale).replacing(with: 0, where: x .< -87.3)
}
