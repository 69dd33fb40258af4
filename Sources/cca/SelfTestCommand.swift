import ArgumentParser
import CCA

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run every GPU operation and layer against the CPU reference on random inputs; ends with `N passed, M failed`.")

    @Option(help: "Device to check against the CPU reference (cuda).") var device: String = "cuda"
    @Option(help: "Run only the cases whose name contains this text (for example \"attention\" or \"training step\").")
    var filter: String?

    func run() throws {
        guard device == "cuda" else {
            throw ValidationError("selftest checks the GPU path against the CPU reference; the CPU path itself is checked by `swift test`")
        }
        let (passed, failed) = CUDASelfTest.run(filter: filter)
        if let filter, passed + failed == 0 {
            throw ValidationError("no self-test case name contains \"\(filter)\"; run without --filter to see every case's name")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
