#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compiled kernels kept on disk between runs, so that only the first run pays for NVRTC.
///
/// The folder is `$CCA_KERNEL_CACHE`, else `$XDG_CACHE_HOME/swift-cca`, else `~/.cache/swift-cca`. Files are
/// named by a 64-bit FNV-1a hash of everything that determines the CUBIN. Caching is an optimisation
/// only: when the folder cannot be created or written, kernels are simply compiled every time.
struct KernelDiskCache: Sendable {
    let folder: String?

    init() {
        let folder = CUDALibrarySearch.environment("CCA_KERNEL_CACHE")
            ?? CUDALibrarySearch.environment("XDG_CACHE_HOME").map { "\($0)/swift-cca" }
            ?? CUDALibrarySearch.environment("HOME").map { "\($0)/.cache/swift-cca" }
        self.folder = folder.flatMap { Self.makeFolders($0) ? $0 : nil }
    }

    /// A file name for the CUBIN built from `parts`: `name-<hash>.cubin`.
    static func key(name: Substring, parts: [[UInt8]]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for part in parts {
            for byte in part + [0] {  // the 0 separates the parts
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
        }
        let hex = String(hash, radix: 16)
        return "\(name)-\(String(repeating: "0", count: 16 - hex.count))\(hex).cubin"
    }

    func load(_ key: String) -> [UInt8]? {
        guard let folder, let file = fopen("\(folder)/\(key)", "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = fread(&chunk, 1, chunk.count, file)
            bytes += chunk.prefix(read)
            if read < chunk.count { break }
        }
        return bytes.isEmpty ? nil : bytes
    }

    /// Writes to a temporary file and renames it, so that a concurrent reader never sees half a file.
    func store(_ key: String, _ bytes: [UInt8]) {
        guard let folder else { return }
        let temporary = "\(folder)/.\(key).\(getpid())"
        guard let file = fopen(temporary, "wb") else { return }
        let written = fwrite(bytes, 1, bytes.count, file)
        fclose(file)
        if written == bytes.count { rename(temporary, "\(folder)/\(key)") } else { unlink(temporary) }
    }

    private static func makeFolders(_ path: String) -> Bool {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/\(component)"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return false }
        }
        return access(path, W_OK) == 0
    }
}
