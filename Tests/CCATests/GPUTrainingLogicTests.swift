@testable import CCA
import Foundation
import Testing

/// The parts of GPU training that need no GPU: which batches the device model takes, how the cross-entropy
/// is chunked, the model FLOPs behind the MFU, how device failures are reported, and the progress line's MFU.
/// The training step itself is checked against the CPU by `cca selftest --device cuda`.
@Suite struct GPUTrainingLogicTests {
    @Test func rowsOfEqualLengthAreTheDeviceBatch() throws {
        let batch = TrainingBatch(inputs: Array(0..<12), targets: Array(1..<13), lengths: [4, 4, 4])
        let shape = try DeviceLanguageModel.shape(of: batch)
        #expect(shape.batch == 3 && shape.length == 4)
    }

    @Test func packedDocumentsAreOneSequenceWithPositionsRestartingAtEachPiece() throws {
        // Two windows of 4 tokens cut at document boundaries, as PackedSequences makes them: pieces 3, 1, 2, 2.
        let packed = TrainingBatch(inputs: Array(0..<8), targets: [1, 2, CrossEntropy.ignored, 4, 5, CrossEntropy.ignored, 7, 8],
                                   lengths: [3, 1, 2, 2])
        let shape = try DeviceLanguageModel.shape(of: packed)
        #expect(shape.batch == 1 && shape.length == 8)
        #expect(shape.positions == [0, 1, 2, 0, 0, 1, 0, 1])
        #expect(try DeviceLanguageModel.shape(of: TrainingBatch(inputs: [1, 2], targets: [2, 3], lengths: [1, 1])).positions == nil)
        let empty = TrainingBatch(inputs: [], targets: [], lengths: [])
        #expect(throws: ShapeError.self) { try DeviceLanguageModel.shape(of: empty) }
        #expect(throws: ShapeError.self) { try DeviceLanguageModel.shape(of: TrainingBatch(inputs: [1], targets: [1], lengths: [1, 0])) }
        let short = TrainingBatch(inputs: Array(0..<7), targets: Array(0..<7), lengths: [4, 4])
        #expect(throws: ShapeError.self) { try DeviceLanguageModel.shape(of: short) }
    }

    @Test func theTrainingBenchmarkCutsRowsIntoDocumentsAsPackedSequencesDoes() {
        let batch = TrainingBatch(inputs: Array(0..<10), targets: Array(1..<11), lengths: [5, 5])
        let packed = TrainBenchmark.packed(batch, rowLength: 5, documentLength: 2)
        let ignored = CrossEntropy.ignored
        #expect(packed.lengths == [2, 2, 1, 2, 2, 1])
        #expect(packed.inputs == batch.inputs)
        #expect(packed.targets == [1, ignored, 3, ignored, ignored, 6, ignored, 8, ignored, ignored])
    }

    @Test func crossEntropyChunksKeepTheLogitsSmall() {
        // 2^26 / 50304 = 1334.07 rows fit; whole tiles of 128 rows: 1280.
        #expect(DeviceLanguageModel.chunkRows(rows: 16384, vocab: 50304, elements: 1 << 26) == 1280)
        #expect(DeviceLanguageModel.chunkRows(rows: 48, vocab: 61, elements: 20 * 61) == 20)
        #expect(DeviceLanguageModel.chunkRows(rows: 100, vocab: 256, elements: 1 << 26) == 100)
        // A vocabulary larger than a chunk still makes progress, one row at a time.
        #expect(DeviceLanguageModel.chunkRows(rows: 5, vocab: 1 << 27, elements: 1 << 26) == 1)
        for (rows, vocab) in [(16384, 50304), (8192, 262_144), (3, 7)] {
            let chunk = DeviceLanguageModel.chunkRows(rows: rows, vocab: vocab, elements: 1 << 26)
            #expect(chunk >= 1 && chunk <= rows && (chunk == 1 || chunk * vocab <= 1 << 26))
        }
    }

    @Test func modelFLOPsAreSixPerProductWeightPlusCausalAttention() {
        // GPT-2 small with SwiGLU, tied head: 12 · (4 E² + 3 E I) product weights plus the V × E head.
        var config = LanguageModelConfig.preset(.gpt2Small, attention: .mha)
        config.vocabSize = 50304
        let weights = 12 * (4 * 768 * 768 + 3 * 768 * 2048) + 50304 * 768
        // The PaLM count 6N + 12·L·H·d·T, halved for the causal mask over T + 1 positions' average.
        #expect(config.trainingFLOPsPerToken(length: 1024) == 6 * Double(weights) + 6 * 12 * 12 * 64 * 1025)
        // Untied: the head is its own weight, counted once.
        config.tiedEmbeddings = false
        #expect(config.trainingFLOPsPerToken(length: 1024) == 6 * Double(weights) + 6 * 12 * 12 * 64 * 1025)
        // CCGQA at the report's width attends with 8 query heads of 128.
        var ccgqa = LanguageModelConfig.preset(.wide, attention: .ccgqa)
        ccgqa.vocabSize = 50304
        let attention = ccgqa.trainingFLOPsPerToken(length: 8192) - ccgqa.trainingFLOPsPerToken(length: 0)
        #expect(attention == 6 * 12 * 8 * 128 * 8192)
    }

    @Test func deviceFailuresBecomeTrainingErrorsAndOthersPassThrough() {
        let memory = CUDAError.driver(call: "cuMemAlloc(2097152 bytes)", code: 2, name: "CUDA_ERROR_OUT_OF_MEMORY", message: "out of memory")
        let wrapped = CUDATrainingError.wrapping(memory, in: "a training step", bytesInUse: 3 << 20) as? CUDATrainingError
        #expect(wrapped == .outOfMemory(operation: "a training step", bytesInUse: 3 << 20))
        #expect(wrapped?.description.contains("3 MiB") == true && wrapped?.description.contains("--batch-size") == true)
        #expect(CUDATrainingError.wrapping(CUDAError.cublas(call: "cublasGemmEx", status: 3), in: "x", bytesInUse: 0) as? CUDATrainingError
                == .outOfMemory(operation: "x", bytesInUse: 0))
        let launch = CUDAError.driver(call: "cuStreamSynchronize", code: 700, name: "CUDA_ERROR_ILLEGAL_ADDRESS", message: "bad")
        guard case .device(let operation, let reason)? = CUDATrainingError.wrapping(launch, in: "a validation pass", bytesInUse: 0)
            as? CUDATrainingError else { Issue.record("a failed kernel is not a device error"); return }
        #expect(operation == "a validation pass" && reason.contains("CUDA_ERROR_ILLEGAL_ADDRESS"))
        guard case .unsupported? = CUDATrainingError.wrapping(CUDAError.unsupported("MLA backward"), in: "x", bytesInUse: 0) as? CUDAError else {
            Issue.record("an unsupported layer must keep its own message"); return
        }
    }

    @Test func trainRefusesAPrecisionWithoutTheGPU() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try CommandLineTests.refused(["train", "--precision", "float32", "--steps", "1"], "--precision is for --device cuda",
                                     in: directory)
    }

    /// The CPU engine with a stated peak, as the GPU engine states its measured one.
    struct EngineWithPeak: TrainingEngine {
        var cpu: CPUTrainingEngine
        let peakFLOPs: Double?
        mutating func step(_ batch: TrainingBatch, rate: Double, clipNorm: Double) throws -> Double {
            try cpu.step(batch, rate: rate, clipNorm: clipNorm)
        }
        func loss(_ batch: TrainingBatch) throws -> Double { try cpu.loss(batch) }
        func snapshot() throws -> (model: LanguageModel<Float>, optimizer: AdamW<Float>) { try cpu.snapshot() }
    }

    @Test func theProgressLineShowsMFUWhenTheEngineKnowsItsPeak() throws {
        for peak in [1e6, nil] as [Double?] {
            let lines = Locked<[String]>([])
            var options = TrainingOptions()
            (options.preset, options.attention, options.steps, options.batchSize) = (.micro, .mha, 2, 2)
            options.progress = .lines { line in lines.withLock { $0.append(line) } }
            options.engine = { EngineWithPeak(cpu: CPUTrainingEngine(model: $0, optimizer: $1), peakFLOPs: peak) }
            try Trainer.run(options)
            let first = try #require(lines.withLock { $0 }.first)
            #expect(first.contains(", MFU ") == (peak != nil), "\(first)")
            if peak != nil { #expect(first.hasSuffix("%"), "\(first)") }
        }
    }
}
