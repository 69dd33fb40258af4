import ArgumentParser
import CCA

struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run one attention layer on x [B,S,E] from a safetensors file and write y.",
        discussion: """
        The config JSON has the keys `attention` (mha|gqa|mla|cca), `hidden_size`, `num_attention_heads`, \
        `num_key_value_heads`, `head_dim`, `rope_theta`, `partial_rotary_factor`, `temperature` (linear|exp), \
        MLA's `q_lora_rank`, `kv_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`, and CCA's \
        ablations `cca_convolutions`, `cca_qk_mean`, `cca_value_shift`; missing keys take the ZAYA1 defaults. \
        Weights use the transformers names (for CCA: qkv_proj.q_proj.weight, ...). The input file holds `x` \
        (float32, F16 or BF16) and optionally `mask` [B,S] (1 = token, 0 = padding). \
        `cca init-layer` writes a random config, weights and input to start from.
        """)

    @Option(help: "Layer config JSON.") var config: String
    @Option(help: "Weights (safetensors).") var weights: String
    @Option(help: "Input (safetensors with x and optional mask).") var input: String
    @Option(help: "Output file (safetensors with y); written atomically.") var output: String
    @Option(help: "Run each sequence through the decode state in chunks of these lengths, e.g. 7,1,1,5 (on cuda: the paged decode cache).")
    var chunks: String?
    @Option(help: "Where to run: cpu (the float32 reference) or cuda.") var device: Device = .cpu
    @Option(help: "GPU storage precision: bfloat16 or float32 (accumulation is float32 either way).")
    var precision: CUDAPrecision = .bfloat16

    func chunkLengths() throws -> [Int]? {
        try chunks.map { try parseChunkLengths($0) }
    }

    func validate() throws {
        _ = try chunkLengths()
    }

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let files = try LayerFiles(configPath: config, weightsPath: weights)
        let y: Tensor<Float>
        if device == .cpu {
            y = try files.run(inputPath: input, outputPath: output, chunkLengths: chunkLengths())
        } else {
            let (x, mask) = try LayerFiles.readInput(input)
            if let chunkLengths = try chunkLengths() {
                guard mask == nil else { throw DecodeError.maskWithChunks }
                y = try DeviceChunkedForward.forward(files.layer, x: x, chunkLengths: chunkLengths, precision: precision)
            } else {
                y = try files.layer.forward(x, mask: mask, device: device, precision: precision)
            }
            try SafeTensors.write(["y": y], metadata: ["format": "pt"], to: output)
        }
        print("y \(y.shape) written to \(output); max |y| \(format(maxMagnitude(y))); "
              + format((clock.now - start).seconds * 1000) + " ms on \(device.rawValue) (reading and writing included)")
    }
}

/// The largest absolute value of a tensor (NaN if any element is NaN).
func maxMagnitude(_ tensor: Tensor<Float>) -> Double {
    tensor.storage.reduce(0.0) { largest, value in value.isNaN ? .nan : max(largest, Double(abs(value))) }
}

/// The lengths of `--chunks`, e.g. `7,1,1,5`.
func parseChunkLengths(_ text: String) throws -> [Int] {
    try text.split(separator: ",", omittingEmptySubsequences: false).map { part -> Int in
        guard let value = Int(part.trimmingCharacters(in: " ")), value >= 0 else {
            throw ValidationError("--chunks takes comma-separated non-negative lengths, got '\(text)'")
        }
        return value
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
