#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that could not be read or written, with the operating system's reason.
public struct FileIOError: Error, CustomStringConvertible, Equatable {
    /// The file the caller asked for (not the temporary file an atomic write goes through).
    public let path: String
    /// What was being done, phrased to follow "cannot".
    public let operation: String
    /// Why it failed, usually the `strerror` text of `errno`.
    public let reason: String

    public init(path: String, operation: String, reason: String) {
        (self.path, self.operation, self.reason) = (path, operation, reason)
    }

    init(path: String, operation: String, errno code: Int32) {
        self.init(path: path, operation: operation, reason: String(cString: strerror(code)))
    }

    public var description: String { "cannot \(operation) '\(path)': \(reason)" }
}

/// Replaces the file at `path` with `bytes` so that readers, and the file after a crash, see either the old
/// contents or the new ones, never a mixture.
///
/// The bytes go to a temporary file in the same directory (a rename is only atomic within one file system),
/// are flushed with `fsync`, and the temporary file is then renamed over `path`. An existing file keeps its
/// permission bits. On failure the old file is untouched and the temporary file is removed.
///
/// - Throws: ``FileIOError`` naming the step that failed.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !base.isEmpty, base != ".", base != ".." else {
        throw FileIOError(path: path, operation: "write", reason: "the path names a directory, not a file")
    }
    // A bounded prefix of the name keeps the temporary name legal even when the target's name is near the limit.
    let stem = String(String.UnicodeScalarView(base.unicodeScalars.prefix(40)))

    var temporary = ""
    var descriptor: Int32 = -1
    for _ in 0..<8 {
        temporary = "\(directory)/.\(stem).tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if descriptor >= 0 || errno != EEXIST { break }
    }
    guard descriptor >= 0 else {
        throw FileIOError(path: path, operation: "create a temporary file next to", errno: errno)
    }

    do {
        var existing = stat()
        if stat(path, &existing) == 0 { _ = fchmod(descriptor, existing.st_mode & 0o7777) }
        try writeAll(bytes, to: descriptor, path: path)
        guard fsync(descriptor) == 0 else { throw FileIOError(path: path, operation: "flush to disk", errno: errno) }
        let closed = close(descriptor)
        descriptor = -1
        // close can report a deferred write error (e.g. on network file systems), so it counts as a failure.
        guard closed == 0 else { throw FileIOError(path: path, operation: "write", errno: errno) }
        guard rename(temporary, path) == 0 else {
            throw FileIOError(path: path, operation: "move the finished temporary file onto", errno: errno)
        }
    } catch {
        if descriptor >= 0 { _ = close(descriptor) }
        _ = unlink(temporary)
        throw error
    }
    // Makes the rename itself durable; some file systems refuse to sync directories, which is harmless.
    let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
    if directoryDescriptor >= 0 {
        _ = fsync(directoryDescriptor)
        _ = close(directoryDescriptor)
    }
}

private func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws {
    try bytes.withUnsafeBytes { buffer in
        var written = 0
        while written < buffer.count {
            let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw FileIOError(path: path, operation: "write", errno: errno)
            }
            written += result
        }
    }
}

/// The whole contents of the regular file at `path`, which must not be larger than `limit` bytes.
///
/// The size is checked before anything is read, so a huge or hostile file costs no memory.
/// - Throws: ``FileIOError`` if the file cannot be opened or read, is not a regular file, or is too large.
public func readFile(_ path: String, limit: Int = .max) throws -> [UInt8] {
    let file = try OpenFile(path)
    guard file.size <= limit else {
        throw FileIOError(path: path, operation: "read",
                          reason: "the file has \(file.size) bytes, more than the \(limit) allowed here; is it the right file?")
    }
    return try file.read(count: file.size, at: 0)
}

/// A regular file open for reading, closed when the value goes away.
final class OpenFile {
    let path: String
    /// Size in bytes when the file was opened.
    let size: Int
    private let descriptor: Int32

    init(_ path: String) throws {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            _ = close(descriptor)
            throw FileIOError(path: path, operation: "inspect", errno: code)
        }
        // Directories and devices report sizes that mean nothing (or would allocate wildly), so only plain files pass.
        guard info.st_mode & S_IFMT == S_IFREG else {
            _ = close(descriptor)
            throw FileIOError(path: path, operation: "read", reason: "not a regular file")
        }
        (self.path, size) = (path, Int(info.st_size))
    }

    deinit { _ = close(descriptor) }

    /// Up to `count` bytes from `offset`; fewer only when the file shrank meanwhile (the caller's parser judges).
    func read(count: Int, at offset: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, filled in
            while filled < count {
                let result = pread(descriptor, buffer.baseAddress! + filled, count - filled, off_t(offset + filled))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw FileIOError(path: path, operation: "read", errno: errno)
                }
                if result == 0 { break }
                filled += result
            }
        }
    }
}

/// Creates `path` and any missing parent directories (like `mkdir -p`); an existing directory is fine.
///
/// - Throws: ``FileIOError`` when a component cannot be created or exists as something else.
/// Whether `path` names an existing directory.
public func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}

public func createDirectory(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component + "/"
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw FileIOError(path: path, operation: "create directory", errno: errno) }
    }
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
        throw FileIOError(path: path, operation: "create directory", reason: "a file of that name is in the way")
    }
}

/// Removes the file at `path`; a missing file is not an error.
public func removeFile(_ path: String) throws {
    guard unlink(path) == 0 || errno == ENOENT else { throw FileIOError(path: path, operation: "remove", errno: errno) }
}
