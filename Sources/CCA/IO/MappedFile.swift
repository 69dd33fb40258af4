#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file mapped read-only into memory: its pages come from disk (or the page cache) when first
/// touched and are never copied, so a multi-gigabyte weight file opens in microseconds and costs resident
/// memory only for the parts that are read.
///
/// The mapping lives as long as this object; views into it (``StoredTensor``) keep it alive.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes, as they were when it was mapped.
    public let bytes: UnsafeRawBufferPointer

    /// Maps the file at `path`.
    /// - Throws: ``FileIOError`` if it cannot be opened, is not a regular file, or cannot be mapped.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        defer { _ = close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FileIOError(path: path, operation: "inspect", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw FileIOError(path: path, operation: "map", reason: "not a regular file") }
        let size = Int(info.st_size)
        // mmap refuses a length of 0; an empty file maps to an empty buffer.
        guard size > 0 else { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw FileIOError(path: path, operation: "map", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let address = bytes.baseAddress { _ = munmap(UnsafeMutableRawPointer(mutating: address), bytes.count) }
    }
}
