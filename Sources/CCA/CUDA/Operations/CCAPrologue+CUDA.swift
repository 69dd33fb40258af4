extension CUDAContext {
    /// CCA step 3 (`cca_values.cu`): `v` `[B,S,Hkv,d]` from the fused projection `[B,S,ct + ek]`, whose
    /// last `ek` columns are `[x_t · Wv_current | x_t · Wv_delayed]`: the delayed half shifted by one token
    /// (zero on each sequence's first row, or on each document's first row when `positions`, int32 `[B·S]`
    /// positions within packed documents, are given).
    func ccaValues(_ projections: DeviceTensor, config: CCAConfig, positions: DeviceBuffer? = nil) throws -> DeviceTensor {
        let (batch, length, ek) = (projections.shape[0], projections.shape[1], config.keyWidth)
        let v = try empty([batch, length, config.keyValueHeads, config.headDim], projections.precision)
        guard batch * length > 0 else { return v }
        // Whole 16-byte units when both halves and the column offset are made of them.
        let (stride, first) = (projections.shape[2], config.convolutionChannels)
        let unit = 16 / projections.precision.byteCount
        let vectors = (ek / 2) % unit == 0 && stride % unit == 0 && first % unit == 0
        let scale = vectors ? unit : 1
        let (count, threads) = (batch * length * ek / scale, 256)
        let kernel = try self.kernel(vectors ? "cca_values_vectors" : "cca_values", in: .ccaValues, precision: projections.precision)
        try launch(kernel, grid: (min((count + threads - 1) / threads, 32 * multiprocessorCount), 1, 1), threads: threads,
                   [projections.address, v.address, Int64(batch * length), Int32(stride / scale), Int32(first / scale),
                    Int32(ek / scale), positions?.address ?? 0, Int32(length), Int32(config.valueShift ? 1 : 0)])
        return v
    }

    /// CCA steps 4–8: from the pre-convolution latents, the first `ct` columns of the fused projection
    /// `[B,S,ct + ek]`, to `q` `[B,S,Hq,d]` and `k` `[B,S,Hkv,d]`; `cca_prologue_mma.cu` where
    /// `weights.tensorCores`, else `cca_prologue.cu`.
    func ccaPrologue(_ projections: DeviceTensor, weights: DeviceCCA.PrologueWeights,
                     config: CCAConfig) throws -> (q: DeviceTensor, k: DeviceTensor) {
        let (batch, length, stride, d) = (projections.shape[0], projections.shape[1], projections.shape[2], config.headDim)
        let heads = config.queryHeads + config.keyValueHeads
        let q = try empty([batch, length, config.queryHeads, d], projections.precision)
        let k = try empty([batch, length, config.keyValueHeads, d], projections.precision)
        guard batch * length > 0 else { return (q, k) }
        let (depthwise, depthwiseBias) = (weights.depthwiseWeight?.address ?? 0, weights.depthwiseBias?.address ?? 0)
        let (grouped, groupedBias) = (weights.groupedWeight?.address ?? 0, weights.groupedBias?.address ?? 0)
        if weights.tensorCores {
            // ROWS, THREADS and the shared-memory layout of cca_prologue_mma.cu. Each block keeps its head's taps
            // in shared memory and loops over row tiles; two blocks fit on a multiprocessor, and the grid stays
            // within that, since a block left for a second wave would run all its tiles alone.
            let (rows, threads) = (128, 256)
            let tiles = (length + rows - 1) / rows
            let blocksPerHead = min(tiles, max(1, 2 * multiprocessorCount / (heads * batch)))
            let kernel = try self.kernel("cca_prologue_mma", in: .ccaPrologueTensorCores, precision: .bfloat16,
                                         defines: ["HEAD_DIM": d, "ROTARY_DIM": weights.rotary.dimension])
            try launch(kernel, grid: (blocksPerHead, heads, batch), threads: threads,
                       sharedBytes: (d * (2 * d + 8) + (rows + 1) * (d + 8)) * 2,
                       [projections.address, depthwise, depthwiseBias, grouped, groupedBias, weights.keyScale.address,
                        weights.rotary.inverseFrequencies.address, q.address, k.address,
                        Int32(stride), Int32(length), Int32(config.queryHeads), Int32(config.keyValueHeads),
                        Int32(config.qkMean ? 1 : 0)])
        } else {
            guard d <= 1024 else { throw CUDAError.unsupported("CCA head_dim above 1024 (got \(d))") }
            let tileRows = 32  // TILE_ROWS in cca_prologue.cu
            let kernel = try self.kernel("cca_prologue", in: .ccaPrologue, precision: projections.precision)
            try launch(kernel, grid: ((length + tileRows - 1) / tileRows, heads, batch),
                       threads: d, sharedBytes: (2 * tileRows + 1) * d * 4,
                       [projections.address, depthwise, depthwiseBias, grouped, groupedBias, weights.keyScale.address,
                        weights.rotary.inverseFrequencies.address, q.address, k.address,
                        Int32(stride), Int32(length), Int32(config.queryHeads), Int32(config.keyValueHeads), Int32(d),
                        Int32(weights.rotary.dimension), Int32(config.convolutions), Int32(config.qkMean ? 1 : 0)])
        }
        return (q, k)
    }
}
