import ArgumentParser
import CCA

/// `cca backward`: input and weight gradients of one attention layer for a given output gradient.
struct BackwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "Backward pass of one attention layer: writes dx and grad.<weight name> for dy.")

    @Option(help: "Layer config JSON (as for `cca forward`).") var config: String
    @Option(help: "Layer weights (safetensors).") var weights: String
    @Option(help: "Input x [B, S, E] (safetensors, one tensor).") var input: String
    @Option(name: .customLong("grad-output"), help: "Output gradient dy [B, S, E] (safetensors, one tensor).") var gradOutput: String
    @Option(help: "Where to write dx and the weight gradients (safetensors).") var output: String

    func run() throws {
        let layer = try makeLayer(configPath: config, weightsPath: weights)
        let result = try LayerBackward.run(layer, x: try LayerBackward.readSingleTensor(input),
                                           dy: try LayerBackward.readSingleTensor(gradOutput))
        try LayerBackward.write(result, to: output)
    }
}
