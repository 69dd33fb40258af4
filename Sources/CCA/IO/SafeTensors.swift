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
        func failure(_ kind: SafeTensorsError.Kind, _ tensor: String?, _ message: String) -> SafeTensorsError {
            SafeTensorsError(kind: kind, path: path, tensor: tensor, message: message)
        }
        let bytes: [UInt8]
        do {
            let file = try OpenFile(path)
            let headerEnd = try Self.headerEnd(lengthField: file.read(count: min(8, file.size), at: 0), fileSize: file.size, failure: failure)
            _ = try Self.layout(header: file.read(count: headerEnd - 8, at: 8), dataSize: file.size - headerEnd, failure: failure)
            bytes = try file.read(count: file.size, at: 0)
        } catch let error as FileIOError {
            throw failure(.io, nil, error.description)
        }
        try self.init(bytes: bytes, path: path)
    }

    /// Validates a whole file already in memory; `path` only names it in error messages.
    /// - Throws: ``SafeTensorsError``.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        func failure(_ kind: SafeTensorsError.Kind, _ tensor: String?, _ message: String) -> SafeTensorsError {
            SafeTensorsError(kind: kind, path: path, tensor: tensor, message: message)
        }
        let headerEnd = try Self.headerEnd(lengthField: Array(bytes.prefix(8)), fileSize: bytes.count, failure: failure)
        let (layout, metadata) = try Self.layout(header: Array(bytes[8..<headerEnd]), dataSize: bytes.count - headerEnd, failure: failure)
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, dtype, shape, range) in layout {
            entries[name] = SafeTensorsEntry(name: name, dtype: dtype, shape: shape,
                                             bytes: bytes[(headerEnd + range.lowerBound)..<(headerEnd + range.upperBound)])
        }
        (self.path, self.names, self.entries, self.metadata) = (path, layout.map(\.name), entries, metadata)
    }

    /// Where the header ends, from the 8-byte length field, checked against the limit and the file size.
    private static func headerEnd(
        lengthField: [UInt8], fileSize: Int, failure: (SafeTensorsError.Kind, String?, String) -> SafeTensorsError
    ) throws -> Int {
        guard lengthField.count == 8 else {
            throw failure(.header, nil, "the file is \(fileSize) bytes long, too short for the 8-byte header length; it is truncated or not a safetensors file")
        }
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthField[$1]) << (8 * $1) }
        guard headerLength <= UInt64(Self.maxHeaderSize) else {
            throw failure(.header, nil, "the header length field says \(headerLength) bytes, above the \(Self.maxHeaderSize)-byte limit; the file is corrupt or not a safetensors file")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerEnd <= fileSize else {
            throw failure(.header, nil, "the header length field says \(headerLength) bytes but only \(fileSize - 8) follow; the file is truncated")
        }
        return headerEnd
    }

    /// Every tensor's name, dtype, shape and byte range within a data section of `dataSize` bytes, in header
    /// order, and the metadata map; checks that the ranges tile the data section.
    private static func layout(
        header headerBytes: [UInt8], dataSize: Int, failure: (SafeTensorsError.Kind, String?, String) -> SafeTensorsError
    ) throws -> (tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], range: Range<Int>)], metadata: [String: String]) {
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw failure(.header, nil, "the header is not valid UTF-8; the file is corrupt or not a safetensors file")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(headerBytes) } catch {
            throw failure(.header, nil, "the header is not valid JSON: \(error.message) (at file byte \(8 + error.offset))")
        }
        guard case .object(let members) = json else {
            throw failure(.header, nil, "the header must be a JSON object, but it is \(json.kindName)")
        }

        var tensors: [(name: String, dtype: SafeTensorsDType, shape: [Int], range: Range<Int>)] = []
        var seen: Set<String> = []
        var metadata: [String: String]?
        for (name, value) in members {
            if name == "__metadata__" {
                guard metadata == nil else { throw failure(.header, nil, "'__metadata__' appears twice in the header") }
                // null is how the reference implementation's optional map may be written.
                if case .null = value { metadata = [:]; continue }
                metadata = try Self.parseMetadata(value, failure: failure)
                continue
            }
            guard seen.insert(name).inserted else { throw failure(.entry, name, "the name appears twice in the header") }
            let (dtype, shape, range) = try Self.parseEntry(value, dataSize: dataSize) { failure(.entry, name, $0) }
            tensors.append((name, dtype, shape, range))
        }

        // The reference implementation requires the ranges to tile the data section exactly; anything else
        // means a damaged file or hidden bytes, so it is refused here too.
        var covered = 0
        var previous: String?
        for (name, _, _, range) in tensors.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            if range.lowerBound < covered {
                throw failure(.layout, name, "its bytes \(range) overlap those of '\(previous ?? "")' (which end at \(covered)); the header is corrupt")
            }
            if range.lowerBound > covered {
                throw failure(.layout, name, "data bytes \(covered)..<\(range.lowerBound) before this tensor belong to no tensor; the header is corrupt")
            }
            covered = range.upperBound
            previous = name
        }
        guard covered == dataSize else {
            throw failure(.layout, nil, "the data section has \(dataSize) bytes but the tensors cover only \(covered); the file has trailing bytes or a damaged header")
        }
        return (tensors, metadata ?? [:])
    }

    private static func parseMetadata(
        _ value: JSONValue, failure: (SafeTensorsError.Kind, String?, String) -> SafeTensorsError
    ) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw failure(.header, nil, "'__metadata__' must be an object of strings, but it is \(value.kindName)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else {
                throw failure(.header, nil, "'__metadata__' entry '\(key)' must be a string, but it is \(value.kindName)")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw failure(.header, nil, "'__metadata__' has the key '\(key)' twice")
            }
        }
        return metadata
    }

    /// One header entry's dtype, shape and byte range within the data section, all checked.
    private static func parseEntry(
        _ value: JSONValue, dataSize: Int, failure: (String) -> SafeTensorsError
    ) throws -> (SafeTensorsDType, [Int], Range<Int>) {
        guard case .object(let members) = value else {
            throw failure("its description must be an object with dtype, shape and data_offsets, but it is \(value.kindName)")
        }
        var fields: [String: JSONValue] = [:]
        for (key, value) in members where ["dtype", "shape", "data_offsets"].contains(key) {
            guard fields.updateValue(value, forKey: key) == nil else { throw failure("the field '\(key)' appears twice") }
        }
        guard let dtypeValue = fields["dtype"] else { throw failure("the field 'dtype' is missing") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw failure("'dtype' must be a string, but it is \(dtypeValue.kindName)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw failure("unknown dtype '\(dtypeName)' (supported: \(known))")
        }

        let shape = try integers(fields["shape"], field: "shape", failure: failure)
        // Zero dimensions are left out of the overflow check so that no partial product of the shape,
        // which later code may compute in any order, can overflow either.
        var nonZeroProduct = 1
        for (axis, dimension) in shape.enumerated() {
            guard dimension >= 0 else { throw failure("dimension \(axis) of shape \(shape) is negative") }
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: max(dimension, 1))
            guard !overflow else { throw failure("shape \(shape) has more elements than can be addressed") }
            nonZeroProduct = product
        }
        let elementCount = shape.contains(0) ? 0 : nonZeroProduct
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw failure("shape \(shape) of \(dtype) needs more bytes than can be addressed") }

        let offsets = try integers(fields["data_offsets"], field: "data_offsets", failure: failure)
        guard offsets.count == 2 else {
            throw failure("'data_offsets' must be [begin, end], but it has \(offsets.count) numbers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw failure("'data_offsets' [\(begin), \(end)] must satisfy 0 <= begin <= end")
        }
        guard end <= dataSize else {
            throw failure("'data_offsets' end \(end) lies beyond the \(dataSize)-byte data section; the file is truncated or the header corrupt")
        }
        guard end - begin == byteCount else {
            throw failure("it spans \(end - begin) bytes but shape \(shape) of \(dtype) needs \(byteCount)")
        }
        return (dtype, shape, begin..<end)
    }

    /// An array of JSON integers, as shapes and offsets are written.
    private static func integers(
        _ value: JSONValue?, field: String, failure: (String) -> SafeTensorsError
    ) throws -> [Int] {
        guard let value else { throw failure("the field '\(field)' is missing") }
        guard case .array(let elements) = value else {
            throw failure("'\(field)' must be an array of integers, but it is \(value.kindName)")
        }
        return try elements.enumerated().map { index, element in
            switch element {
            case .integer(let number): return number
            case .number(let text): throw failure("'\(field)' element \(index) is \(text), not an integer in range")
            default: throw failure("'\(field)' element \(index) must be an integer, but it is \(element.kindName)")
            }
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
        let values: [Float]
        switch entry.dtype {
        case .F32: values = Self.load(entry.bytes, as: UInt32.self).map(Float.init(bitPattern:))
        case .F16: values = Self.load(entry.bytes, as: UInt16.self).map { HalfPrecision.float(float16: $0) }
        case .BF16: values = Self.load(entry.bytes, as: UInt16.self).map { HalfPrecision.float(bfloat16: $0) }
        case .F64: values = Self.load(entry.bytes, as: UInt64.self).map { Float(Double(bitPattern: $0)) }
        default: throw WeightError.wrongDType(name: name, dtype: entry.dtype.rawValue, expected: "F32, F16, BF16 or F64")
        }
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
