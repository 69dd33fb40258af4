@testable import CCA
import Foundation
import Testing

/// Replays the inputs kept in `Tests/FuzzCorpus/<target>/`: the crashes `scripts/fuzz.sh` found (named
/// `crash-…`, `timeout-…`, `oom-…`: any typed outcome is right) and hand-made hostile inputs from the
/// hardening issue, which must be refused (those named `valid-…` accepted).
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    @Test(arguments: FuzzTarget.allCases)
    func keptInputsEndInATypedErrorOrAValue(_ target: FuzzTarget) throws {
        let folder = Self.corpus.appendingPathComponent(target.rawValue)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(!files.isEmpty, "no inputs in \(folder.path)")
        for file in files {
            let bytes = Array(try Data(contentsOf: folder.appendingPathComponent(file)))
            let error = target.run(bytes)
            if let error {
                // A refusal must say what is wrong, not be an untyped or empty error.
                #expect(!"\(error)".isEmpty && !(error is DecodingError), "\(target) \(file): \(error)")
            }
            let found = ["crash-", "timeout-", "oom-"].contains { file.hasPrefix($0) }
            if file.hasPrefix("valid") { #expect(error == nil, "\(target) \(file) was refused: \(String(describing: error))") }
            else if !found { #expect(error != nil, "\(target) \(file) was accepted") }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsAreAccepted(_ target: FuzzTarget) throws {
        for seed in try FuzzTarget.seeds(target) {
            let error = target.run(seed)
            #expect(error == nil, "\(target): \(String(describing: error))")
        }
    }
}
