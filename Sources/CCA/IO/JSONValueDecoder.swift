/// A `Decoder` over a parsed ``JSONValue`` tree that records which object members the type read, so that
/// ``JSON/decodeReportingUnusedKeys(_:from:source:)`` can list the others.
enum JSONValueDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from json: JSONValue, source: String) throws(JSONError)
        -> (value: T, unusedKeys: [String]) {
        let context = DecodingContext(source: source)
        do {
            let value = try T(from: ValueDecoder(value: json, codingPath: [], context: context))
            var unused: [String] = []
            context.collectUnread(json, path: [], into: &unused)
            return (value, unused)
        } catch let error as JSONError {
            throw error
        } catch let error as DecodingError {
            // Thrown by the type itself, e.g. an enum's init(rawValue:) refusing a string.
            throw context.error(error)
        } catch {
            throw .invalidValue(source: source, path: CodingPath.text([]), reason: "\(error)")
        }
    }
}

/// Key paths as error messages and the unread-member report spell them: `history[2].trainLoss`.
enum CodingPath {
    static func text(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "(top level)" }
        var text = ""
        for key in path {
            if let index = key as? IndexKey { text += "[\(index.index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text
    }
}

/// The coding key of an array element.
struct IndexKey: CodingKey {
    let index: Int
    init(_ index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { index = intValue }
    var stringValue: String { "\(index)" }
    var intValue: Int? { index }
}

/// State shared by every decoder of one document: its name and the paths of the members read.
private final class DecodingContext {
    let source: String
    var read: Set<String> = []

    init(source: String) { self.source = source }

    func markRead(_ path: [any CodingKey]) { read.insert(CodingPath.text(path)) }

    /// Appends the path of every member not read, without descending into it; read members are searched.
    func collectUnread(_ value: JSONValue, path: [any CodingKey], into unused: inout [String]) {
        switch value {
        case .object(let members):
            for (key, member) in members {
                let memberPath = path + [NameKey(key)]
                let text = CodingPath.text(memberPath)
                if read.contains(text) { collectUnread(member, path: memberPath, into: &unused) } else { unused.append(text) }
            }
        case .array(let elements):
            for (index, element) in elements.enumerated() { collectUnread(element, path: path + [IndexKey(index)], into: &unused) }
        default: break
        }
    }

    func error(_ error: DecodingError) -> JSONError {
        switch error {
        case let .dataCorrupted(context), let .typeMismatch(_, context), let .valueNotFound(_, context):
            return .invalidValue(source: source, path: CodingPath.text(context.codingPath), reason: context.debugDescription)
        case let .keyNotFound(key, context):
            return .missingKey(source: source, path: CodingPath.text(context.codingPath + [key]))
        @unknown default:
            return .invalidValue(source: source, path: "(top level)", reason: "\(error)")
        }
    }
}

/// An object member's key.
struct NameKey: CodingKey {
    let stringValue: String
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
    var intValue: Int? { nil }
}

/// Decodes one value; it is also that value's single-value container.
private struct ValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let context: DecodingContext
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func wrongType(_ expected: String) -> JSONError {
        .wrongType(source: context.source, path: CodingPath.text(codingPath), expected: expected, found: value.kindName)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let list) = value else { throw wrongType("an object") }
        var members: [String: JSONValue] = [:]
        for (key, member) in list where members.updateValue(member, forKey: key) != nil {
            throw JSONError.duplicateKey(source: context.source, path: CodingPath.text(codingPath + [NameKey(key)]))
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, order: list.map(\.key), codingPath: codingPath, context: context))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw wrongType("an array") }
        return UnkeyedContainer(elements: elements, codingPath: codingPath, context: context)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let flag) = value else { throw wrongType("true or false") }
        return flag
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let text) = value else { throw wrongType("a string") }
        return text
    }

    func decode(_ type: Double.Type) throws -> Double { try floatingPoint(type) }
    func decode(_ type: Float.Type) throws -> Float { try floatingPoint(type) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do { return try T(from: self) } catch DecodingError.dataCorrupted(let corrupted) where corrupted.codingPath.count == codingPath.count {
            // An enum with raw values refused this value: name the valid ones when the type can list them.
            guard let choices = Self.choices(of: type), case .string(let text) = value else { throw DecodingError.dataCorrupted(corrupted) }
            throw JSONError.invalidValue(source: context.source, path: CodingPath.text(codingPath),
                                         reason: "'\(text)' is not one of \(choices.joined(separator: ", "))")
        }
    }

    private static func choices<T>(of type: T.Type) -> [String]? {
        guard let iterable = type as? any CaseIterable.Type else { return nil }
        func names<C: CaseIterable>(_ type: C.Type) -> [String] {
            C.allCases.map { choice in (choice as? any RawRepresentable).map { "\($0.rawValue)" } ?? "\(choice)" }
        }
        return names(iterable)
    }

    /// An integer; numbers written with a fraction or exponent pass when they are whole (`2048.0`, `1e3`).
    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        switch value {
        case .integer(let number):
            if let exact = T(exactly: number) { return exact }
            throw outOfRange("\(number)", type)
        case .number(let text):
            if let exact = T(text) { return exact }
            if let real = Double(text), real.isFinite, real.rounded() == real, let exact = T(exactly: real) { return exact }
            throw Double(text).map { $0.rounded() == $0 } == false ? wrongType("a whole number") : outOfRange(text, type)
        default: throw wrongType("a whole number")
        }
    }

    private func floatingPoint<T: BinaryFloatingPoint & LosslessStringConvertible>(_ type: T.Type) throws -> T {
        switch value {
        case .integer(let number): return T(number)
        case .number(let text):
            // Parsing the text in the target type rounds once, so a Float written by the encoder reads back exactly.
            guard let parsed = T(text), parsed.isFinite else { throw outOfRange(text, type) }
            return parsed
        default: throw wrongType("a number")
        }
    }

    private func outOfRange<T>(_ text: String, _ type: T.Type) -> JSONError {
        .outOfRange(source: context.source, path: CodingPath.text(codingPath), number: text, type: "\(type)")
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let order: [String]
    let codingPath: [any CodingKey]
    let context: DecodingContext

    var allKeys: [Key] { order.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func child(_ key: any CodingKey) throws -> ValueDecoder {
        let path = codingPath + [key]
        guard let member = members[key.stringValue] else {
            throw JSONError.missingKey(source: context.source, path: CodingPath.text(path))
        }
        context.markRead(path)
        return ValueDecoder(value: member, codingPath: path, context: context)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try child(key).decodeNil() }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { try child(NameKey("super")) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    let context: DecodingContext
    var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey], context: DecodingContext) {
        (self.elements, self.codingPath, self.context) = (elements, codingPath, context)
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next() throws -> ValueDecoder {
        let path = codingPath + [IndexKey(currentIndex)]
        guard !isAtEnd else {
            throw JSONError.invalidValue(source: context.source, path: CodingPath.text(codingPath),
                                         reason: "the array has \(elements.count) elements, more were expected")
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: elements[currentIndex], codingPath: path, context: context)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = elements[currentIndex] else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next().decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next().decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().decode(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}
