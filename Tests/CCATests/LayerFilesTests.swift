import CCA
import Testing

/// The `cca forward` job end to end through files, as another framework would hand them over.
@Suite struct LayerFilesTests {
    let directory = "/tmp/cca-layer-files-\(UInt64.random(in: 0..<UInt64.max))"

    func path(_ name: String) -> String { directory + "-" + name }

    @Test func forwardThroughFilesMatchesTheReferenceInBothPaths() throws {
        let config = CCAConfig(hiddenSize: 32, queryHeads: 4, keyValueHeads: 2, headDim: 8, temperature: .exp)
        let layer = try CCA<Float>(config: config, seed: 1)
        try writeAtomically(Array(#"{"attention": "cca", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "temperature": "exp", "rope_theta": 10000}"#.utf8), to: path("config.json"))
        // Weights stored as BF16 must load as their rounded values.
        try SafeTensors.write(layer.weights, as: .BF16, to: path("weights.safetensors"))
        let rounded = layer.weights.mapValues { tensor -> Tensor<Float> in
            var copy = tensor
            copy.storage = tensor.storage.map { HalfPrecision.float(bfloat16: HalfPrecision.bfloat16Bits($0)) }
            return copy
        }
        let x = Tensor<Float>(randomNormal: [2, 14, 32], seed: 2)
        try SafeTensors.write(["x": x], to: path("input.safetensors"))
        var fileConfig = config
        fileConfig.rope = RoPEConfig(theta: 10_000, fraction: 0.5)
        let expected = Reference.cca(x, weights: rounded, config: fileConfig)
        let files = try LayerFiles(configPath: path("config.json"), weightsPath: path("weights.safetensors"))
        for chunks in [nil, [7, 1, 1, 5]] as [[Int]?] {
            try files.run(inputPath: path("input.safetensors"), outputPath: path("y.safetensors"), chunkLengths: chunks)
            let y = try SafeTensors(contentsOf: path("y.safetensors")).tensor("y")
            #expect(y.relativeError(to: expected) < 1e-5, "chunks \(String(describing: chunks))")
        }
    }

    @Test func integerMasksAreRead() throws {
        let layer = try GQA<Float>(config: GQAConfig(hiddenSize: 16, queryHeads: 2, keyValueHeads: 1), seed: 3)
        let x = Tensor<Float>(randomNormal: [1, 4, 16], seed: 4)
        try SafeTensors.write([(name: "x", tensor: x)], int64: [(name: "mask", shape: [1, 4], values: [0, 1, 1, 1])], to: path("masked.safetensors"))
        let (readX, mask) = try LayerFiles.readInput(path("masked.safetensors"))
        #expect(readX == x)
        #expect(mask?.storage == [0, 1, 1, 1])
        #expect(try layer.forward(readX, mask: mask).storage[0..<16].allSatisfy { $0 == 0 })
    }

    @Test func badWeightFilesNameTheProblem() throws {
        try writeAtomically(Array(#"{"attention": "gqa", "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8}"#.utf8), to: path("gqa.json"))
        var weights = try GQA<Float>(config: GQAConfig(hiddenSize: 16, queryHeads: 2, keyValueHeads: 1, headDim: 8)).weights
        weights["k_proj.weight"] = Tensor<Float>(zeros: [16, 16])
        try SafeTensors.write(weights, to: path("wrong-shape.safetensors"))
        #expect(throws: WeightError.wrongShape(name: "k_proj.weight", expected: [8, 16], actual: [16, 16])) {
            try LayerFiles(configPath: path("gqa.json"), weightsPath: path("wrong-shape.safetensors"))
        }
        weights["k_proj.weight"] = nil
        try SafeTensors.write(weights.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                              int64: [(name: "k_proj.weight", shape: [8, 16], values: [Int64](repeating: 1, count: 128))],
                              to: path("wrong-dtype.safetensors"))
        #expect(throws: WeightError.wrongDType(name: "k_proj.weight", dtype: "I64", expected: "F32, F16, BF16 or F64")) {
            try LayerFiles(configPath: path("gqa.json"), weightsPath: path("wrong-dtype.safetensors"))
        }
        #expect(throws: ConfigFileError.self) { try LayerFiles(configPath: path("missing.json"), weightsPath: path("wrong-dtype.safetensors")) }
        #expect(throws: (any Error).self) { try LayerFiles(configPath: path("gqa.json"), weightsPath: path("missing.safetensors")) }
    }
}

@Suite struct AnchorFileTests {
    @Test func anchorRowsWithWindowsLineEndingsAreRead() throws {
        let rows = try PrefillBenchmark.anchors(csv: "method,seq,causal,ms,tflops\r\ntorch-mha,1024,True,0.64,\r\ncudnn-core-cca,16384,False,0.906,607\r\n", source: "a.csv")
        #expect(rows.count == 2)
        #expect(rows[0].method == "torch-mha" && rows[0].length == 1024 && rows[0].causal && rows[0].milliseconds == 0.64 && rows[0].teraflops == nil)
        #expect(rows[1].method == "cudnn-core-cca" && !rows[1].causal && rows[1].teraflops == 607)
        #expect(throws: (any Error).self) { try PrefillBenchmark.anchors(csv: "h\nbad,row\n", source: "b.csv") }
    }
}
