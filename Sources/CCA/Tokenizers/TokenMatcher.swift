/// Finds token contents in text: leftmost match first, the longest one at that position, no overlaps (the
/// Aho-Corasick `LeftmostLongest` search of `tokenizers`), over a byte trie.
struct TokenMatcher {
    private var children: [[UInt8: Int]] = [[:]]
    private var idAtNode: [Int?] = [nil]
    /// Which bytes can start a match, so that most positions are skipped at once.
    private var firstBytes = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { children[0].isEmpty }

    mutating func insert(_ content: [UInt8], id: Int) throws(TokenizerError) {
        var node = 0
        for byte in content {
            if let next = children[node][byte] { node = next; continue }
            children.append([:]); idAtNode.append(nil)
            children[node][byte] = children.count - 1
            node = children.count - 1
        }
        guard idAtNode[node] == nil else {
            throw .malformed(field: "added_tokens", reason: "has two tokens that match the same text \(jsonQuoted(String(decoding: content, as: UTF8.self)))")
        }
        idAtNode[node] = id
        firstBytes[Int(content[0])] = true
    }

    func matches(in bytes: [UInt8]) -> [(range: Range<Int>, id: Int)] {
        var found: [(range: Range<Int>, id: Int)] = []
        var start = 0
        while start < bytes.count {
            guard firstBytes[Int(bytes[start])] else { start += 1; continue }
            var node = 0, index = start
            var longest: (end: Int, id: Int)?
            while index < bytes.count, let next = children[node][bytes[index]] {
                node = next
                index += 1
                if let id = idAtNode[node] { longest = (index, id) }
            }
            if let longest {
                found.append((start..<longest.end, longest.id))
                start = longest.end
            } else {
                start += 1
            }
        }
        return found
    }
}
