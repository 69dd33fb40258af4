import RealModule

extension AdamW where Scalar == Float {
    /// ``update(_:grads:rate:)`` on the GPU (`adamw.cu`): one launch updates every parameter of
    /// `parameters` from its gradient there, the moments kept in `parameters` too, and writes the compute
    /// copy from the new master weights in the same pass.
    ///
    /// Decay, bias correction and step count are the CPU operation's. Two differences: every parameter is
    /// updated (the CPU operation skips one without a gradient; here a parameter no backward pass reached has
    /// a zero gradient, so its moments decay and its step follows them); and with `clipping`, the
    /// `[norm, scale]` of ``GradientClipping/norm(of:maxNorm:context:)``, each gradient is multiplied by the
    /// scale as it is read, which is ``GradientClipping/clip(_:maxNorm:)`` without a pass of its own.
    mutating func update(_ parameters: DeviceParameters, rate: Float, clipping: DeviceTensor?, context: CUDAContext) throws {
        precondition(clipping.map { $0.precision == .float32 && $0.count == 2 } ?? true, "clipping is [norm, scale] float32")
        step += 1
        let correction1 = 1 - Float.pow(beta1, step), correction2 = 1 - Float.pow(beta2, step)
        // adamw.cu takes eight elements a step; DeviceParameters pads its buffers to a multiple of 64.
        precondition(parameters.count % 8 == 0, "adamw: parameter buffers not padded to 8")
        let kernel = try context.kernel("adamw_update", in: .adamW, precision: parameters.precision)
        try context.launchElementwise(kernel, count: parameters.count / 8, [
            parameters.tensor(.master).address, parameters.tensor(.compute).address, parameters.tensor(.gradients).address,
            parameters.tensor(.firstMoments).address, parameters.tensor(.secondMoments).address,
            Int64(parameters.count), Int64(parameters.decayedCount), clipping?.address ?? 0,
            rate, beta1, beta2, epsilon, weightDecay, correction1, correction2,
        ])
    }
}
