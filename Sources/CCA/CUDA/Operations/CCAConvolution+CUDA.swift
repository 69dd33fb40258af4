/// ``CCAConvolution`` on the GPU for training, forward and backward, for `B` sequences of `S` rows, each
/// starting from zero history: conv A as kernels (`cca_convolution.cu`), conv B as float32 cuBLAS products
/// batched over the heads, all accumulating in float32. With bfloat16 activations conv B's products run on
/// the TF32 tensor cores (10 mantissa bits, finer than the bfloat16 the activations are stored in; a
/// float32 product on the plain cores would take about a fifth of a millisecond per pass at 16k tokens);
/// with float32 activations they stay exact float32.
///
/// With `positions` (int32 `[B·S]`, each row's position within its document when rows pack several), each
/// document starts from zero history as a sequence of its own would: conv A reads nothing before it, and
/// conv B's older input for its first row is conv A's output on zeros (its bias), through a copy of conv
/// A's output with those rows replaced, made for the products that read it.
///
/// The weights are float32 tensors under their interchange names (views of ``DeviceParameters``' master
/// weights, or uploads): conv A's `[ct, 1, 2]` and `[ct]`, conv B's `[ct, d, 2]` and `[ct]`, those of the
/// convolutions that run.
struct DeviceCCAConvolution: Sendable {
    let count: Int, channels: Int, headDim: Int
    /// The weights' shapes by interchange name, which are their gradients' too.
    let shapes: [String: [Int]]
    let depthwiseWeight: DeviceTensor?, depthwiseBias: DeviceTensor?
    let groupedWeight: DeviceTensor?, groupedBias: DeviceTensor?

    static var names: (depthwise: String, depthwiseBias: String, grouped: String, groupedBias: String) {
        CCAConvolution<Float>.weightNames
    }

    /// The shapes of the weights of `config`'s convolutions, by interchange name: those of its gradients too.
    static func weightShapes(_ config: CCAConfig) -> [String: [Int]] {
        config.weightShapes.filter { $0.key.hasPrefix("qkv_proj.conv_qk_") }
    }

    /// The convolutions of `config` with `weights`.
    /// - Throws: ``WeightError`` when a weight of ``weightShapes(_:)`` is missing, mis-shaped or not float32.
    init(config: CCAConfig, weights: [String: DeviceTensor]) throws {
        shapes = Self.weightShapes(config)
        try weights.requireFloat32(shapes)
        (count, channels, headDim) = (config.convolutions, config.convolutionChannels, config.headDim)
        let names = Self.names
        (depthwiseWeight, depthwiseBias) = (weights[names.depthwise], weights[names.depthwiseBias])
        (groupedWeight, groupedBias) = (weights[names.grouped], weights[names.groupedBias])
    }

    /// What ``forward(_:batch:length:context:)`` returns and the backward pass reads.
    struct Output: Sendable {
        /// conv A's output `[B·(S + count − 1), ct]` float32, nil without convolutions.
        var depthwise: DeviceTensor?
        /// The stack's output `[B·S, ct]` float32 without conv B's bias (which the reader adds): conv B's
        /// products, or conv A's output with one convolution; nil without convolutions (the output is then
        /// the latents themselves).
        var mixed: DeviceTensor?
    }

    /// The stack on `latents` `[B·S, ct]` (T, possibly the first columns of the fused projection).
    func forward(_ latents: DeviceMatrix, batch: Int, length: Int, positions: DeviceBuffer? = nil,
                 context: CUDAContext) throws -> Output {
        guard count > 0 else { return Output(depthwise: nil, mixed: nil) }
        let ct = channels, rowsPerSequence = length + count - 1
        let depthwise = try context.empty([batch * rowsPerSequence, ct], .float32)
        let kernel = try context.kernel("conv_a_forward", in: .ccaConvolution, precision: latents.precision)
        try context.launchElementwise(kernel, count: depthwise.count, [
            latents.address, Int64(latents.stride), depthwiseWeight!.address, depthwiseBias!.address, depthwise.address,
            positions?.address ?? 0, Int32(batch), Int32(length), Int32(ct), Int32(count),
        ])
        guard count == 2 else { return Output(depthwise: depthwise, mixed: depthwise) }
        let mixed = try context.empty([batch * length, ct], .float32)
        guard batch * length > 0 else { return Output(depthwise: depthwise, mixed: mixed) }
        let taps = try splitTaps(context: context)
        let (d, heads) = (headDim, ct / headDim)
        let older = try positions.map { try olderRows(depthwise, batch: batch, length: length, positions: $0, context: context) }
        for b in 0..<batch {
            for tap in 0..<2 {
                // mixed[t] (+)= A[t + tap] · G_tapᵀ per head: column-major mixedᵀ = G_tap · A[tap...]ᵀ.
                let input = tap == 0 ? older ?? depthwise : depthwise
                try stridedGemm(context, tensorFloat32: latents.precision == .bfloat16, transposeA: true, transposeB: false,
                                m: d, n: length, k: d,
                                a: taps.address + float(tap * ct * d), lda: d, strideA: d * d,
                                b: input.address + float((b * rowsPerSequence + tap) * ct), ldb: ct, strideB: d,
                                beta: tap == 0 ? 0 : 1, c: mixed.address + float(b * length * ct), ldc: ct, strideC: d,
                                batch: heads)
            }
        }
        return Output(depthwise: depthwise, mixed: mixed)
    }

    /// The backward pass: writes `dLatents` `[B·S, ct]` (T, possibly the first columns of the fused
    /// projection's gradient) — the convolutions' share plus `dMean` `[B·S, ct]` float32 when given (the
    /// QK-mean's share) — and adds the weight gradients to `gradients` (float32, by interchange name, of
    /// ``weightShapes(_:)``; zero them first for fresh gradients). All sums over rows are deterministic.
    /// - Parameters:
    ///   - dMixed: `[B·S, ct]` float32, the gradient of the stack's output.
    ///   - output: the forward pass's.
    /// - Throws: ``WeightError`` when a gradient is missing, mis-shaped or not float32.
    func backward(_ dMixed: DeviceTensor, latents: DeviceMatrix, output: Output, batch: Int, length: Int,
                  positions: DeviceBuffer? = nil, dMean: DeviceTensor?, into dLatents: DeviceMatrix,
                  gradients: [String: DeviceTensor], context: CUDAContext) throws {
        try gradients.requireFloat32(shapes)
        let (ct, names) = (channels, Self.names)
        var dDepthwise = dMixed
        if count == 2 {
            try ColumnSums.sum(dMixed.matrix, into: gradients[names.groupedBias]!, accumulate: true, context: context)
            dDepthwise = try groupedBackward(dMixed, depthwise: output.depthwise!, batch: batch, length: length,
                                             positions: positions, tensorFloat32: dLatents.precision == .bfloat16,
                                             dWeight: gradients[names.grouped]!, dBias: gradients[names.depthwiseBias]!,
                                             context: context)
        }
        if count > 0 {
            try ColumnSums.sum(dDepthwise.matrix, into: gradients[names.depthwiseBias]!, accumulate: true, context: context)
            let rows = dDepthwise.count / ct
            let kernel = try context.kernel("conv_a_weight_gradient", in: .ccaConvolution, precision: latents.precision)
            try ColumnSums.reduce(rows: rows, width: 2 * ct, into: gradients[names.depthwise]!.reshaped([2 * ct]),
                                  accumulate: true, context: context) { grid, out, add in
                try context.launch(kernel, grid: grid, threads: 256, [
                    dDepthwise.address, latents.address, Int64(latents.stride), positions?.address ?? 0, Int32(length), Int32(ct),
                    Int32(count), Int64(rows), out, add,
                ])
            }
        }
        let kernel = try context.kernel("conv_a_backward_input", in: .ccaConvolution, precision: dLatents.precision)
        try context.launchElementwise(kernel, count: batch * length * ct, [
            dDepthwise.address, depthwiseWeight?.address ?? 0, dMean?.address ?? 0, dLatents.address, Int64(dLatents.stride),
            positions?.address ?? 0, Int32(batch), Int32(length), Int32(ct), Int32(count),
        ])
    }

    /// conv B's backward pass: `dA` `[B·(S+1), ct]` float32, and the taps' gradient added to `dWeight` `[ct, d, 2]`;
    /// with `positions`, the gradient of the documents' first older inputs (conv A's bias) added to `dBias`.
    private func groupedBackward(_ dMixed: DeviceTensor, depthwise: DeviceTensor, batch: Int, length: Int,
                                 positions: DeviceBuffer?, tensorFloat32: Bool, dWeight: DeviceTensor, dBias: DeviceTensor,
                                 context: CUDAContext) throws -> DeviceTensor {
        let (ct, d, heads, rowsPerSequence) = (channels, headDim, channels / headDim, length + 1)
        let dDepthwise = try context.empty(depthwise.shape, .float32)
        try context.zero(dDepthwise)
        guard batch * length > 0 else { return dDepthwise }
        let taps = try splitTaps(context: context)
        let dTaps = try context.empty([2, ct, d], .float32)
        // With packed documents tap 0 reads (and its gradient goes to) the older rows: a separate buffer.
        let older = try positions.map { try olderRows(depthwise, batch: batch, length: length, positions: $0, context: context) }
        let dOlder = try older.map { _ in try context.empty(depthwise.shape, .float32) }
        if let dOlder { try context.zero(dOlder) }
        for b in 0..<batch {
            let dOut = dMixed.address + float(b * length * ct)
            for tap in 0..<2 {
                let shifted = float(tap * ct)
                let (input, dInput) = tap == 0 ? (older ?? depthwise, dOlder ?? dDepthwise) : (depthwise, dDepthwise)
                let rows = input.address + float(b * rowsPerSequence * ct)
                // dA[t + tap] += dOut[t] · G_tap per head: column-major dAᵀ += G_tapᵀ · dOutᵀ.
                try stridedGemm(context, tensorFloat32: tensorFloat32, transposeA: false, transposeB: false, m: d, n: length, k: d,
                                a: taps.address + float(tap * ct * d), lda: d, strideA: d * d, b: dOut, ldb: ct, strideB: d,
                                beta: 1, c: dInput.address + float(b * rowsPerSequence * ct) + shifted, ldc: ct,
                                strideC: d, batch: heads)
                // dG_tap (+)= dOutᵀ · A[tap...] per head, sequences in order: column-major dG_tapᵀ = A[tap...]ᵀ · dOut.
                try stridedGemm(context, tensorFloat32: tensorFloat32, transposeA: false, transposeB: true, m: d, n: d, k: length,
                                a: rows + shifted, lda: ct, strideA: d, b: dOut, ldb: ct, strideB: d,
                                beta: b == 0 ? 0 : 1, c: dTaps.address + float(tap * ct * d), ldc: d, strideC: d * d,
                                batch: heads)
            }
        }
        let merge = try context.kernel("conv_b_merge_taps", in: .ccaConvolution, precision: .float32)
        try context.launchElementwise(merge, count: 2 * ct * d, [dTaps.address, dWeight.address, Int64(ct * d), Int32(1)])
        if let dOlder, let positions {
            let divert = try context.kernel("conv_b_divert_starts", in: .ccaConvolution, precision: .float32)
            try context.launchElementwise(divert, count: dOlder.count, [dOlder.address, dDepthwise.address, positions.address,
                                                                        Int32(batch), Int32(length), Int32(ct)])
            try ColumnSums.sum(dOlder.matrix, into: dBias, accumulate: true, context: context)
        }
        return dDepthwise
    }

    /// conv B's older inputs for packed documents (`conv_b_older_rows`): conv A's output `depthwise` with
    /// each document's first row replaced by conv A's bias, its output on zeros.
    private func olderRows(_ depthwise: DeviceTensor, batch: Int, length: Int, positions: DeviceBuffer,
                           context: CUDAContext) throws -> DeviceTensor {
        let older = try context.empty(depthwise.shape, .float32)
        let kernel = try context.kernel("conv_b_older_rows", in: .ccaConvolution, precision: .float32)
        try context.launchElementwise(kernel, count: older.count, [depthwise.address, depthwiseBias!.address, positions.address,
                                                                   older.address, Int32(batch), Int32(length), Int32(channels)])
        return older
    }

    /// conv B's weight `[ct, d, 2]` as two `[ct, d]` matrices (`[head][out][in]`), tap 0 first.
    private func splitTaps(context: CUDAContext) throws -> DeviceTensor {
        try Self.taps(groupedWeight!, headDim: headDim, layout: .split, precision: .float32, context: context)
    }

    /// The layouts conv B's taps are read in.
    enum TapLayout {
        /// `[tap, head, out, in]`: two `[ct, d]` matrices, tap 0 first (the training products on cuBLAS).
        case split
        /// `[head, out, tap·d + in]`: per head, the matrix that multiplies `[mixed(t − 1) | mixed(t)]`, the
        /// column-major B operand of `cca_prologue_mma.cu`'s tensor cores.
        case stacked
        /// `[tap, head, in, out]`: the threads of a warp, one per output channel, read consecutive
        /// addresses (`cca_prologue.cu`).
        case transposed
    }

    /// conv B's float32 `weight` `[ct, d, 2]` rearranged into `layout` in `precision` (`conv_b_taps`), from
    /// the weight as it is now: a few hundred kilobytes, remade at each use so that an optimizer step that
    /// updates the weight in place is what the next pass reads.
    static func taps(_ weight: DeviceTensor, headDim d: Int, layout: TapLayout, precision: CUDAPrecision,
                     context: CUDAContext) throws -> DeviceTensor {
        let rows = weight.shape[0], heads = rows / d
        let taps = try context.empty(layout == .stacked ? [heads, d, 2 * d] : [2, rows, d], precision)
        let strides: (tap: Int, head: Int, out: Int, input: Int) = switch layout {
        case .split: (rows * d, d * d, d, 1)
        case .stacked: (d, 2 * d * d, 2 * d, 1)
        case .transposed: (rows * d, d * d, 1, d)
        }
        let kernel = try context.kernel("conv_b_taps", in: .ccaConvolution, precision: precision)
        try context.launchElementwise(kernel, count: taps.count, [
            weight.address, taps.address, Int64(rows), Int32(d), Int64(strides.tap), Int64(strides.head),
            Int32(strides.out), Int32(strides.input),
        ])
        return taps
    }

    /// `CUBLAS_COMPUTE_32F_FAST_TF32`: float32 operands and accumulation, products on the TF32 tensor cores.
    private static let computeTensorFloat32: Int32 = 77

    /// Bytes of `elements` float32 values.
    private func float(_ elements: Int) -> UInt64 { UInt64(elements * MemoryLayout<Float>.stride) }

    /// One float32 cuBLAS product per head: `C = op(A)·op(B) + beta·C`, column-major, each matrix `stride`
    /// elements after the one before; on the TF32 tensor cores with `tensorFloat32`.
    private func stridedGemm(_ context: CUDAContext, tensorFloat32: Bool, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                             a: UInt64, lda: Int, strideA: Int, b: UInt64, ldb: Int, strideB: Int, beta: Float,
                             c: UInt64, ldc: Int, strideC: Int, batch: Int) throws {
        var (alpha, beta) = (Float(1), beta)
        let blas = context.blas, type = CUBLAS.float32
        try blas.check(blas.gemmStridedBatchedEx(
            context.blasHandle, transposeA ? CUBLAS.transpose : CUBLAS.noTranspose, transposeB ? CUBLAS.transpose : CUBLAS.noTranspose,
            Int32(m), Int32(n), Int32(k), &alpha, a, type, Int32(lda), Int64(strideA), b, type, Int32(ldb), Int64(strideB),
            &beta, c, type, Int32(ldc), Int64(strideC), Int32(batch), tensorFloat32 ? Self.computeTensorFloat32 : CUBLAS.compute32F,
            CUBLAS.defaultAlgorithm),
            "cublasGemmStridedBatchedEx(\(m)x\(n)x\(k), \(batch) heads)")
    }
}
