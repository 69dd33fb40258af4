import ArgumentParser
import CCA

/// `cca backward`: input and weight gradients of one attention layer for a given output gradient.
struct BackwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "Backward pass of one attention layer: writes dx and grad.<weight name> for dy.",
        discussion: """
        `cca init-layer` writes a random config, weights, input and grad-output to start from. On --device cuda the \
        layer runs forward (keeping what its backward reads) and backward on the GPU, with the weights and \
        activations stored in --precision and every sum accumulated in float32; the gradients are float32 either way.
        """)

    @Option(help: "Layer config JSON (as for `cca forward`).") var config: String
    @Option(help: "Layer weights (safetensors).") var weights: String
    @Option(help: "Input (safetensors with x [B, S, E], as for `cca forward`).") var input: String
    @Option(name: .customLong("grad-output"), help: "Output gradient (safetensors with dy [B, S, E]).") var gradOutput: String
    @Option(help: "Where to write dx and the weight gradients (safetensors); written atomically.") var output: String
    @Option(help: "Where to run: cpu (the float32 reference) or cuda.") var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let files = try LayerFiles(configPath: config, weightsPath: weights)
        try LayerFiles.require("dy", in: SafeTensors(contentsOf: gradOutput), role: "a grad-output file holds dy [B, S, E], the shape of x")
        if device == .cpu {
            try files.runBackward(inputPath: input, gradientPath: gradOutput, outputPath: output)
        } else {
            let (x, mask) = try LayerFiles.readInput(input)
            let dy = try SafeTensors(contentsOf: gradOutput).tensor("dy")
            try dy.requireShape(x.shape, "grad-output dy")
            let (dx, grads) = try CUDALayer(files.layer, precision: precision).pullback(x, mask: mask).backward(dy)
            var tensors = ["dx": dx]
            for (name, gradient) in grads { tensors["grad." + name] = gradient }
            try SafeTensors.write(tensors, metadata: ["format": "pt"], to: output)
        }
        let seconds = (clock.now - start).seconds
        let written = try SafeTensors(contentsOf: output)
        let dx = try written.tensor("dx")
        print("dx \(dx.shape) and \(written.names.filter { $0.hasPrefix("grad.") }.count) weight gradients written to \(output); "
              + "max |dx| \(format(maxMagnitude(dx))); " + format(seconds * 1000) + " ms on \(device.rawValue) (reading and writing included)")
    }
}
