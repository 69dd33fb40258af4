/// An `Encoder` that builds a ``JSONValue`` tree, and the writer that prints it with sorted keys.
enum JSONValueEncoder {
    static func encode<T: Encodable>(_ value: T) throws(JSONError) -> JSONValue {
        let root = EncodedNode()
        do { try value.encode(to: NodeEncoder(node: root, codingPath: [])) } catch let error as JSONError {
            throw error
        } catch let EncodingError.invalidValue(_, context) {
            throw .invalidValue(source: "the value to encode", path: CodingPath.text(context.codingPath), reason: context.debugDescription)
        } catch {
            throw .invalidValue(source: "the value to encode", path: "(top level)", reason: "\(error)")
        }
        return root.json
    }
}

extension JSONValue {
    /// The value as indented JSON text, object keys sorted, ending in a newline.
    public func prettyText() -> String {
        var text = ""
        write(into: &text, indent: "")
        return text + "\n"
    }

    private func write(into text: inout String, indent: String) {
        let inner = indent + "  "
        switch self {
        case .object(let members) where members.isEmpty: text += "{}"
        case .object(let members):
            text += "{\n"
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                text += inner + jsonQuoted(member.key) + ": "
                member.value.write(into: &text, indent: inner)
                text += index + 1 < members.count ? ",\n" : "\n"
            }
            text += indent + "}"
        case .array(let elements) where elements.isEmpty: text += "[]"
        case .array(let elements):
            text += "[\n"
            for (index, element) in elements.enumerated() {
                text += inner
                element.write(into: &text, indent: inner)
                text += index + 1 < elements.count ? ",\n" : "\n"
            }
            text += indent + "]"
        case .string(let string): text += jsonQuoted(string)
        case .integer(let number): text += "\(number)"
        case .number(let written): text += written
        case .bool(let flag): text += flag ? "true" : "false"
        case .null: text += "null"
        }
    }
}

/// A value under construction; containers share it, so nested containers write into their parent's tree.
private final class EncodedNode {
    enum Content { case unset, scalar(JSONValue), object([String: EncodedNode]), array([EncodedNode]) }
    var content = Content.unset

    var json: JSONValue {
        switch content {
        case .unset: .object([])
        case .scalar(let value): value
        case .object(let members): .object(members.map { ($0.key, $0.value.json) })
        case .array(let elements): .array(elements.map(\.json))
        }
    }

    /// A new member `key` (replacing one of that name), as the object this node becomes.
    func member(_ key: String) -> EncodedNode {
        var members: [String: EncodedNode] = [:]
        if case .object(let existing) = content { members = existing }
        let child = EncodedNode()
        members[key] = child
        content = .object(members)
        return child
    }

    /// A new last element, as the array this node becomes.
    func appendElement() -> EncodedNode {
        var elements: [EncodedNode] = []
        if case .array(let existing) = content { elements = existing }
        let child = EncodedNode()
        elements.append(child)
        content = .array(elements)
        return child
    }

    var elementCount: Int {
        if case .array(let elements) = content { return elements.count }
        return 0
    }
}

/// Encodes one value into its node; it is also that value's single-value container.
private struct NodeEncoder: Encoder, SingleValueEncodingContainer {
    let node: EncodedNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.content {} else { node.content = .object([:]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.content {} else { node.content = .array([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    func encodeNil() { node.content = .scalar(.null) }
    func encode(_ value: Bool) { node.content = .scalar(.bool(value)) }
    func encode(_ value: String) { node.content = .scalar(.string(value)) }
    func encode(_ value: Double) throws { try floatingPoint(value) }
    func encode(_ value: Float) throws { try floatingPoint(value) }
    func encode(_ value: Int) { node.content = .scalar(.integer(value)) }
    func encode(_ value: Int8) { integer(value) }
    func encode(_ value: Int16) { integer(value) }
    func encode(_ value: Int32) { integer(value) }
    func encode(_ value: Int64) { integer(value) }
    func encode(_ value: UInt) { integer(value) }
    func encode(_ value: UInt8) { integer(value) }
    func encode(_ value: UInt16) { integer(value) }
    func encode(_ value: UInt32) { integer(value) }
    func encode(_ value: UInt64) { integer(value) }
    func encode<T: Encodable>(_ value: T) throws { try value.encode(to: self) }

    private func integer<T: FixedWidthInteger>(_ value: T) {
        node.content = .scalar(Int(exactly: value).map(JSONValue.integer) ?? .number("\(value)"))
    }

    /// Swift's shortest round-trip spelling (`0.1`, `1e-06`, `5000000.0`) is valid JSON for finite values.
    private func floatingPoint<T: BinaryFloatingPoint & CustomStringConvertible>(_ value: T) throws {
        guard value.isFinite else { throw JSONError.notFinite(path: CodingPath.text(codingPath), value: "\(value)") }
        node.content = .scalar(.number(value.description))
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodedNode
    let codingPath: [any CodingKey]

    private func child(_ key: any CodingKey) -> NodeEncoder { NodeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]) }

    mutating func encodeNil(forKey key: Key) { child(key).encodeNil() }
    mutating func encode(_ value: Bool, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: String, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try child(key).encode(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try child(key).encode(value) }
    mutating func encode(_ value: Int, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: Int8, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: Int16, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: Int32, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: Int64, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: UInt, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) { child(key).encode(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) { child(key).encode(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try child(key).encode(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        child(key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { child(key).unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { child(NameKey("super")) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { child(key) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodedNode
    let codingPath: [any CodingKey]

    var count: Int { node.elementCount }

    private func next() -> NodeEncoder {
        let path = codingPath + [IndexKey(node.elementCount)]
        return NodeEncoder(node: node.appendElement(), codingPath: path)
    }

    mutating func encodeNil() { next().encodeNil() }
    mutating func encode(_ value: Bool) { next().encode(value) }
    mutating func encode(_ value: String) { next().encode(value) }
    mutating func encode(_ value: Double) throws { try next().encode(value) }
    mutating func encode(_ value: Float) throws { try next().encode(value) }
    mutating func encode(_ value: Int) { next().encode(value) }
    mutating func encode(_ value: Int8) { next().encode(value) }
    mutating func encode(_ value: Int16) { next().encode(value) }
    mutating func encode(_ value: Int32) { next().encode(value) }
    mutating func encode(_ value: Int64) { next().encode(value) }
    mutating func encode(_ value: UInt) { next().encode(value) }
    mutating func encode(_ value: UInt8) { next().encode(value) }
    mutating func encode(_ value: UInt16) { next().encode(value) }
    mutating func encode(_ value: UInt32) { next().encode(value) }
    mutating func encode(_ value: UInt64) { next().encode(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try next().encode(value) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next().container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { next().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { next() }
}
