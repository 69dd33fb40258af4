#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory: its bytes are paged in as they are read, so a multi-gigabyte file
/// opens at once and needs no copy in RAM.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes, valid while this object lives.
    public let bytes: UnsafeRawBufferPointer

    /// Maps the regular file at `path`. - Throws: ``FileIOError`` naming what failed.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        defer { _ = close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FileIOError(path: path, operation: "inspect", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw FileIOError(path: path, operation: "map", reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else { throw FileIOError(path: path, operation: "map", errno: errno) }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let start = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: start), bytes.count) }
    }
}
