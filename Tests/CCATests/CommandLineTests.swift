@testable import CCA
import Foundation
import Testing

/// The `cca` executable run as a user runs it (a separate process, output through pipes): bad arguments end
/// in a message and exit status, never a crash or a table of NaN, and the usage shown is the subcommand's.
@Suite struct CommandLineTests {
    struct Result {
        let status: Int32, crashed: Bool, stdout: String, stderr: String
        var output: String { stdout + stderr }
    }

    /// The `cca` built next to this test bundle (`swift test` builds every product first).
    static let executable: String? = {
        var candidates: [String] = []
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            candidates.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent().appendingPathComponent("cca").path)
        }
        if let test = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: test).deletingLastPathComponent().appendingPathComponent("cca").path)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/cca").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static func run(_ arguments: [String], in directory: String? = nil) throws -> Result {
        let path = try #require(executable, "the cca executable is not built; run `swift build` first")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        (process.standardOutput, process.standardError) = (out, err)
        try process.run()
        // Read both pipes while the process runs, so that neither can fill up and block it.
        let errData = UncheckedBox<Data>()
        let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errData.value == nil { usleep(1000) }
        return Result(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal,
                      stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData.value!, as: UTF8.self))
    }

    final class UncheckedBox<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Value?
        var value: Value? {
            get { lock.withLock { stored } }
            set { lock.withLock { stored = newValue } }
        }
    }

    /// Runs `arguments`, which must fail cleanly (exit status 1 or 64, no signal) with `message` in the output.
    static func refused(_ arguments: [String], _ message: String, usage: String? = nil, in directory: String? = nil) throws {
        let result = try run(arguments, in: directory)
        #expect(!result.crashed && (result.status == 1 || result.status == 64), "\(arguments): status \(result.status)\n\(result.output)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.output)")
        if let usage { #expect(result.stderr.contains("Usage: " + usage), "\(arguments): \(result.stderr)") }
        #expect(!result.output.contains("nan") && !result.output.contains("Fatal error"), "\(arguments): \(result.output)")
    }

    @Test func version() throws {
        let result = try Self.run(["--version"])
        #expect(result.status == 0 && result.stdout == CCALibrary.version + "\n")
    }

    @Test func invalidChoicesListTheValidOnes() throws {
        try Self.refused(["train", "--attention", "foo"], "Please provide one of 'mha', 'gqa', 'mla', 'cca' or 'ccgqa'")
        try Self.refused(["train", "--preset", "medium"], "Please provide one of the following:\n  - micro\n  - tiny\n  - small\n  - gpt2-small")
    }

    @Test func costRefusesSizesThatCannotWork() throws {
        try Self.refused(["cost", "--hidden", "1000"], "hidden size E = 1000 is invalid: expected a multiple of the head dimension d = 128",
                         usage: "cca cost [--hidden")
        try Self.refused(["cost", "--head-dim", "0"], "head dimension d must be a positive integer, got 0", usage: "cca cost")
        try Self.refused(["cost", "--hidden", "0"], "hidden size E must be a positive integer, got 0", usage: "cca cost")
        try Self.refused(["cost", "--hidden=-2048"], "hidden size E must be a positive integer, got -2048")
        try Self.refused(["cost", "--hidden", "-2048"], "hidden size E must be a positive integer, got -2048")
        try Self.refused(["cost", "--seq", "9223372036854775807"], "--seq must be from 1 to 1099511627776", usage: "cca cost")
        try Self.refused(["bench", "decode", "--head-dim", "0"], "head dimension d must be a positive integer", usage: "cca bench decode")
        try Self.refused(["tour", "--seq", "0"], "--seq must be from 1 to 65536", usage: "cca tour")
    }

    @Test func costAtTheLargestSizesIsFinite() throws {
        let result = try Self.run(["cost", "--seq", "1099511627776"])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.stdout.contains("nan") && !result.stdout.contains("inf"))
        // Sizes in the table are never negative (a wrapped product would be).
        let cells = result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        #expect(!cells.contains { $0.hasPrefix("-") && $0.dropFirst().first?.isNumber == true })
    }

    @Test func generateChecksItsNumbersBeforeLoadingAnything() throws {
        try Self.refused(["generate", "--checkpoint", "nowhere", "--prompt", "ab", "--temperature", "-1"],
                         "temperature = -1.0 is invalid: expected a number >= 0", usage: "cca generate")
        try Self.refused(["generate", "--checkpoint", "nowhere", "--prompt", "ab", "--max-tokens", "9223372036854775807"],
                         "does not fit --max-context 2048; use --max-tokens from 0 to 2047 or raise --max-context")
        try Self.refused(["generate", "--checkpoint", "nowhere", "--prompt", "ab", "--max-context", "9223372036854775807"],
                         "--max-context must be from 1 to 16777216")
    }

    @Test func trainRefusesBadStepsAndReportsProgressThroughAPipe() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.refused(["train", "--steps", "0"], "steps = 0 is invalid", usage: "cca train", in: directory)
        try Self.refused(["train", "--steps", "-3"], "steps = -3 is invalid", in: directory)
        #expect(!FileManager.default.fileExists(atPath: directory + "/runs"))
        // Without --out the run goes to runs/<attention>-<time>, and says so.
        let result = try Self.run(["train", "--steps", "2", "--batch-size", "2", "--attention", "mha"], in: directory)
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.stdout.contains("Sample ("), "the recall task is not text: no sample")
        let runs = try FileManager.default.contentsOfDirectory(atPath: directory + "/runs")
        #expect(runs.count == 1 && runs[0].hasPrefix("mha-"))
        #expect(result.stdout.contains("Run directory: runs/\(runs.first ?? "")"))
        #expect(FileManager.default.fileExists(atPath: directory + "/runs/\(runs.first ?? "")/checkpoint.json"))
        // On a pipe: whole lines, no carriage returns, the last one the finished job; losses with 4 decimals.
        #expect(!result.stderr.contains("\r"))
        #expect(result.stderr.split(separator: "\n").last?.hasPrefix("train mha: 2/2 steps (100%), done in") == true, "\(result.stderr)")
        let final = try #require(result.stdout.split(separator: "\n").first { $0.contains("final train loss") })
        let loss = try #require(final.split(separator: " ").drop { $0 != "loss" }.dropFirst().first)
        #expect(loss.split(separator: ".").last?.count == 5, "\(final)")  // 4 decimals and the comma
        // The same directory again is another run's: refused without --overwrite.
        try Self.refused(["train", "--steps", "2", "--out", "runs/\(runs[0])"], "already holds a run (at step 2); use --resume", in: directory)
    }

    @Test func trainingOnTextEndsWithASampleThatContinuesAValidationOpening() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = (0..<40).map { "Line \($0) of the text, with words that differ: \(String(repeating: "ab", count: $0 % 7))." }
            .joined(separator: "\n")
        try text.write(toFile: directory + "/corpus.txt", atomically: false, encoding: .utf8)
        let result = try Self.run(["train", "--preset", "micro", "--data", "corpus.txt", "--steps", "2", "--batch-size", "2",
                                   "--sample-tokens", "8", "--out", "run"], in: directory)
        #expect(result.status == 0, "\(result.output)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("Sample (8 tokens at temperature 0.8") }, "\(result.stdout)")
        // The prompt is 16 bytes of the held-out last tenth of the file (bytes are tokens here); 8 bytes follow it.
        let sample = lines[(header + 1)...].joined(separator: "\n")
        let validation = String(decoding: Array(text.utf8).suffix(from: text.utf8.count * 9 / 10), as: UTF8.self)
        #expect(validation.contains(String(sample.prefix(16))), "\(sample)")
        #expect(sample.utf8.count > 16, "\(sample)")
        try Self.refused(["train", "--sample-tokens", "-1"], "--sample-tokens must be from 0 to 4096, got -1", in: directory)
    }

    @Test func serveNeedsOneModelAndAZayaDirectoryNeedsItsTokenizer() throws {
        try Self.refused(["serve"], "give either --checkpoint or --model", usage: "cca serve")
        try Self.refused(["serve", "--checkpoint", "a", "--model", "b"], "give either --checkpoint or --model")
        let zaya = ZayaFixture.path("zaya-mixed")
        try Self.refused(["serve", "--model", zaya, "--port", "0"], "\(zaya) has no tokenizer.json, and the server takes prompts as text")
    }

    @Test func initLayerWritesWhatForwardAndBackwardNeed() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try Self.run(["init-layer", "--attention", "ccgqa", "--hidden", "64", "--head-dim", "8", "--seq", "6", "--out", directory])
        #expect(made.status == 0, "\(made.output)")
        let files = ["--config", directory + "/config.json", "--weights", directory + "/weights.safetensors",
                     "--input", directory + "/input.safetensors"]
        let forward = try Self.run(["forward"] + files + ["--output", directory + "/y.safetensors"])
        #expect(forward.status == 0 && forward.stdout.contains("y [1, 6, 64] written") && forward.stdout.contains("max |y|"), "\(forward.output)")
        // The layer that `cca forward` ran is the one the files describe: compare with the library on the same files.
        let layer = try LayerFiles(configPath: directory + "/config.json", weightsPath: directory + "/weights.safetensors")
        let y = try SafeTensors(contentsOf: directory + "/y.safetensors").tensor("y")
        #expect(try y.relativeError(to: layer.layer.forward(LayerFiles.readInput(directory + "/input.safetensors").x)) < 1e-6)
        let backward = try Self.run(["backward"] + files + ["--grad-output", directory + "/grad-output.safetensors", "--output", directory + "/d.safetensors"])
        #expect(backward.status == 0 && backward.stdout.contains("dx [1, 6, 64] and \(layer.layer.weights.count) weight gradients"), "\(backward.output)")
        try Self.refused(["forward"] + files + ["--output", directory + "/y.safetensors", "--chunks", "9223372036854775807,9223372036854775807,16"],
                         "add up to more than 9223372036854775807, but x has 6 tokens")
        try Self.refused(["init-layer", "--out", directory], "already has config.json")
        // Weights from another layer: every missing name at once.
        try Self.refused(["forward", "--config", directory + "/config.json", "--weights", directory + "/input.safetensors",
                          "--input", directory + "/input.safetensors", "--output", directory + "/y.safetensors"],
                         "the weight file lacks \(layer.layer.weights.count) weights this config needs")
    }

    @Test func configSizesThatWrapAreRefusedByForward() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = #"{"attention": "cca", "num_attention_heads": 65536, "num_key_value_heads": 65536, "head_dim": 281474976710656}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        try Self.refused(["forward", "--config", directory + "/config.json", "--weights", "w", "--input", "x", "--output", "y"],
                         "head_dim = 281474976710656 is invalid: expected at most 16777216")
    }
}
