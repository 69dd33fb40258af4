/// A safetensors header parsed and checked against the file it came from: the one reader behind
/// ``SafeTensors`` (a file read into memory) and ``MappedSafeTensors`` (a file mapped from disk).
///
/// The checks are the reference implementation's (the tensors' byte ranges tile the data section exactly)
/// plus a refusal of duplicate names; any malformed input throws ``SafeTensorsError``, never traps.
struct SafeTensorsHeader {
    /// Where one tensor lies in the file.
    struct Placement {
        var dtype: SafeTensorsDType
        var shape: [Int]
        /// Byte offsets within the whole file (header included).
        var bytes: Range<Int>
    }

    /// Tensor names in header order.
    let names: [String]
    let placements: [String: Placement]
    /// The `__metadata__` map; empty when the file has none.
    let metadata: [String: String]

    /// Parses the header of `file`, the whole file's bytes; `path` names it in error messages.
    init(file: UnsafeRawBufferPointer, path: String) throws {
        try self.init(fileSize: file.count, path: path) { Array(file[$0]) }
    }

    /// Parses the header of a file of `fileSize` bytes whose byte ranges `read` returns: only the length
    /// field and the header itself are asked for, so a hostile file is refused before its data is read.
    init(fileSize: Int, path: String, read: (Range<Int>) throws -> [UInt8]) throws {
        func failure(_ kind: SafeTensorsError.Kind, _ tensor: String?, _ message: String) -> SafeTensorsError {
            SafeTensorsError(kind: kind, path: path, tensor: tensor, message: message)
        }
        guard fileSize >= 8 else {
            throw failure(.header, nil, "the file is \(fileSize) bytes long, too short for the 8-byte header length; it is truncated or not a safetensors file")
        }
        let lengthField = try read(0..<8)
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthField[$1]) << (8 * $1) }
        guard headerLength <= UInt64(SafeTensors.maxHeaderSize) else {
            throw failure(.header, nil, "the header length field says \(headerLength) bytes, above the \(SafeTensors.maxHeaderSize)-byte limit; the file is corrupt or not a safetensors file")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerEnd <= fileSize else {
            throw failure(.header, nil, "the header length field says \(headerLength) bytes but only \(fileSize - 8) follow; the file is truncated")
        }
        let headerBytes = try read(8..<headerEnd)
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

        let dataSize = fileSize - headerEnd
        var names: [String] = []
        var placements: [String: Placement] = [:]
        var metadata: [String: String]?
        var ranges: [(name: String, range: Range<Int>)] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard metadata == nil else { throw failure(.header, nil, "'__metadata__' appears twice in the header") }
                // null is how the reference implementation's optional map may be written.
                if case .null = value { metadata = [:]; continue }
                metadata = try Self.parseMetadata(value, failure: failure)
                continue
            }
            guard placements[name] == nil else { throw failure(.entry, name, "the name appears twice in the header") }
            let (dtype, shape, range) = try Self.parseEntry(value, dataSize: dataSize) { failure(.entry, name, $0) }
            names.append(name)
            ranges.append((name, range))
            placements[name] = Placement(dtype: dtype, shape: shape,
                                         bytes: (headerEnd + range.lowerBound)..<(headerEnd + range.upperBound))
        }

        // The reference implementation requires the ranges to tile the data section exactly; anything else
        // means a damaged file or hidden bytes, so it is refused here too.
        var covered = 0
        var previous: String?
        for (name, range) in ranges.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
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
        (self.names, self.placements, self.metadata) = (names, placements, metadata ?? [:])
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
