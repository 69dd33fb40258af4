extension CUDAContext {
    /// CCA steps 4–8 (`cca_prologue.cu`): from the pre-convolution latents `[B,S,ct]` and the delayed value
    /// projection `[B,S,ek/2]` to `q` `[B,S,Hq,d]` and `k` `[B,S,Hkv,d]`; completes `v` `[B,S,Hkv,d]`, whose
    /// first `ek/2` columns must already hold the current-token projection, with the shifted second half.
    func ccaPrologue(latents: DeviceTensor, valueDelayed: DeviceTensor, values v: DeviceTensor,
                     weights: DeviceCCA.PrologueWeights, config: CCAConfig) throws -> (q: DeviceTensor, k: DeviceTensor) {
        let (batch, length, d) = (latents.shape[0], latents.shape[1], config.headDim)
        guard d <= 1024 else { throw CUDAError.unsupported("CCA head_dim above 1024 (got \(d))") }
        let q = try empty([batch, length, config.queryHeads, d], latents.precision)
        let k = try empty([batch, length, config.keyValueHeads, d], latents.precision)
        guard batch * length > 0 else { return (q, k) }
        let tileRows = 32  // TILE_ROWS in cca_prologue.cu
        let kernel = try self.kernel("cca_prologue", in: .ccaPrologue, precision: latents.precision)
        try launch(kernel, grid: ((length + tileRows - 1) / tileRows, config.queryHeads + config.keyValueHeads + 1, batch),
                   threads: d, sharedBytes: (2 * tileRows + 1) * d * 4,
                   [latents.address, weights.depthwiseWeight?.address ?? 0, weights.depthwiseBias?.address ?? 0,
                    weights.groupedWeight?.address ?? 0, weights.groupedBias?.address ?? 0,
                    weights.keyScale.address, weights.rotary.inverseFrequencies.address,
                    valueDelayed.address, q.address, k.address, v.address,
                    Int32(length), Int32(config.queryHeads), Int32(config.keyValueHeads), Int32(d),
                    Int32(weights.rotary.dimension), Int32(config.convolutions), Int32(config.qkMean ? 1 : 0),
                    Int32(config.valueShift ? 1 : 0)])
        return (q, k)
    }
}
