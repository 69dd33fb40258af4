/// `exp` on eight floats at once, for the softmax of the attention core, where a scalar `expf` per score
/// costs as much as the two matrix products around it.
///
/// `exp(x) = 2^n · e^r` with `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2`; `e^r` by its Taylor series to
/// degree 7 (truncation error below 1e-8 relative), `2^n` built in the exponent bits. Inputs below
/// -87.3 give 0 (true value under 1.2e-38); the softmax only feeds it `x - max ≤ 0`.
@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let clamped = x.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.7))
    // Adding 1.5·2²³ rounds x/ln 2 to the nearest integer (ties to even) in the float add itself and
    // leaves that integer in the low mantissa bits: no float-to-int conversion, which Swift does per lane.
    let shifted = clamped * 1.442_695_040_888_963_4 + roundingShift
    let n = shifted - roundingShift
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
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- Int32(bitPattern: roundingShift.bitPattern)
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
    return (p * scale).replacing(with: 0, where: x .< -87.3)
}

private let roundingShift: Float = 12_582_912

/// Replaces each of the `count` values by its exponential, eight at a time with ``exp8(_:)``.
func vectorExp(_ values: UnsafeMutablePointer<Float>, count: Int) {
    let raw = UnsafeMutableRawPointer(values)
    var i = 0
    while i + 8 <= count {
        raw.storeBytes(of: exp8(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)), toByteOffset: 4 * i,
                       as: SIMD8<Float>.self)
        i += 8
    }
    guard i < count else { return }
    var tail = SIMD8<Float>()
    for j in 0..<(count - i) { tail[j] = values[i + j] }
    let result = exp8(tail)
    for j in 0..<(count - i) { values[i + j] = result[j] }
}
