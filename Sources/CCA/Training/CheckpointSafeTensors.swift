import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Minimal float32 safetensors reading and writing for checkpoints, plus atomic file replacement.
///
/// Stand-in until the package's `IO/SafeTensors.swift` and `writeAtomically(_:to:)` land; it follows
/// the same format (8-byte little-endian header length, JSON header, raw little-endian data).
enum CheckpointSafeTensors {
    static func encode(_ tensors: [String: Tensor]) -> [UInt8] {
        var header: [String: Any] = [:], offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let bytes = tensors[name]!.count * 4
            header[name] = ["dtype": "F32", "shape": tensors[name]!.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + Array(json)
        out.reserveCapacity(out.count + offset)
        for name in names { for value in tensors[name]!.storage { out += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) } }
        return out
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> [String: Tensor] {
        guard bytes.count >= 8 else { throw TrainingError.truncatedCheckpoint(path: path, reason: "\(bytes.count) bytes, no header") }
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        guard headerLength <= bytes.count - 8 else {
            throw TrainingError.truncatedCheckpoint(path: path, reason: "header of \(headerLength) bytes but file has \(bytes.count)")
        }
        guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any] else {
            throw TrainingError.corruptCheckpoint(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        var tensors: [String: Tensor] = [:]
        for (name, entry) in header where name != "__metadata__" {
            guard let entry = entry as? [String: Any], entry["dtype"] as? String == "F32",
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[1] - offsets[0] == 4 * shape.reduce(1, *) else {
                throw TrainingError.corruptCheckpoint(path: path, reason: "bad header entry for '\(name)' (only F32 is supported)")
            }
            guard dataStart + offsets[1] <= bytes.count else {
                throw TrainingError.truncatedCheckpoint(path: path, reason: "'\(name)' ends at byte \(dataStart + offsets[1]) of \(bytes.count)")
            }
            let storage = stride(from: dataStart + offsets[0], to: dataStart + offsets[1], by: 4).map { start in
                Float(bitPattern: bytes[start..<(start + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            }
            tensors[name] = try Tensor(shape: shape, storage: storage)
        }
        return tensors
    }

    static func read(_ path: String) throws -> [String: Tensor] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.missingCheckpoint(directory: path) }
        return try decode(Array(data), path: path)
    }

    /// Writes `bytes` to a temporary file beside `path`, flushes it, then renames it over `path`: a reader
    /// sees the old file or the new one, never a partial one.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw TrainingError.cannotWrite(path: path, reason: "cannot create \(temporary)")
        }
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            throw TrainingError.cannotWrite(path: path, reason: "\(error)")
        }
        // POSIX rename replaces the target atomically.
        guard rename(temporary, path) == 0 else {
            throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }
}
