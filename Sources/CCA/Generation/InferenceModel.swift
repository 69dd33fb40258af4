import RealModule

/// A language model (``LanguageModelConfig``) for inference on the CPU: the fast attention layers with
/// their decode states, and float32 RMSNorm, SwiGLU and LM head. Training keeps its own differentiable
/// path; this one serves validation losses, decoding and `cca generate`.
public struct InferenceModel: Sendable {
    public let config: LanguageModelConfig
    let parameters: [String: Tensor]
    let attention: [any DecodingAttention]

    /// The model with the given parameters (Llama names, as in training checkpoints), shapes checked.
    public init(config: LanguageModelConfig, parameters: [String: Tensor]) throws {
        try config.validate()
        self.config = config
        self.parameters = try WeightDictionary(parameters).take(config.parameterShapes)
        let layerConfig = config.attentionLayer()
        attention = try (0..<config.layers).map { layer in
            let prefix = "layers.\(layer).self_attn."
            var weights: [String: Tensor] = [:]
            for (name, value) in parameters where name.hasPrefix(prefix) { weights[String(name.dropFirst(prefix.count))] = value }
            return try layerConfig.inferenceLayer(weights: weights)
        }
    }

    /// The model saved in a `cca train` checkpoint directory.
    public init(checkpointDirectory: String) throws {
        let loaded = try Checkpoint.load(directory: checkpointDirectory)
        try self.init(config: loaded.checkpoint.model, parameters: loaded.model.parameters.tensors())
    }

    /// Next-token logits `[B·S, vocab]` for `batch` rows of tokens of equal length.
    public func logits(tokens: [Int], batch: Int) throws -> Tensor {
        try run(tokens, shape: [batch, tokens.count / batch]) { layer, x in try attention[layer].forward(x) }
    }

    /// Embedding, the blocks (with `attend(layer, normed x [B,S,E])` for each attention) and the head.
    func run(_ tokens: [Int], shape: [Int], attend: (Int, Tensor) throws -> Tensor) throws -> Tensor {
        let e = config.hiddenSize
        if let bad = tokens.first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw GenerationError.tokenOutOfRange(token: bad, vocabSize: config.vocabSize)
        }
        var x = try Tensor(shape: shape + [e], storage: tokens.flatMap { token in
            parameters["embed_tokens.weight"]!.storage[(token * e)..<((token + 1) * e)]
        })
        for layer in 0..<config.layers {
            let prefix = "layers.\(layer)."
            let attended = try attend(layer, rmsNorm(x, prefix + "input_layernorm.weight"))
            for i in 0..<x.count { x.storage[i] += attended.storage[i] }
            let normed = rmsNorm(x, prefix + "post_attention_layernorm.weight")
            let gate = linear(normed, parameters[prefix + "mlp.gate_proj.weight"]!)
            var hidden = linear(normed, parameters[prefix + "mlp.up_proj.weight"]!)
            for i in 0..<hidden.count {
                let z = gate.storage[i]
                hidden.storage[i] *= z / (1 + Float.exp(-z))
            }
            let mlp = linear(hidden, parameters[prefix + "mlp.down_proj.weight"]!)
            for i in 0..<x.count { x.storage[i] += mlp.storage[i] }
        }
        let head = parameters[config.tiedEmbeddings ? "embed_tokens.weight" : "lm_head.weight"]!
        return try linear(rmsNorm(x, "norm.weight"), head).reshaped([tokens.count, config.vocabSize])
    }

    private func rmsNorm(_ x: Tensor, _ weight: String) -> Tensor {
        var y = x
        x.storage.withUnsafeBufferPointer { input in
            parameters[weight]!.storage.withUnsafeBufferPointer { w in
                y.storage.withUnsafeMutableBufferPointer { output in
                    Normalization.rmsNorm(input.baseAddress!, rows: x.count / config.hiddenSize, width: config.hiddenSize,
                                          weight: w.baseAddress!, epsilon: config.normEpsilon, output: output.baseAddress!)
                }
            }
        }
        return y
    }

    /// A decoding session for one sequence of at most `capacity` tokens; every layer's cache is allocated now.
    public func makeSession(capacity: Int) -> DecodeSession {
        DecodeSession(model: self, capacity: capacity)
    }
}

/// One sequence being decoded: feed it a prompt, then tokens one at a time; it keeps every layer's state.
public final class DecodeSession {
    public let model: InferenceModel
    public let capacity: Int
    /// Tokens fed so far.
    public private(set) var length = 0
    private let layers: [LayerDecoder]

    init(model: InferenceModel, capacity: Int) {
        (self.model, self.capacity) = (model, capacity)
        layers = model.attention.map { LayerDecoder($0, capacity: capacity) }
    }

    /// Bytes held by all layers' decode states.
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes() } }

    /// Feeds `tokens` (a prompt chunk or one token) and returns the logits after the last of them.
    public func feed(_ tokens: [Int]) throws -> [Float] {
        guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
        guard length + tokens.count <= capacity else {
            throw GenerationError.contextExceeded(requested: length + tokens.count, capacity: capacity)
        }
        let logits = try model.run(tokens, shape: [1, tokens.count]) { layer, x in
            try layers[layer].decode(x.reshaped([tokens.count, model.config.hiddenSize]))
        }
        length += tokens.count
        return Array(logits.storage[((tokens.count - 1) * model.config.vocabSize)...])
    }
}

/// One layer's decode state behind closures, so layers of any kind sit in one array.
private struct LayerDecoder {
    let decode: (Tensor) throws -> Tensor
    let bytes: () -> Int

    init<Layer: DecodingAttention>(_ layer: Layer, capacity: Int) {
        let box = StateBox(layer.makeDecodeState(capacity: capacity))
        decode = { x in
            var states = [box.state]
            defer { box.state = states[0] }
            return try layer.decode([x], states: &states)[0]
        }
        bytes = { box.state.bytes }
    }
}

private final class StateBox<State> {
    var state: State
    init(_ state: State) { self.state = state }
}

/// A generation request that cannot be served.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case contextExceeded(requested: Int, capacity: Int)
    case tokenOutOfRange(token: Int, vocabSize: Int)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty; give at least one token of text"
        case let .contextExceeded(requested, capacity):
            return "\(requested) tokens requested but the maximum context is \(capacity); shorten the prompt or --max-tokens"
        case let .tokenOutOfRange(token, vocabSize): return "token \(token) is outside the model's vocabulary of \(vocabSize)"
        }
    }
}
