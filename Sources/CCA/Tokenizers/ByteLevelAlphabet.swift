/// GPT-2's reversible map from the 256 byte values to printable Unicode scalars, used by byte-level BPE so that
/// every byte string reads as text in the vocabulary.
///
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the other 68 bytes, in increasing
/// order, take U+0100, U+0101, …, so the space 0x20 reads as `Ġ` (U+0120) and the newline as `Ċ` (U+010A).
enum ByteLevelAlphabet {
    /// The scalar that stands for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable { table[byte] = UInt32(byte) } else { table[byte] = next; next += 1 }
        }
        return table
    }()

    /// The UTF-8 bytes of each byte's scalar.
    static let utf8ForByte: [[UInt8]] = scalarForByte.map { Array(String(Unicode.Scalar($0)!).utf8) }

    /// The byte a scalar stands for, or nil for scalars outside the alphabet.
    static func byte(for scalar: UInt32) -> UInt8? {
        if scalar < 256 {
            return scalarForByte[Int(scalar)] == scalar ? UInt8(scalar) : nil
        }
        guard scalar < 256 + 68 else { return nil }
        return byteForExtraScalar[Int(scalar - 256)]
    }

    private static let byteForExtraScalar: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 68)
        for byte in 0..<256 where scalarForByte[byte] >= 256 { table[Int(scalarForByte[byte] - 256)] = UInt8(byte) }
        return table
    }()

    /// Maps each byte of `bytes` to its scalar's UTF-8, appending to `output`.
    static func encode<C: Collection<UInt8>>(_ bytes: C, into output: inout [UInt8]) {
        for byte in bytes { output.append(contentsOf: utf8ForByte[Int(byte)]) }
    }

    /// The bytes that `text` (UTF-8) spells in the alphabet, or nil when a scalar of it is outside the alphabet.
    static func decode<C: Collection<UInt8>>(_ text: C) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
            guard let byte = byte(for: scalar.value) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
