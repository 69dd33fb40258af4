import ArgumentParser
import CCA

/// `cca backward`: input and weight gradients of one attention layer for a given output gradient.
struct BackwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "Backward pass of one attention layer: writes dx and grad.<weight name> for dy.")

    @Option(help: "Layer config JSON (as for `cca forward`).") var config: String
    @Option(help: "Layer weights (safetensors).") var weights: String
    @Option(help: "Input (safetensors with x [B, S, E], as for `cca forward`).") var input: String
    @Option(name: .customLong("grad-output"), help: "Output gradient (safetensors with dy [B, S, E]).") var gradOutput: String
    @Option(help: "Where to write dx and the weight gradients (safetensors).") var output: String

    func run() throws {
        try LayerFiles(configPath: config, weightsPath: weights).runBackward(inputPath: input, gradientPath: gradOutput,
                                                                            outputPath: output)
    }
}
