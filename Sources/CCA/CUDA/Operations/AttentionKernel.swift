extension CUDAContext {
    /// Softmax attention with grouped KV heads: `q` `[B,S,Hq,dk]`, `k` `[B,S,Hkv,dk]`, `v` `[B,S,Hkv,dv]`
    /// → `[B,S,Hq,dv]`. Causal, it is ``CausalAttention/forward(q:k:v:scale:keyValid:)`` with no
    /// offset; otherwise every query sees every valid key.
    ///
    /// bfloat16 runs `attention_wgmma.cu` (Hopper's warpgroup tensor cores) for head dims 128 on `sm_90a`,
    /// `attention_mma.cu` (mma.sync tensor cores) otherwise; float32 runs `attention_simt.cu` (exact float).
    /// All are compiled for the head dims at hand, up to 256.
    /// - Parameters:
    ///   - keyValid: `[B·S]` bytes, 0 for keys never to attend, or nil.
    ///   - causal: whether query `t` sees only keys `s ≤ t`.
    func attention(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, scale: Float,
                   keyValid: DeviceBuffer?, causal: Bool = true) throws -> DeviceTensor {
        let (batch, length, queryHeads, keyDim) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (keyValueHeads, valueDim) = (k.shape[2], v.shape[3])
        guard keyDim <= 256, valueDim <= 256 else {
            throw CUDAError.unsupported("attention head dims above 256 (got \(keyDim) and \(valueDim))")
        }
        let out = try empty([batch, length, queryHeads, valueDim], q.precision)
        let packedRows = length * (queryHeads / keyValueHeads)
        let arguments: [any KernelArgument] = [
            q.address, k.address, v.address, out.address, keyValid?.address ?? 0, Int32(length), Int32(queryHeads),
            Int32(keyValueHeads), scale * Float(1.4426950408889634), Int32(causal ? 1 : 0),
        ]
        // Tile sizes and shared memory mirror the constants at the top of each kernel file.
        if q.precision == .bfloat16 && architecture == "sm_90a" && keyDim == 128 && valueDim == 128 {
            // 128 rows per block, a producer and two consumer warpgroups; a Q tile and three stages of K and V
            // tiles of 32 KB, plus 1 KB of alignment (the mbarriers are static shared memory).
            let kernel = try self.kernel("attention_forward", in: .attentionHopper, precision: .bfloat16)
            try launch(kernel, grid: (keyValueHeads * batch, (packedRows + 127) / 128, 1), threads: 384,
                       sharedBytes: 7 * 32768 + 1024, arguments)
            return out
        }
        let (source, rowsPerBlock, threads, sharedBytes): (KernelSource, Int, Int, Int)
        switch q.precision {
        case .bfloat16:
            let (keyPadded, valuePadded) = ((keyDim + 15) / 16 * 16, (valueDim + 15) / 16 * 16)
            (source, rowsPerBlock, threads) = (.attentionTensorCores, 64, 128)
            // A Q tile and two stages of K and V tiles.
            sharedBytes = (64 * (keyPadded + 8) + 2 * 64 * (keyPadded + 8 + valuePadded + 8)) * 2
        case .float32:
            (source, rowsPerBlock, threads) = (.attentionFloat32, 32, 256)
            sharedBytes = (32 * keyDim + 32 * (keyDim + 1 - keyDim % 2) + 32 * valueDim) * 4
        }
        let kernel = try self.kernel("attention_forward", in: source, precision: q.precision,
                                     defines: ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim])
        try launch(kernel, grid: ((packedRows + rowsPerBlock - 1) / rowsPerBlock, keyValueHeads, batch),
                   threads: threads, sharedBytes: sharedBytes, arguments)
        return out
    }
}
