extension CUDAContext {
    /// FLOP/s of the best of a few bfloat16 products of 8192³ through cuBLAS (tensor cores, float32
    /// accumulation): the rate model-FLOPs utilisation is measured against, as this GPU reaches it.
    func measuredBFloat16Peak(size: Int = 8192, repetitions: Int = 5) throws -> Double {
        let a = try empty([size, size], .bfloat16), b = try empty([size, size], .bfloat16), c = try empty([size, size], .bfloat16)
        try zero(a)
        try zero(b)
        try Linear.forward(a.matrix, b, into: c.matrix, context: self)  // the first product pays for cuBLAS's set-up
        let fastest = try (0..<repetitions).map { _ in
            try elapsedMilliseconds { try Linear.forward(a.matrix, b, into: c.matrix, context: self) }
        }.min()!
        return 2 * Double(size) * Double(size) * Double(size) / (Double(fastest) / 1000)
    }
}
