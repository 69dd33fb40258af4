/// Replaces each of the `count` values by its exponential (``VectorMath/exp(_:count:kernels:)``): the
/// softmax and SiLU hot loops, through `Float.exponentiate`.
func vectorExp(_ values: UnsafeMutablePointer<Float>, count: Int) {
    VectorMath.exp(values, count: count)
}
