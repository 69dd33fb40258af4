@testable import CCA
import Testing

/// The host-side logic of ZAYA on the GPU: what `cca logits --device cuda` refuses before it touches a device,
/// the bytes a B = 1 decode step reads (the benchmark's bandwidth limit) and the bench's arguments. The GPU
/// computation itself is checked against the CPU model by `cca selftest --device cuda --filter zaya`.
@Suite struct ZayaGPULogicTests {
    static func model() throws -> ZayaModel { try ZayaModel(path: ZayaFixture.path("zaya-sharded-bf16")) }

    @Test func leftPaddingIsRefusedNamingTheSequence() throws {
        let mask = Tensor<Float>(checked: [2, 3], [1, 1, 0, 0, 1, 1])
        #expect(throws: ZayaGPUError.maskNotRightPadded(sequence: 1)) {
            _ = try DeviceZayaLogits.logits(try Self.model(), tokens: [1, 2, 3, 4, 5, 6], batch: 2, length: 3, mask: mask,
                                            precision: .float32)
        }
        #expect(try DeviceZayaLogits.validLengths(mask: Tensor(checked: [2, 3], [1, 1, 0, 1, 1, 1]), batch: 2, length: 3) == [2, 3])
        #expect(try DeviceZayaLogits.validLengths(mask: nil, batch: 2, length: 3) == [3, 3])
        #expect(ZayaGPUError.maskNotRightPadded(sequence: 1).description.contains("--device cpu"))
    }

    @Test func badChunksTokensAndShapesAreRefusedBeforeTheDevice() throws {
        let model = try Self.model()
        #expect(throws: DecodeError.chunksDoNotSum(chunks: [2, 2], length: 3)) {
            _ = try DeviceZayaLogits.logits(model, tokens: [1, 2, 3], batch: 1, length: 3, chunkLengths: [2, 2], precision: .float32)
        }
        #expect(throws: EmbeddingError.tokenOutOfRange(token: model.config.vocabSize, vocabSize: model.config.vocabSize)) {
            _ = try DeviceZayaLogits.logits(model, tokens: [1, model.config.vocabSize], batch: 1, length: 2, precision: .float32)
        }
        #expect(throws: ShapeError.self) {
            _ = try DeviceZayaLogits.logits(model, tokens: [1, 2, 3], batch: 2, length: 2, precision: .float32)
        }
    }

    /// The issue's figure for ZAYA1-8B: about 740M active layer parameters plus the 537M-parameter head, in
    /// bf16, about 2.5 GB a step; the router read in float32 and the cache at 4096 tokens (2 KV heads of 128,
    /// keys and values, 40 layers: 168 MB) come on top.
    @Test func bytesPerDecodeStepOfZaya1_8BMatchTheIssue() {
        let noCache = ZayaBenchmark.bytesPerDecodeStep(ZayaConfig(), context: 0)
        #expect(abs(noCache - 2 * (740e6 + 537e6)) / (2 * (740e6 + 537e6)) < 0.05, "\(noCache)")
        let withCache = ZayaBenchmark.bytesPerDecodeStep(ZayaConfig(), context: 4096)
        #expect(withCache - noCache == Double(40 * 4096 * 2 * 2 * 128 * 2))
    }

    @Test func benchRefusesTheCPUAndBadSizes() throws {
        try CommandLineTests.refused(["bench", "zaya", "--model", "x", "--device", "cpu"], "bench zaya runs on the GPU only")
        try CommandLineTests.refused(["bench", "zaya", "--model", "x", "--steps", "0"], "--steps must be from 1")
        try CommandLineTests.refused(["bench", "zaya", "--model", "x", "--copy-bandwidth", "-1"], "--copy-bandwidth must be a positive")
    }
}
