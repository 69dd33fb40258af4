/// ``CCAPrologue`` on the GPU for training: steps 4–8 of CCA from the pre-convolution latents to `q` and
/// `k`, with a forward pass that keeps what its backward pass reads, for `B` fresh sequences of `S` rows
/// (row `r` at position `r % S`), or rows that pack documents, each row at its position within its
/// document and the convolutions reading nothing across the documents' boundaries.
///
/// The forward pass runs ``DeviceCCAConvolution`` (conv A's output kept, conv B on cuBLAS), then one block
/// per row and head (`prologue_heads_forward` in `cca_prologue_heads.cu`) adds conv B's bias and the
/// QK-mean, normalises to `sqrt(d)` with the key temperature and applies RoPE. The backward pass
/// recomputes q and k before the normalisation from what was kept, runs the RoPE and L2 backward per row
/// and head, the QK-mean backward per element, then the convolutions' backward. Inference keeps using the
/// fused `cca_prologue_mma.cu`, which keeps nothing.
struct DeviceCCAPrologue: Sendable {
    let config: CCAConfig
    let convolution: DeviceCCAConvolution
    /// `qk_norm.temp` `[Hkv]` float32, as stored (the kernels apply `exp` in `exp` mode).
    let temperature: DeviceTensor
    let rotary: DeviceRotary

    static let temperatureName = "qk_norm.temp"

    /// The weights and gradients this operation reads and writes: the convolutions' and the temperature,
    /// by interchange name.
    static func weightShapes(_ config: CCAConfig) -> [String: [Int]] {
        DeviceCCAConvolution.weightShapes(config).merging([temperatureName: [config.keyValueHeads]]) { $1 }
    }

    /// The prologue of `config` with float32 `weights` by interchange name (views of ``DeviceParameters``'
    /// master weights, or uploads; other names are ignored).
    /// - Throws: ``WeightError`` when a weight of ``weightShapes(_:)`` is missing, mis-shaped or not float32;
    ///   ``CUDAError/unsupported(_:)`` for a head dim above 1024.
    init(config: CCAConfig, weights: [String: DeviceTensor], context: CUDAContext) throws {
        guard config.headDim <= 1024 else { throw CUDAError.unsupported("CCA head_dim above 1024 (got \(config.headDim))") }
        try weights.requireFloat32(Self.weightShapes(config))
        self.config = config
        convolution = try DeviceCCAConvolution(config: config, weights: weights)
        temperature = weights[Self.temperatureName]!
        rotary = try DeviceRotary(try config.rope.embedding(headDim: config.headDim), context: context)
    }

    /// What the backward pass reads.
    struct Saved: Sendable {
        var latents: DeviceMatrix
        var convolution: DeviceCCAConvolution.Output
        var batch: Int, length: Int
        /// int32 `[B·S]` positions within packed documents, or nil.
        var positions: DeviceBuffer?
    }

    /// `q` `[B, S, Hq, d]` and `k` `[B, S, Hkv, d]` for `latents` `[B·S, ct]` (T: the first `ct` columns of the
    /// fused projection, `[q0 | k0]`, padded rows already zero), and what the backward pass reads (which
    /// holds `latents`). `positions`: int32 `[B·S]`, each row's position within its document, or nil.
    func forward(_ latents: DeviceMatrix, batch: Int, length: Int, positions: DeviceBuffer? = nil,
                 context: CUDAContext) throws -> (q: DeviceTensor, k: DeviceTensor, saved: Saved) {
        let c = config
        precondition(latents.rows == batch * length && latents.columns == c.convolutionChannels, "cca prologue: latents \(latents.rows)x\(latents.columns)")
        let output = try convolution.forward(latents, batch: batch, length: length, positions: positions, context: context)
        let q = try context.empty([batch, length, c.queryHeads, c.headDim], latents.precision)
        let k = try context.empty([batch, length, c.keyValueHeads, c.headDim], latents.precision)
        let saved = Saved(latents: latents, convolution: output, batch: batch, length: length, positions: positions)
        guard batch * length > 0 else { return (q, k, saved) }
        let kernel = try context.kernel("prologue_heads_forward", in: .ccaPrologueHeads, precision: latents.precision)
        try context.launch(kernel, grid: (batch * length, c.queryHeads + c.keyValueHeads, 1), threads: threads,
                           headArguments(saved) + [q.address, k.address] + shapeArguments(saved))
        return (q, k, saved)
    }

    /// The backward pass for `dq` `[B, S, Hq, d]` and `dk` `[B, S, Hkv, d]`: writes `dLatents` `[B·S, ct]` (T,
    /// possibly the first `ct` columns of the fused projection's gradient) and adds the gradients of the
    /// convolutions' weights and of `qk_norm.temp` to `gradients` (float32 by interchange name, of
    /// ``weightShapes(_:)``; zero them first for fresh gradients). Every sum over rows is deterministic.
    /// - Throws: ``WeightError`` when a gradient is missing, mis-shaped or not float32.
    func backward(dq: DeviceTensor, dk: DeviceTensor, saved: Saved, into dLatents: DeviceMatrix,
                  gradients: [String: DeviceTensor], context: CUDAContext) throws {
        let c = config, (rows, ct) = (saved.batch * saved.length, config.convolutionChannels)
        precondition(dq.count == rows * c.queryWidth && dk.count == rows * c.keyWidth && dLatents.rows == rows
                     && dLatents.columns == ct, "cca prologue backward: dq \(dq.shape), dk \(dk.shape)")
        try gradients.requireFloat32(Self.weightShapes(c))
        let dMixed = try context.empty([rows, ct], .float32)
        let dTemperatureRows = try context.empty([rows, c.keyValueHeads], .float32)
        if rows > 0 {
            let kernel = try context.kernel("prologue_heads_backward", in: .ccaPrologueHeads, precision: dq.precision)
            try context.launch(kernel, grid: (rows, c.queryHeads + c.keyValueHeads, 1), threads: threads,
                               headArguments(saved) + [dq.address, dk.address, dMixed.address, dTemperatureRows.address]
                                   + shapeArguments(saved))
        }
        try ColumnSums.sum(dTemperatureRows.matrix, into: gradients[Self.temperatureName]!, accumulate: true, context: context)
        var dMean: DeviceTensor?
        if c.qkMean {
            let mean = try context.empty([rows, ct], .float32)
            let kernel = try context.kernel("qk_mean_backward", in: .ccaPrologueHeads, precision: .float32)
            try context.launchElementwise(kernel, count: rows * ct, [dMixed.address, mean.address, Int64(rows),
                                                                     Int32(c.queryHeads), Int32(c.keyValueHeads), Int32(c.headDim)])
            dMean = mean
        }
        try convolution.backward(dMixed, latents: saved.latents, output: saved.convolution, batch: saved.batch,
                                 length: saved.length, positions: saved.positions, dMean: dMean, into: dLatents, gradients: gradients, context: context)
    }

    /// Threads of a head kernel's block: one per channel, rounded up to whole warps.
    private var threads: Int { (config.headDim + 31) / 32 * 32 }

    /// The head kernels' leading arguments: what they recompute q and k before the normalisation from.
    private func headArguments(_ saved: Saved) -> [any KernelArgument] {
        [saved.convolution.mixed?.address ?? 0, convolution.groupedBias?.address ?? 0, saved.latents.address,
         Int64(saved.latents.stride), temperature.address, Int32(config.temperature == .exp ? 1 : 0),
         rotary.inverseFrequencies.address, Int32(rotary.dimension)]
    }

    private func shapeArguments(_ saved: Saved) -> [any KernelArgument] {
        [saved.positions?.address ?? 0, Int32(saved.length), Int32(config.queryHeads), Int32(config.keyValueHeads), Int32(config.headDim),
         Int32(config.qkMean ? 1 : 0)]
    }
}
