/// The configuration of one attention layer of some kind: what a JSON config file describes and what each
/// block of a language model holds. Each kind's config makes its layer, so nothing switches over kinds.
public protocol AttentionConfig: Sendable {
    /// The `attention` value naming this kind in config files (`mha`, `gqa`, `mla`, `cca`).
    var kindName: String { get }
    /// Model width E.
    var hiddenSize: Int { get }
    /// Throws a ``ConfigError`` naming the first setting that cannot work.
    func validate() throws
    /// Every weight name and shape the layer needs.
    var weightShapes: [String: [Int]] { get }
    /// Random initial weights, reproducible from `seed`.
    func initialWeights(seed: UInt64) throws -> [String: Tensor<Float>]
    /// The layer with `weights` (checked by name and shape).
    func makeLayer<S: TensorScalar>(weights: [String: Tensor<S>]) throws -> any AttentionLayer<S>
    /// Parameters, cache and FLOPs (see ``LayerCost``).
    var cost: LayerCost { get }
    /// The keys and values of this config in a layer config file (see ``LayerConfigFile``).
    var fileMembers: [(String, JSONValue)] { get }
}

extension AttentionConfig {
    /// The layer with random weights, reproducible from `seed`.
    public func makeLayer<S: TensorScalar>(seed: UInt64, _: S.Type = S.self) throws -> any AttentionLayer<S> {
        try makeLayer(weights: initialWeights(seed: seed).mapValues { Tensor<S>($0) })
    }
}
