/// ZAYA's router (`ZayaRouter`): picks one of the `N` experts, or the skip expert, for every token.
///
/// `r = down_proj(x)`, plus, after the first layer, the previous layer's router state scaled by
/// `router_states_scale`; `r` is also the state handed to the next layer. Then the router MLP (RMSNorm,
/// `fc1`, GELU, `fc2`, GELU, `out_proj` to `N + 1` classes), a softmax, and the top class of the
/// probabilities plus `balancing_biases`; the token's weight is its unbiased probability. Class `N` is the
/// skip expert, which outputs 0.
struct ZayaRouter: Sendable {
    let down: Tensor<Float>, downBias: Tensor<Float>
    /// `router_states_scale`; nil in the first layer, which has no previous state.
    let stateScale: Tensor<Float>?
    let norm: Tensor<Float>, fc1: Tensor<Float>, fc1Bias: Tensor<Float>, fc2: Tensor<Float>, fc2Bias: Tensor<Float>
    let out: Tensor<Float>
    let balancingBiases: [Float]
    let epsilon: Float

    /// The router of layer `layer` from the tensors under `prefix` (`model.layers.N.mlp.gate.`).
    init(config: ZayaConfig, layer: Int, prefix: String, directory: ModelDirectory) throws {
        let (e, r, classes) = (config.hiddenSize, config.routerHiddenSize, config.experts + 1)
        func floats(_ name: String, _ shape: [Int]) throws -> Tensor<Float> { try directory.floats(prefix + name, shape: shape) }
        down = try floats("down_proj.weight", [r, e])
        downBias = try floats("down_proj.bias", [r])
        stateScale = layer == 0 ? nil : try floats("router_states_scale", [r])
        norm = try floats("router_mlp.norm.weight", [r])
        fc1 = try floats("router_mlp.fc1.weight", [r, r])
        fc1Bias = try floats("router_mlp.fc1.bias", [r])
        fc2 = try floats("router_mlp.fc2.weight", [r, r])
        fc2Bias = try floats("router_mlp.fc2.bias", [r])
        out = try floats("router_mlp.out_proj.weight", [classes, r])
        balancingBiases = try floats("balancing_biases", [classes]).storage
        epsilon = Float(config.rmsNormEpsilon)
    }

    /// Each row's expert (nil: the skip expert) and weight for `x` `[rows, E]`, and the router state `[rows, R]`
    /// for the next layer.
    func forward(_ x: Tensor<Float>, previousState: Tensor<Float>?) -> (experts: [Int?], weights: [Float], state: Tensor<Float>) {
        var state = Linear.forward(x, down, bias: downBias)
        if let stateScale, let previousState {
            let width = stateScale.count
            for i in 0..<state.count { state.storage[i] += previousState.storage[i] * stateScale.storage[i % width] }
        }
        let normed = RMSNorm.forward(state, weight: norm, epsilon: epsilon).y
        let hidden = GELU.forward(Linear.forward(GELU.forward(Linear.forward(normed, fc1, bias: fc1Bias)), fc2, bias: fc2Bias))
        var probabilities = Linear.forward(hidden, out)
        let classes = balancingBiases.count, skip = classes - 1
        var experts: [Int?] = [], weights: [Float] = []
        probabilities.storage.withUnsafeMutableBufferPointer { all in
            for row in 0..<(all.count / classes) {
                let p = all.baseAddress! + row * classes
                _ = Attention.softmaxRow(p, count: classes)
                var best = 0
                for c in 1..<classes where p[c] + balancingBiases[c] > p[best] + balancingBiases[best] { best = c }
                experts.append(best == skip ? nil : best)
                weights.append(best == skip ? 0 : p[best])
            }
        }
        return (experts, weights, state)
    }
}
