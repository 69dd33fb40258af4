import CCAKernels

/// Vectorised loops over `Float` buffers for attention's softmax, run by the CPU kernels (16 lanes at a
/// time in the ``CPUKernelVariant/selected`` instruction set unless `kernels` names another).
///
/// A softmax row is ``maximum(_:count:kernels:)``, then ``exponentiateShifted(_:count:shift:kernels:)``
/// (which returns the sum), then ``scale(_:count:by:kernels:)`` by its inverse; an online (flash) softmax
/// uses the same three pieces block by block. ``softmaxRowsInPlace(_:rows:rowStride:width:visible:visibleStep:kernels:)``
/// does whole rows, causal staircases included.
public enum VectorMath {
    /// The largest of `count` values; -inf when `count` is 0. NaNs are skipped.
    public static func maximum(_ values: UnsafePointer<Float>, count: Int, kernels: CPUKernelVariant = .selected) -> Float {
        cca_max(kernels.kernel, values, count)
    }

    /// Replaces each value `x` by `exp(x - shift)` and returns the sum of the results.
    ///
    /// The exponential has a relative error below 2e-7 on [-87.3, 88.3]; below -87.3 it gives 0, and NaN stays NaN.
    public static func exponentiateShifted(_ values: UnsafeMutablePointer<Float>, count: Int, shift: Float,
                                           kernels: CPUKernelVariant = .selected) -> Float {
        cca_exp_shifted_sum(kernels.kernel, values, count, shift)
    }

    /// Replaces each of the `count` values by its exponential (accuracy as in ``exponentiateShifted(_:count:shift:kernels:)``;
    /// +inf from 88.38 on).
    public static func exp(_ values: UnsafeMutablePointer<Float>, count: Int, kernels: CPUKernelVariant = .selected) {
        cca_exp(kernels.kernel, values, count)
    }

    /// Multiplies each of the `count` values by `factor`.
    public static func scale(_ values: UnsafeMutablePointer<Float>, count: Int, by factor: Float,
                             kernels: CPUKernelVariant = .selected) {
        cca_scale(kernels.kernel, values, count, factor)
    }

    /// Softmax of `rows` rows in place. Row `r` starts at `values + r · rowStride`; its first
    /// `visible + r · visibleStep` entries (clamped to `0...width`) take their softmax and the rest of its
    /// `width` entries become 0. A row whose visible entries are all -inf, or that has none, becomes zeros.
    ///
    /// For a causal block of queries `t0 ..< t0 + rows` over keys `0 ..< width`, pass `visible: t0 + 1, visibleStep: 1`.
    public static func softmaxRowsInPlace(_ values: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, width: Int,
                                          visible: Int, visibleStep: Int = 0, kernels: CPUKernelVariant = .selected) {
        cca_softmax_rows(kernels.kernel, values, rows, rowStride, width, visible, visibleStep)
    }
}
