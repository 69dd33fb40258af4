@testable import CCA
import Foundation
import Testing

/// Run management of `Trainer.run`: locking, refusing to replace a run, resume from the stored settings,
/// extending a run, cleaning leftovers, and the checks on options and data before any training.
@Suite struct TrainingRunTests {
    /// A few steps of the tiny preset on batches of 2: a second or two in a debug build.
    static func options(_ directory: String?, steps: Int? = 2) -> TrainingOptions {
        var options = TrainingOptions()
        (options.outDirectory, options.steps, options.batchSize, options.seed) = (directory, steps, 2, 5)
        return options
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    func refusal(_ options: TrainingOptions) -> TrainingError? {
        do { try Trainer.run(options); return nil } catch { return error as? TrainingError }
    }

    @Test func aSecondWriterOfARunDirectoryIsRefused() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try RunDirectory(directory)
        #expect(throws: TrainingError.runInUse(directory: directory, lockFile: directory + "/.lock", holder: Int(getpid()))) {
            try RunDirectory(directory)
        }
        #expect(refusal(Self.options(directory)) == .runInUse(directory: directory, lockFile: directory + "/.lock", holder: Int(getpid())))
        _ = first
    }

    @Test func leftoversOfInterruptedSavesAreRemovedAndNothingElse() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let names = [".checkpoint.json.tmp-0k3x9", ".weights-00000004.safetensors.tmp-zz1", "weights-00000002.safetensors",
                     "weights-00000004.safetensors", "weights-4.safetensors", ".notes.txt.tmp-abc", "notes.txt", ".loss.csv.tmp-",
                     "weights-0000000x.safetensors"]
        for name in names { try Data([1]).write(to: URL(fileURLWithPath: directory + "/" + name)) }
        try RunDirectory(directory).removeLeftovers(keeping: "weights-00000004.safetensors")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(left == [".lock", ".loss.csv.tmp-", ".notes.txt.tmp-abc", "notes.txt", "weights-00000004.safetensors",
                         "weights-0000000x.safetensors", "weights-4.safetensors"])
    }

    @Test func invalidOptionsAreRefusedBeforeAnythingIsWritten() throws {
        let directory = CheckpointTests.directory() + "/run"
        for steps in [0, -5] {
            #expect(refusal(Self.options(directory, steps: steps)) == .invalidOption(name: "steps", value: "\(steps)", expected: "a whole number from 1 to 100000000"))
        }
        var options = Self.options(directory)
        options.learningRate = .nan
        #expect(refusal(options) == .invalidOption(name: "learning rate", value: "nan", expected: "a positive number of at most 10"))
        #expect(!Self.exists(directory))
        // Under a regular file no directory can be made: found before the first step.
        let fileParent = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: fileParent) }
        let file = fileParent + "/file"
        try Data([1]).write(to: URL(fileURLWithPath: file))
        guard case .cannotWrite(let path, _)? = refusal(Self.options(file + "/run")) else { Issue.record("not refused"); return }
        #expect(path == file + "/run")
    }

    /// A run that fails before its first checkpoint (here: the engine cannot start, as a GPU that is not
    /// there) leaves no directory it made, and leaves a directory that was there before as it was.
    @Test func aRunThatFailsBeforeItsFirstSaveLeavesNoDirectoryItMade() throws {
        struct NoEngine: Error {}
        let parent = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        var options = Self.options(parent + "/new")
        options.engine = { _, _ in throw NoEngine() }
        #expect(throws: NoEngine.self) { try Trainer.run(options) }
        #expect(!Self.exists(parent + "/new"))
        try FileManager.default.createDirectory(atPath: parent + "/mine", withIntermediateDirectories: false)
        options.outDirectory = parent + "/mine"
        #expect(throws: NoEngine.self) { try Trainer.run(options) }
        #expect(Self.exists(parent + "/mine"))
    }

    @Test func anExistingRunIsNotReplacedUnlessAskedTo() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Trainer.run(Self.options(directory))
        #expect(refusal(Self.options(directory)) == .runExists(directory: directory, step: 2))
        var overwrite = Self.options(directory, steps: 1)
        overwrite.overwrite = true
        try Trainer.run(overwrite)
        #expect(try Checkpoint.load(directory: directory).checkpoint.step == 1)
        #expect(!Self.exists(directory + "/weights-00000002.safetensors"))
    }

    @Test func resumeTakesTheRunsSettingsAndExtendsIt() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first = Self.options(directory, steps: 2)
        (first.learningRate, first.warmupSteps, first.attention) = (0.02, 1, .mha)
        let original = try Trainer.run(first)
        var resume = TrainingOptions()
        resume.resumeDirectory = directory
        #expect(refusal(resume) == .runFinished(directory: directory, steps: 2))
        resume.steps = 2
        #expect(refusal(resume) == .runFinished(directory: directory, steps: 2))
        resume.steps = 1
        #expect(refusal(resume) == .cannotExtend(directory: directory, step: 2, requested: 1))
        resume.attention = .cca
        resume.steps = 3
        #expect(refusal(resume) == .configMismatch(checkpoint: "attention mha", requested: "attention cca"))
        resume.attention = nil
        let extended = try Trainer.run(resume)
        #expect(Array(extended.history.prefix(2)) == original.history)
        #expect(extended.history.count == 3)
        let saved = try Checkpoint.load(directory: directory).checkpoint
        #expect(saved.model.attention == .mha && saved.schedule.peak == 0.02 && saved.settings.batchSize == 2 && saved.settings.seed == 5)
        #expect(saved.schedule.totalSteps == 3)
        // The cosine stretched to 3 steps: update 2 (0-based) is halfway from the warmup's end to the last
        // update, so its rate is peak · (0.1 + 0.9 · (1 + cos(π/2)) / 2) = 0.011; the 2-step run's update 1 had the peak.
        #expect(abs(saved.history[1].learningRate - 0.02) < 1e-12)
        #expect(abs(saved.history[2].learningRate - 0.011) < 1e-12)
    }

    @Test func textDataMustBeLongEnoughAndUnchangedOnResume() throws {
        let directory = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/data.txt"
        var options = Self.options(directory + "/run", steps: 1)
        (options.dataPath, options.contextLength) = (data, 8)
        let needed = TrainingData.minimumBytes(length: 8)
        try Data(repeating: 65, count: needed - 1).write(to: URL(fileURLWithPath: data))
        #expect(refusal(options) == .dataTooShort(path: data, bytes: needed - 1, needed: needed))
        // Exactly the number of bytes the message asks for is enough.
        try Data((0..<needed).map { UInt8(97 + $0 % 26) }).write(to: URL(fileURLWithPath: data))
        try Trainer.run(options)
        try Data((0..<needed).map { UInt8(98 + $0 % 25) }).write(to: URL(fileURLWithPath: data))
        var resume = TrainingOptions()
        (resume.resumeDirectory, resume.steps) = (directory + "/run", 2)
        guard case .dataChanged(let path, _)? = refusal(resume) else { Issue.record("a changed data file was accepted"); return }
        #expect(path == data)
    }

    @Test func aCheckpointNamingAFileOutsideTheRunTouchesNothing() throws {
        let root = CheckpointTests.directory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let victim = root + "/victim/x.safetensors"
        try FileManager.default.createDirectory(atPath: root + "/victim", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: victim))
        try Trainer.run(Self.options(root + "/run", steps: 1))
        let jsonPath = root + "/run/checkpoint.json"
        let text = try String(contentsOfFile: jsonPath, encoding: .utf8)
        try text.replacingOccurrences(of: "weights-00000001.safetensors", with: "../victim/x.safetensors")
            .write(toFile: jsonPath, atomically: true, encoding: .utf8)
        var resume = TrainingOptions()
        (resume.resumeDirectory, resume.steps) = (root + "/run", 3)
        guard case .corruptCheckpoint? = refusal(resume) else { Issue.record("the edited checkpoint was accepted"); return }
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == Data([1, 2, 3]))
    }
}
