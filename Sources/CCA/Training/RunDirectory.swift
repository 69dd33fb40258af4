#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory a training run writes, held for the life of the value by an exclusive lock, so two
/// `cca train` processes can never interleave their files in it.
///
/// The lock is `flock` on `.lock` in the directory; the operating system drops it when the process ends,
/// however it ends, so a crashed run never leaves the directory locked. The file holds the owner's process id
/// for the error message of the next run that finds it locked.
final class RunDirectory {
    static let lockFileName = ".lock"

    let path: String
    private let lockDescriptor: Int32

    /// Creates `path` if needed, checks that files can be created in it, and takes its lock.
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` or ``TrainingError/runInUse(directory:lockFile:holder:)``.
    init(_ path: String) throws {
        do { try createDirectory(path) } catch { throw TrainingError.cannotWrite(path: path, reason: "\(error)") }
        let lockPath = path + "/" + Self.lockFileName
        // Creating the lock file is also the check that the directory is writable, before any training starts.
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TrainingError.cannotWrite(path: path, reason: "cannot create a file in it: " + String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? readFile(lockPath, limit: 64)).map { String(decoding: $0, as: UTF8.self) }
            _ = close(descriptor)
            throw TrainingError.runInUse(directory: path, lockFile: lockPath, holder: holder.flatMap { Int($0.filter(\.isNumber)) })
        }
        let pid = Array("\(getpid())\n".utf8)
        guard ftruncate(descriptor, 0) == 0, pid.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == pid.count else {
            let reason = String(cString: strerror(errno))
            _ = close(descriptor)
            throw TrainingError.cannotWrite(path: lockPath, reason: reason)
        }
        (self.path, lockDescriptor) = (path, descriptor)
    }

    deinit { _ = close(lockDescriptor) }

    /// Whether the directory at `path` already holds a run (a `checkpoint.json`).
    static func holdsRun(_ path: String) -> Bool {
        var info = stat()
        return stat(path + "/" + Checkpoint.fileName, &info) == 0
    }

    /// Removes what interrupted saves leave behind: our temporary files (`.checkpoint.json.tmp-…`) and
    /// weights files other than `keeping`. Only names of exactly those patterns are touched.
    func removeLeftovers(keeping: String?) {
        guard let directory = opendir(path) else { return }
        var names: [String] = []
        while let entry = readdir(directory) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        closedir(directory)
        for name in names where name != keeping && (Checkpoint.isWeightsFileName(name) || Self.isTemporaryFileName(name)) {
            try? removeFile(path + "/" + name)
        }
    }

    /// The files a run writes: the temporary names ``writeAtomically(_:to:)`` gives them are `.<name>.tmp-<base 36>`.
    static func isTemporaryFileName(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.firstRange(of: ".tmp-") else { return false }
        let target = String(name[name.index(after: name.startIndex)..<marker.lowerBound])
        let suffix = name[marker.upperBound...]
        let ours = [Checkpoint.fileName, RecordedTokenizer.fileName, "loss.csv", "loss.svg"].contains(target) || Checkpoint.isWeightsFileName(target)
        return ours && !suffix.isEmpty && suffix.allSatisfy { $0.isASCII && ($0.isNumber || $0.isLowercase) }
    }
}
