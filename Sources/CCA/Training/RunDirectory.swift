#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory a training run writes, held for the life of the value by an exclusive lock, so two
/// `cca train` runs can never interleave their files in it.
///
/// The lock is a POSIX record lock (`fcntl(F_SETLK)`) on `.lock` in the directory. Such a lock belongs to the
/// process: the operating system drops it when the process ends, however it ends, so a crashed run never leaves
/// the directory locked; and, unlike `flock`, a child process this one spawns never shares it (a `flock` stays
/// held through the inherited descriptor of a child between its spawn and its exec, so a run that had just
/// released the directory could find it still locked by itself). Because the lock is the process's, a second
/// holder inside the same process is refused by a table of the directories this process holds. The file holds
/// the owner's process id, for people looking at the directory.
final class RunDirectory {
    static let lockFileName = ".lock"

    /// The directories (resolved paths) that values of this type in this process hold.
    private static let held = Locked(Set<String>())

    let path: String
    private let resolvedPath: String
    private let lockDescriptor: Int32
    /// Whether this value created the directory (it did not exist before).
    private let created: Bool

    /// Creates `path` if needed, checks that files can be created in it, and takes its lock.
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` or ``TrainingError/runInUse(directory:lockFile:holder:)``.
    init(_ path: String) throws {
        created = !isDirectory(path)
        do { try createDirectory(path) } catch { throw TrainingError.cannotWrite(path: path, reason: "\(error)") }
        let lockPath = path + "/" + Self.lockFileName
        guard let resolved = realpath(path, nil) else {
            throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        let resolvedPath = String(cString: resolved)
        free(resolved)
        guard Self.held.withLock({ $0.insert(resolvedPath).inserted }) else {
            throw TrainingError.runInUse(directory: path, lockFile: lockPath, holder: Int(getpid()))
        }
        do {
            lockDescriptor = try Self.lock(lockPath, directory: path)
        } catch {
            Self.held.withLock { _ = $0.remove(resolvedPath) }
            throw error
        }
        (self.path, self.resolvedPath) = (path, resolvedPath)
    }

    deinit {
        _ = close(lockDescriptor)  // releases the record lock
        Self.held.withLock { _ = $0.remove(resolvedPath) }
    }

    /// Opens (creating) the lock file, takes the record lock on it and writes this process's id into it.
    private static func lock(_ lockPath: String, directory: String) throws -> Int32 {
        // Creating the lock file is also the check that the directory is writable, before any training starts.
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TrainingError.cannotWrite(path: directory, reason: "cannot create a file in it: " + String(cString: strerror(errno)))
        }
        var request = wholeFileWriteLock()
        guard fcntl(descriptor, F_SETLK, &request) == 0 else {
            var probe = wholeFileWriteLock()
            let holder = fcntl(descriptor, F_GETLK, &probe) == 0 && probe.l_type != Int16(F_UNLCK) ? Int(probe.l_pid) : nil
            _ = close(descriptor)
            throw TrainingError.runInUse(directory: directory, lockFile: lockPath, holder: holder)
        }
        let pid = Array("\(getpid())\n".utf8)
        guard ftruncate(descriptor, 0) == 0, pid.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == pid.count else {
            let reason = String(cString: strerror(errno))
            _ = close(descriptor)
            throw TrainingError.cannotWrite(path: lockPath, reason: reason)
        }
        return descriptor
    }

    /// A request for an exclusive lock on the whole file.
    private static func wholeFileWriteLock() -> flock {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        (request.l_start, request.l_len) = (0, 0)
        return request
    }

    /// Removes the directory again when this value created it and no checkpoint was saved in it: a run that
    /// failed before its first save (a GPU that could not start, a loss that diverged) leaves nothing behind.
    /// Only the files a run writes before its first checkpoint are removed; anything else keeps the directory.
    func removeIfNothingSaved() {
        guard created, !Self.holdsRun(path) else { return }
        for name in [RecordedTokenizer.fileName, Self.lockFileName] { try? removeFile(path + "/" + name) }
        _ = rmdir(path)
    }

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
