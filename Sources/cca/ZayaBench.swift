import ArgumentParser
import CCA

/// `cca bench zaya --device cuda --model DIR`: a ZAYA directory on the GPU; the transformers anchor is
/// `scripts/zaya_gpu_anchor.py generate DIR` on the same directory in the same device call.
struct ZayaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zaya",
        abstract: "A ZAYA model directory on the GPU (bf16): load and upload time, prefill, B = 1 decode at a long context vs its bandwidth limit, batch throughput.",
        discussion: """
        Columns: load = mapping the directory and converting its small weights; upload = every weight to the GPU; prefill = \
        --prompt random tokens in one step; decode = greedy B = 1 steps after that prompt (median step, host round trip \
        included); bytes/step = what one such step must read (weights of the active expert, attention, routers, the cached \
        keys and values, the head); of limit = decode tokens/s / (--copy-bandwidth / bytes per step); batch = --batch \
        sequences with prompts of --batch-prompt tokens decoding together. --copy-bandwidth is the device-to-device copy \
        rate (bytes read + written per second) measured in the same call, e.g. with torch.
        """)

    @Option(help: "ZAYA model directory.") var model: String
    @Option(help: "Where to run: only cuda.") var device: Device = .cuda
    @Option(help: "Prompt tokens before the B = 1 decode steps.") var prompt: Int = 4096
    @Option(help: "Decode steps timed (B = 1, and for the batch).") var steps: Int = 64
    @Option(help: "Sequences decoding together.") var batch: Int = 32
    @Option(help: "Prompt tokens of each batched sequence.") var batchPrompt: Int = 256
    // `.unconditional` reads `--copy-bandwidth -1` as a value (refused with a reason), not as a missing value.
    @Option(parsing: .unconditional,
            help: "Measured device copy rate in bytes per second (read + write), for the fraction of the bandwidth limit.")
    var copyBandwidth: Double?

    func validate() throws {
        guard device == .cuda else { throw ValidationError("bench zaya runs on the GPU only: pass --device cuda") }
        for (name, value) in [("--prompt", prompt), ("--steps", steps), ("--batch", batch), ("--batch-prompt", batchPrompt)]
        where !(1...(1 << 20)).contains(value) {
            throw ValidationError("\(name) must be from 1 to \(1 << 20), got \(value)")
        }
        if let copyBandwidth, !(copyBandwidth > 0 && copyBandwidth.isFinite) {
            throw ValidationError("--copy-bandwidth must be a positive number of bytes per second, got \(copyBandwidth)")
        }
    }

    func run() throws {
        let r = try ZayaBenchmark.run(modelPath: model, prompt: prompt, steps: steps, batch: batch, batchPrompt: batchPrompt)
        let limit = copyBandwidth.map { $0 / r.bytesPerStep }
        print("")
        printTable(["ZAYA bf16", "value"], [
            ["load (map + small weights)", format(r.loadSeconds) + " s"],
            ["upload", format(r.uploadSeconds) + " s"],
            ["prefill, \(r.promptTokens) tokens", format(r.prefillTokensPerSecond) + " tokens/s"],
            ["decode B=1 at context \(r.promptTokens)", format(r.decodeTokensPerSecond) + " tokens/s ("
                + format(r.decodeStepSeconds * 1000) + " ms/step, CUDA graphs)"],
            ["decode B=1, kernel by kernel", format(1 / r.launchedStepSeconds) + " tokens/s ("
                + format(r.launchedStepSeconds * 1000) + " ms/step)"],
            ["bytes read per B=1 step", formatBytes(Int(r.bytesPerStep))],
            ["bandwidth limit (copy rate / bytes per step)", limit.map { format($0) + " tokens/s" } ?? "- (no --copy-bandwidth)"],
            ["of the limit", limit.map { format(100 * r.decodeTokensPerSecond / $0) + "%" } ?? "-"],
            ["batch B=\(r.batch) (prompts of \(r.batchPrompt))", format(r.batchTokensPerSecond) + " tokens/s"],
        ])
    }
}
