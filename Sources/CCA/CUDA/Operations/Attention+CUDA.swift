extension Attention {
    /// ``Attention/forward(q:k:v:layout:heads:)`` on the GPU for `B` sequences of `S` rows: `q` `[B,S,Hq,dk]`,
    /// `k` `[B,S,Hkv,dk]`, `v` `[B,S,Hkv,dv]` → `[B,S,Hq,dv]`, and with `keepLSE` the per-row log-sum-exp
    /// `[B,S,Hq]` (float32, natural log) that ``backward(dOut:q:k:v:saved:heads:keyValid:context:)`` reads.
    ///
    /// bfloat16 runs `attention_wgmma.cu` (Hopper's warpgroup tensor cores) for head dims 128 or 64 (keys and
    /// values alike) on `sm_90a`, `attention_mma.cu` (mma.sync tensor cores) otherwise; float32 runs `attention_simt.cu` (exact float).
    /// All are compiled for the head dims at hand, up to 256. Sliding windows are not supported on the GPU.
    /// - Parameters:
    ///   - keyValid: `[B·S]` bytes, 0 for keys never to attend, or nil.
    ///   - positions: `[B·S]` int32, each row's position within its document when a row packs several
    ///     (see ``DevicePacking``), or nil: a row sees keys from its document's start up to itself (causal only).
    ///   - out: where the output goes (a view into a larger tensor, for a decode step's prompt rows), or nil
    ///     for a new tensor.
    static func forward(q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, heads: Heads, keyValid: DeviceBuffer?,
                        positions: DeviceBuffer? = nil, keepLSE: Bool = false, into out: DeviceTensor? = nil,
                        context: CUDAContext) throws -> (out: DeviceTensor, lse: DeviceTensor?) {
        let (batch, length) = (q.shape[0], q.shape[1])
        try heads.checkForDevice(positions: positions)
        let shape = [batch, length, heads.queryHeads, heads.valueDim]
        precondition(out.map { $0.shape == shape && $0.precision == q.precision } ?? true, "attention output \(out!.shape) for q \(q.shape)")
        let out = try out ?? context.empty(shape, q.precision)
        let lse = keepLSE ? try context.empty([batch, length, heads.queryHeads], .float32) : nil
        guard batch * length > 0 else { return (out, lse) }
        let packedRows = length * heads.group
        let arguments: [any KernelArgument] = [
            q.address, k.address, v.address, out.address, lse?.address ?? 0, keyValid?.address ?? 0, positions?.address ?? 0,
            Int32(length),
            Int32(heads.queryHeads), Int32(heads.keyValueHeads), Float(heads.scale) * Float(1.4426950408889634),
            Int32(heads.causal ? 1 : 0),
        ]
        // Tile sizes and shared memory mirror the constants at the top of each kernel file.
        let (keyDim, valueDim) = (heads.keyDim, heads.valueDim)
        let defines = ["HEAD_DIM_QK": keyDim, "HEAD_DIM_V": valueDim]
        if q.precision == .bfloat16 && context.architecture == "sm_90a" && keyDim == valueDim && [64, 128].contains(keyDim) {
            // 128 rows per block, a producer and two consumer warpgroups; the kernel's SHARED_BYTES: a Q tile and
            // 3 stages of K and V tiles of 128 keys (d = 128) or 4 of 192 keys (d = 64), plus 1 KB of alignment
            // (the mbarriers are static shared memory).
            let (keyTile, stages) = keyDim == 128 ? (128, 3) : (192, 4)
            let kernel = try context.kernel("attention_forward", in: .attentionHopper, precision: .bfloat16, defines: defines)
            try context.launch(kernel, grid: (heads.keyValueHeads * batch, (packedRows + 127) / 128, 1), threads: 384,
                               sharedBytes: 1024 + 128 * keyDim * 2 + stages * 2 * keyTile * keyDim * 2, arguments)
            return (out, lse)
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
        let kernel = try context.kernel("attention_forward", in: source, precision: q.precision, defines: defines)
        try context.launch(kernel, grid: ((packedRows + rowsPerBlock - 1) / rowsPerBlock, heads.keyValueHeads, batch),
                           threads: threads, sharedBytes: sharedBytes, arguments)
        return (out, lse)
    }

    /// ``Attention/backward(dOut:q:k:v:saved:layout:heads:)`` on the GPU: `dq`, `dk`, `dv` (the layouts of
    /// q, k, v) for `dOut` `[B,S,Hq,dv]`, from the inputs, the output and the log-sum-exp of ``forward``.
    ///
    /// `attention_backward_prepare.cu` forms `delta = rowsum(dO ∘ O)` first. For head dims 128 or 64 on `sm_90a`,
    /// bfloat16 runs `attention_backward_wgmma.cu` (Hopper's warpgroup tensor cores): one pass over blocks
    /// of keys that keeps dk and dv in registers and adds each block's share of dq into float32 sums, which
    /// `attention_backward_prepare.cu` then stores as dq. Other bfloat16 shapes run the two tensor-core passes
    /// of `attention_backward_mma.cu` (dk/dv with keys in place, dq with queries in place); float32 runs the
    /// two exact passes of `attention_backward_simt.cu`. `keyValid` and `positions` as the forward pass had them;
    /// `keyBlockParts` (1 to 4) fixes how many blocks of the Hopper kernel share a block of keys, for tests
    /// (nil: as many as fill the GPU).
    static func backward(dOut: DeviceTensor, q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, out: DeviceTensor,
                         lse: DeviceTensor, heads: Heads, keyValid: DeviceBuffer?, positions: DeviceBuffer? = nil,
                         keyBlockParts: Int? = nil, context: CUDAContext) throws
        -> (dq: DeviceTensor, dk: DeviceTensor, dv: DeviceTensor) {
        let (batch, length, precision) = (q.shape[0], q.shape[1], q.precision)
        try heads.checkForDevice(positions: positions)
        let dq = try context.empty(q.shape, precision), dk = try context.empty(k.shape, precision)
        let dv = try context.empty(v.shape, precision)
        guard batch * length > 0 else { return (dq, dk, dv) }
        let rows = batch * length * heads.queryHeads
        let delta = try context.empty([rows], .float32)
        let dot = try context.kernel("attention_backward_dot", in: .attentionBackwardPrepare, precision: precision)
        try context.launch(dot, grid: (min((rows + 7) / 8, 8 * context.multiprocessorCount), 1, 1), threads: 256,
                           [dOut.address, out.address, delta.address, Int64(rows), Int32(heads.valueDim)])
        let defines = ["HEAD_DIM_QK": heads.keyDim, "HEAD_DIM_V": heads.valueDim]
        let (scale, causal) = (Float(heads.scale), Int32(heads.causal ? 1 : 0))
        let valid: [any KernelArgument] = [keyValid?.address ?? 0, positions?.address ?? 0]
        let shape: [any KernelArgument] = [Int32(length), Int32(heads.queryHeads), Int32(heads.keyValueHeads), scale, causal]
        switch precision {
        case .bfloat16 where context.architecture == "sm_90a" && heads.keyDim == heads.valueDim && [64, 128].contains(heads.keyDim):
            // One pass over blocks of 128 keys (a producer and two consumer warpgroups, the shared memory its
            // top states) that adds dq / scale into float32 sums. A grid short of two blocks a multiprocessor
            // splits each block of keys' rows over up to 4 blocks, which add dk and dv into float32 sums too.
            let keyBlocks = (length + 127) / 128
            let parts = keyBlockParts ?? max(1, min(4, 2 * context.multiprocessorCount / (keyBlocks * heads.keyValueHeads * batch)))
            guard (1...4).contains(parts) else { throw CUDAError.unsupported("\(parts) blocks per block of keys (1 to 4 are)") }
            guard keyBlocks * parts <= 65535 else {
                throw CUDAError.unsupported("the Hopper attention backward of \(length) positions (at most \(65535 / parts * 128))")
            }
            // (sum, output, factor): dq and, split, dk and dv.
            var sums: [(sum: DeviceTensor, out: DeviceTensor, factor: Float)] = [(try context.empty([dq.count], .float32), dq, scale)]
            if parts > 1 { sums += [(try context.empty([dk.count], .float32), dk, scale), (try context.empty([dv.count], .float32), dv, 1)] }
            for entry in sums { try context.zero(entry.sum) }
            let splitSums: [any KernelArgument] = parts > 1 ? [sums[1].sum.address, sums[2].sum.address] : [UInt64(0), UInt64(0)]
            let kernel = try context.kernel("attention_backward", in: .attentionBackwardHopper, precision: .bfloat16, defines: defines)
            try context.launch(kernel, grid: (heads.keyValueHeads, keyBlocks * parts, batch), threads: 384,
                               sharedBytes: 200 * 1024,
                               [q.address, k.address, v.address, dOut.address, lse.address, delta.address, sums[0].sum.address,
                                dk.address, dv.address] + splitSums + valid + shape + [Int32(parts)])
            let store = try context.kernel("attention_backward_store_sums", in: .attentionBackwardPrepare, precision: .bfloat16)
            for (sum, out, factor) in sums {
                try context.launch(store, grid: (min((out.count / 4 + 255) / 256, 8 * context.multiprocessorCount), 1, 1),
                                   threads: 256, [sum.address, out.address, Int64(out.count), factor])
            }
        case .bfloat16:
            let (keyPadded, valuePadded) = ((heads.keyDim + 15) / 16 * 16, (heads.valueDim + 15) / 16 * 16)
            // Tiles of 64 rows of both widths: the resident pair and two stages, plus the dk/dv kernel's
            // lse, delta, positions and first visible keys of 64 rows per stage.
            let pairBytes = 64 * (keyPadded + 8 + valuePadded + 8) * 2
            let dkdv = try context.kernel("attention_backward_dkdv", in: .attentionBackwardTensorCores, precision: .bfloat16,
                                          defines: defines)
            try context.launch(dkdv, grid: ((length + 63) / 64, heads.keyValueHeads, batch), threads: 128,
                               sharedBytes: 3 * pairBytes + 2 * 4 * 64 * 4,
                               [q.address, k.address, v.address, dOut.address, lse.address, delta.address, dk.address,
                                dv.address] + valid + shape)
            let dqKernel = try context.kernel("attention_backward_dq", in: .attentionBackwardTensorCores, precision: .bfloat16,
                                              defines: defines)
            try context.launch(dqKernel, grid: ((length * heads.group + 63) / 64, heads.keyValueHeads, batch), threads: 128,
                               sharedBytes: 3 * pairBytes,
                               [q.address, k.address, v.address, dOut.address, lse.address, delta.address, dq.address] + valid + shape)
        case .float32:
            let (dk32, dv32) = (heads.keyDim, heads.valueDim)
            let dqShared = (32 * dk32 + 32 * dv32 + 32 * (dk32 + 1 - dk32 % 2) + 32 * (dv32 + 1 - dv32 % 2)) * 4
            let dqKernel = try context.kernel("attention_backward_dq", in: .attentionBackwardFloat32, precision: .float32,
                                              defines: defines)
            try context.launch(dqKernel, grid: ((length * heads.group + 31) / 32, heads.keyValueHeads, batch), threads: 256,
                               sharedBytes: dqShared,
                               [q.address, k.address, v.address, dOut.address, lse.address, delta.address, dq.address] + valid + shape)
            let dkdvKernel = try context.kernel("attention_backward_dkdv", in: .attentionBackwardFloat32, precision: .float32,
                                                defines: defines)
            try context.launch(dkdvKernel, grid: ((length + 31) / 32, heads.keyValueHeads, batch), threads: 256,
                               sharedBytes: dqShared + 4 * 32 * 4,
                               [q.address, k.address, v.address, dOut.address, lse.address, delta.address, dk.address,
                                dv.address] + valid + shape)
        }
        return (dq, dk, dv)
    }
}

extension Attention.Heads {
    /// Throws for what the GPU kernels do not cover: head dims above 256, sliding windows, and packed
    /// documents without the causal mask.
    func checkForDevice(positions: DeviceBuffer?) throws {
        guard positions == nil || causal else { throw CUDAError.unsupported("packed documents in non-causal attention") }
        guard keyDim <= 256, valueDim <= 256 else {
            throw CUDAError.unsupported("attention head dims above 256 (got \(keyDim) and \(valueDim))")
        }
        guard window == nil else { throw CUDAError.unsupported("sliding-window attention on the GPU") }
    }
}
