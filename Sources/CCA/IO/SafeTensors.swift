/// Element types a safetensors header can name, spelled as in the header.
///
/// Every type is recognised so that files holding them still open; only the float types convert to ``Tensor``
/// directly, and the integer and boolean types through ``SafeTensors/integerTensor(_:)``.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64: return 8
        }
    }

    /// Whether ``SafeTensors/tensor(_:)`` converts this type to `Float`.
    public var isFloat: Bool { [.F16, .BF16, .F32, .F64].contains(self) }
}

/// A safetensors file that is malformed, or a request it cannot satisfy.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// Which stage found the problem.
    public enum Kind: Sendable {
        /// The file could not be read or written.
        case io
        /// The 8-byte length prefix or the JSON header is malformed.
        case header
        /// One tensor's description in the header is malformed.
        case entry
        /// The tensors' byte ranges do not tile the data section.
        case layout
        /// A value cannot be converted as asked.
        case value
        /// A tensor the caller needs is not in the file.
        case missingTensor
        /// The tensors handed to the writer cannot be stored.
        case write
    }

    public let kind: Kind
    /// The file concerned, or `<memory>` for bytes that did not come from a file.
    public let path: String
    /// The tensor concerned, when the problem belongs to one.
    public let tensor: String?
    /// What is wrong, in words.
    public let message: String

    public var description: String {
        "\(path): " + (tensor.map { "tensor '\($0)': " } ?? "") + message
    }
}

/// One tensor of a safetensors file, undecoded.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// The tensor's little-endian bytes: a view into the file's buffer, not a copy.
    public let bytes: ArraySlice<UInt8>

    /// Number of elements (the header was checked, so this cannot overflow).
    public var count: Int { shape.reduce(1, *) }
}

/// The contents of a [safetensors](https://github.com/huggingface/safetensors) file, and a writer for them.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to its dtype,
/// shape and `[begin, end)` byte range in the data section that follows, plus an optional `__metadata__`
/// map of strings. Reading applies the reference implementation's checks (the byte ranges must tile the data
/// section exactly) and refuses duplicate names too; any malformed input throws ``SafeTensorsError``, never traps.
public struct SafeTensors: Sendable {
    /// Headers above this size are refused, as in the reference implementation, so a corrupt length field
    /// cannot make the reader parse gigabytes.
    public static let maxHeaderSize = 100_000_000

    /// Where the bytes came from; used in error messages.
    public let path: String
    /// Tensor<Float> names in header order.
    public let names: [String]
    /// Every tensor by name.
    public let entries: [String: SafeTensorsEntry]
    /// The `__metadata__` map; empty when the file has none.
    public let metadata: [String: String]

    /// Reads and validates the file at `path`.
    ///
    /// The header is read and checked against the file's size first, so a damaged or hostile file is
    /// refused before its data section (which may be gigabytes) is read.
    /// - Throws: ``SafeTensorsError``.
    public init(contentsOf path: String) throws {
        let (header, bytes): (SafeTensorsHeader, [UInt8])
        do {
            let file = try OpenFile(path)
            header = try SafeTensorsHeader(fileSize: file.size, path: path) { try file.read(count: $0.count, at: $0.lowerBound) }
            bytes = try file.read(count: file.size, at: 0)
        } catch let error as FileIOError {
            throw SafeTensorsError(kind: .io, path: path, tensor: nil, message: error.description)
        }
        self.init(header: header, bytes: bytes, path: path)
    }

    /// Validates a whole file already in memory; `path` only names it in error messages.
    /// - Throws: ``SafeTensorsError``.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        self.init(header: try bytes.withUnsafeBytes { try SafeTensorsHeader(file: $0, path: path) }, bytes: bytes, path: path)
    }

    private init(header: SafeTensorsHeader, bytes: [UInt8], path: String) {
        (self.path, self.names, self.metadata) = (path, header.names, header.metadata)
        entries = header.placements.reduce(into: [:]) { entries, item in
            let (name, placement) = item
            entries[name] = SafeTensorsEntry(name: name, dtype: placement.dtype, shape: placement.shape, bytes: bytes[placement.bytes])
        }
    }
}

// MARK: - Conversion

extension SafeTensors {
    /// The entry called `name`, or nil.
    public subscript(name: String) -> SafeTensorsEntry? { entries[name] }

    private func entry(_ name: String) throws -> SafeTensorsEntry {
        guard let entry = entries[name] else { throw WeightError.missing(name: name, available: names.sorted()) }
        return entry
    }

    /// The float tensor called `name` (F32, F16, BF16 or F64), converted to `Float`.
    /// - Throws: ``WeightError/missing(name:available:)`` or ``WeightError/wrongDType(name:dtype:expected:)``.
    public func tensor(_ name: String) throws -> Tensor<Float> {
        let entry = try entry(name)
        guard entry.dtype.isFloat else {
            throw WeightError.wrongDType(name: name, dtype: entry.dtype.rawValue, expected: "F32, F16, BF16 or F64")
        }
        var values = [Float](repeating: 0, count: entry.count)
        entry.bytes.withUnsafeBytes { raw in values.withUnsafeMutableBufferPointer { destination in
            if let source = raw.baseAddress { entry.dtype.decodeFloats(source, count: entry.count, into: destination.baseAddress!) }
        }}
        return try Tensor<Float>(shape: entry.shape, storage: values)
    }

    /// Every tensor in the file, converted to `Float`: the weights of a model.
    /// - Throws: ``WeightError/wrongDType(name:dtype:expected:)`` if any tensor is not a float type.
    public func floatTensors() throws -> [String: Tensor<Float>] {
        try Dictionary(uniqueKeysWithValues: names.map { ($0, try tensor($0)) })
    }

    /// An integer or boolean tensor (I64, I32, U8 or BOOL) as `Float`, for token ids and attention masks.
    ///
    /// Kept apart from ``tensor(_:)`` so that an integer tensor is never mistaken for a weight.
    /// - Throws: ``WeightError`` for a missing or non-integer tensor, ``SafeTensorsError`` (kind `value`) for a
    ///   value beyond ±2^24, which a `Float` cannot hold exactly.
    public func integerTensor(_ name: String) throws -> Tensor<Float> {
        let entry = try entry(name)
        let values: [Int64]
        switch entry.dtype {
        case .I64: values = Self.load(entry.bytes, as: UInt64.self).map { Int64(bitPattern: $0) }
        case .I32: values = Self.load(entry.bytes, as: UInt32.self).map { Int64(Int32(bitPattern: $0)) }
        case .U8: values = entry.bytes.map { Int64($0) }
        case .BOOL: values = entry.bytes.map { $0 == 0 ? 0 : 1 }
        default: throw WeightError.wrongDType(name: name, dtype: entry.dtype.rawValue, expected: "I64, I32, U8 or BOOL")
        }
        let limit: Int64 = 1 << 24
        if let index = values.firstIndex(where: { $0 < -limit || $0 > limit }) {
            throw SafeTensorsError(kind: .value, path: path, tensor: name,
                                   message: "element \(index) is \(values[index]), which a Float cannot hold exactly; use int64Values(_:)")
        }
        return try Tensor<Float>(shape: entry.shape, storage: values.map { Float($0) })
    }

    /// The values of an I64 tensor, exactly.
    /// - Throws: ``WeightError`` for a missing tensor or one of another dtype.
    public func int64Values(_ name: String) throws -> [Int64] {
        let entry = try entry(name)
        guard entry.dtype == .I64 else { throw WeightError.wrongDType(name: name, dtype: entry.dtype.rawValue, expected: "I64") }
        return Self.load(entry.bytes, as: UInt64.self).map { Int64(bitPattern: $0) }
    }

    private static func load<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, as type: T.Type) -> [T] {
        bytes.withUnsafeBytes { raw in
            (0..<raw.count / MemoryLayout<T>.size).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }
}

// MARK: - Writing

extension SafeTensors {
    /// A complete safetensors file holding `tensors`, stored as `dtype`, and the I64 tensors `int64`.
    ///
    /// I64 tensors are laid out first so that every tensor starts at a multiple of its element size, which
    /// memory-mapping readers rely on. The header is padded with spaces to a multiple of 8 bytes.
    ///
    /// - Parameters:
    ///   - dtype: F32 (exact), F16 or BF16 (rounded to nearest even; F16 overflows to infinity beyond 65504), or F64.
    ///   - metadata: stored as `__metadata__`, e.g. `["format": "pt"]`, which PyTorch loaders expect.
    /// - Throws: ``SafeTensorsError`` (kind `write`) for a duplicate or reserved name, a non-float `dtype`,
    ///   or an I64 tensor whose value count does not match its shape.
    public static func serialize(
        _ tensors: [(name: String, tensor: Tensor<Float>)], as dtype: SafeTensorsDType = .F32,
        int64: [(name: String, shape: [Int], values: [Int64])] = [], metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        try serialize(tensors, as: dtype, int64: int64, metadata: metadata, path: "<memory>")
    }

    /// Writes `tensors` to `path` atomically (see ``writeAtomically(_:to:)``); arguments as in ``serialize(_:as:int64:metadata:)``.
    /// - Throws: ``SafeTensorsError``.
    public static func write(
        _ tensors: [(name: String, tensor: Tensor<Float>)], as dtype: SafeTensorsDType = .F32,
        int64: [(name: String, shape: [Int], values: [Int64])] = [], metadata: [String: String] = [:],
        to path: String
    ) throws {
        let bytes = try serialize(tensors, as: dtype, int64: int64, metadata: metadata, path: path)
        do { try writeAtomically(bytes, to: path) } catch let error as FileIOError {
            throw SafeTensorsError(kind: .io, path: path, tensor: nil, message: error.description)
        }
    }

    /// Writes a dictionary of tensors to `path` atomically, in name order so that the file is reproducible.
    /// - Throws: ``SafeTensorsError``.
    public static func write(
        _ tensors: [String: Tensor<Float>], as dtype: SafeTensorsDType = .F32, metadata: [String: String] = [:],
        to path: String
    ) throws {
        try write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, as: dtype, metadata: metadata, to: path)
    }

    private static func serialize(
        _ tensors: [(name: String, tensor: Tensor<Float>)], as dtype: SafeTensorsDType,
        int64: [(name: String, shape: [Int], values: [Int64])], metadata: [String: String], path: String
    ) throws -> [UInt8] {
        func failure(_ tensor: String?, _ message: String) -> SafeTensorsError {
            SafeTensorsError(kind: .write, path: path, tensor: tensor, message: message)
        }
        guard dtype.isFloat else { throw failure(nil, "float tensors can be stored as F32, F16, BF16 or F64, not \(dtype)") }

        var stored: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8])] = []
        for (name, shape, values) in int64 {
            let count = shape.reduce(into: 1 as Int?) { product, dimension in
                guard let current = product, dimension >= 0 else { product = nil; return }
                let (next, overflow) = current.multipliedReportingOverflow(by: dimension)
                product = overflow ? nil : next
            }
            guard count == values.count else {
                throw failure(name, "shape \(shape) does not hold the \(values.count) values given")
            }
            stored.append((name, .I64, shape, littleEndianBytes(values.map { UInt64(bitPattern: $0) })))
        }
        for (name, tensor) in tensors {
            let values = tensor.storage
            let bytes: [UInt8]
            switch dtype {
            case .F16: bytes = littleEndianBytes(values.map { HalfPrecision.float16Bits($0) })
            case .BF16: bytes = littleEndianBytes(values.map { HalfPrecision.bfloat16Bits($0) })
            case .F64: bytes = littleEndianBytes(values.map { Double($0).bitPattern })
            default: bytes = littleEndianBytes(values.map(\.bitPattern))
            }
            stored.append((name, dtype, tensor.shape, bytes))
        }

        var seen: Set<String> = []
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { jsonQuoted($0.key) + ":" + jsonQuoted($0.value) }
            fields.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for entry in stored {
            guard entry.name != "__metadata__" else { throw failure(entry.name, "the name is reserved for the metadata map") }
            guard seen.insert(entry.name).inserted else { throw failure(entry.name, "the name is given twice") }
            let shape = entry.shape.map(String.init).joined(separator: ",")
            fields.append(jsonQuoted(entry.name)
                + ":{\"dtype\":\"\(entry.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + entry.bytes.count)]}")
            offset += entry.bytes.count
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var file = littleEndianBytes([UInt64(header.count)])
        file.reserveCapacity(8 + header.count + offset)
        file.append(contentsOf: header)
        for entry in stored { file.append(contentsOf: entry.bytes) }
        return file
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.map(\.littleEndian).withUnsafeBytes { Array($0) }
    }
}
