/// A parsed regular expression: the subset of Oniguruma's syntax that tokenizer files use.
///
/// Supported: literals and escapes (`\n \r \t \f \v \e \a`, `\uHHHH`, `\x{H…}`, `\xHH`, escaped punctuation),
/// `.`, classes `[...]` with ranges, negation and escapes inside, `\s \S \d \D \w \W`, `\p{…} \P{…} \p{^…}` for
/// general categories (and Alphabetic, White_Space, Any), groups `(...)` `(?:...)`, `(?i:...)` on literal text,
/// lookahead `(?=...)` `(?!...)`, anchors `^ $ \A \z \Z \b \B`, and the quantifiers `* + ? {n} {n,} {n,m} {,m}`,
/// greedy or lazy. Anything else (lookbehind, backreferences, possessive and atomic forms, scripts, nested
/// classes, inline flags without a group) is refused with an error rather than read differently.
indirect enum RegexNode {
    case empty
    case scalar(UInt32)
    /// A literal matched case-insensitively; the payload is its simple case fold.
    case foldedScalar(UInt32)
    case set(ScalarSet)
    /// `.`: any scalar but `\n`.
    case anyButNewline
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool)
    case lookahead(RegexNode, negated: Bool)
    case assertion(RegexAssertion)

    /// Whether the node can match without consuming text.
    var isNullable: Bool {
        switch self {
        case .empty, .lookahead, .assertion: return true
        case .scalar, .foldedScalar, .set, .anyButNewline: return false
        case let .sequence(nodes): return nodes.allSatisfy(\.isNullable)
        case let .alternation(nodes): return nodes.contains(where: \.isNullable)
        case let .repetition(node, min, _, _): return min == 0 || node.isNullable
        }
    }
}

/// Zero-width tests on the position.
enum RegexAssertion {
    /// `^` and `$` are line anchors in Oniguruma's Ruby syntax.
    case lineStart, lineEnd
    case textStart, textEnd, textEndBeforeFinalNewline
    case wordBoundary, notWordBoundary
}

/// The simple case fold used for `(?i:...)`: lowercase of uppercase when each is one scalar (so `ſ` folds
/// to `s` and the Kelvin sign to `k`); other scalars fold to themselves.
func simpleCaseFold(_ value: UInt32) -> UInt32 {
    guard let scalar = Unicode.Scalar(value) else { return value }
    let upper = scalar.properties.uppercaseMapping.unicodeScalars
    let base = upper.count == 1 ? upper.first! : scalar
    let lower = base.properties.lowercaseMapping.unicodeScalars
    return lower.count == 1 ? lower.first!.value : value
}

/// Recursive-descent parser from pattern text to ``RegexNode``.
struct RegexParser {
    /// Counted repetitions are expanded into copies, so their counts are bounded.
    static let maxRepeatCount = 1000
    static let maxDepth = 64

    private let pattern: String
    private let scalars: [UInt32]
    private var index = 0

    static func parse(_ pattern: String) throws(TokenizerError) -> RegexNode {
        var parser = RegexParser(pattern: pattern, scalars: pattern.unicodeScalars.map(\.value))
        let node = try parser.parseAlternation(caseInsensitive: false, depth: 0)
        guard parser.index == parser.scalars.count else { throw parser.failure("unmatched ')'") }
        return node
    }

    private init(pattern: String, scalars: [UInt32]) { (self.pattern, self.scalars) = (pattern, scalars) }

    private func failure(_ reason: String) -> TokenizerError {
        .unsupportedPattern(pattern: pattern, reason: reason + " (at character \(index))")
    }

    private var current: UInt32? { index < scalars.count ? scalars[index] : nil }

    private func peek(_ text: String) -> Bool {
        let wanted = text.unicodeScalars.map(\.value)
        return index + wanted.count <= scalars.count && Array(scalars[index..<index + wanted.count]) == wanted
    }

    private mutating func parseAlternation(caseInsensitive: Bool, depth: Int) throws(TokenizerError) -> RegexNode {
        guard depth <= Self.maxDepth else { throw failure("nested deeper than \(Self.maxDepth) groups") }
        var branches = [try parseSequence(caseInsensitive: caseInsensitive, depth: depth)]
        while current == ascii("|") {
            index += 1
            branches.append(try parseSequence(caseInsensitive: caseInsensitive, depth: depth))
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseSequence(caseInsensitive: Bool, depth: Int) throws(TokenizerError) -> RegexNode {
        var items: [RegexNode] = []
        while let scalar = current, scalar != ascii("|"), scalar != ascii(")") {
            let atom = try parseAtom(caseInsensitive: caseInsensitive, depth: depth)
            items.append(try parseQuantifiers(atom))
        }
        return items.count == 1 ? items[0] : items.isEmpty ? .empty : .sequence(items)
    }

    private mutating func parseQuantifiers(_ atom: RegexNode) throws(TokenizerError) -> RegexNode {
        var node = atom
        while let scalar = current {
            var bounds: (min: Int, max: Int?)
            switch scalar {
            case ascii("*"): bounds = (0, nil); index += 1
            case ascii("+"): bounds = (1, nil); index += 1
            case ascii("?"): bounds = (0, 1); index += 1
            case ascii("{"):
                guard let counted = try parseCountedBounds() else { return node }
                bounds = counted
            default: return node
            }
            var greedy = true
            if current == ascii("?") { greedy = false; index += 1 } else if current == ascii("+") {
                throw failure("possessive quantifiers are not supported")
            }
            if case .assertion = node { throw failure("a quantifier cannot follow an anchor") }
            if bounds.max == nil, node.isNullable {
                throw failure("an unbounded repetition of an expression that can match empty text is not supported")
            }
            node = .repetition(node, min: bounds.min, max: bounds.max, greedy: greedy)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}` or `{,m}`; nil (and nothing consumed) when the brace is a literal, as in Oniguruma.
    private mutating func parseCountedBounds() throws(TokenizerError) -> (min: Int, max: Int?)? {
        let start = index
        index += 1
        func number(_ parser: inout RegexParser) -> Int? {
            var value: Int?
            while let digit = parser.current, digit >= ascii("0"), digit <= ascii("9") {
                value = min((value ?? 0) * 10 + Int(digit - ascii("0")), Self.maxRepeatCount + 1)
                parser.index += 1
            }
            return value
        }
        let low = number(&self)
        var high = low
        if current == ascii(",") {
            index += 1
            high = number(&self)
            if low == nil && high == nil { index = start; return nil }
        } else if low == nil { index = start; return nil }
        guard current == ascii("}") else { index = start; return nil }
        index += 1
        let minimum = low ?? 0
        guard minimum <= Self.maxRepeatCount, (high ?? 0) <= Self.maxRepeatCount else {
            throw failure("repetition counts above \(Self.maxRepeatCount) are not supported")
        }
        if let high, high < minimum { throw failure("repetition {\(minimum),\(high)} has its bounds reversed") }
        return (minimum, high)
    }

    private mutating func parseAtom(caseInsensitive: Bool, depth: Int) throws(TokenizerError) -> RegexNode {
        let scalar = current!
        switch scalar {
        case ascii("("): return try parseGroup(caseInsensitive: caseInsensitive, depth: depth)
        case ascii("["):
            let set = try parseClass()
            if caseInsensitive { throw failure("case-insensitive character classes are not supported") }
            return .set(set)
        case ascii("."): index += 1; return .anyButNewline
        case ascii("^"): index += 1; return .assertion(.lineStart)
        case ascii("$"): index += 1; return .assertion(.lineEnd)
        case ascii("*"), ascii("+"), ascii("?"): throw failure("a quantifier has nothing to repeat")
        case ascii("\\"):
            index += 1
            let node = try parseEscape()
            if caseInsensitive, case let .scalar(value) = node { return .foldedScalar(simpleCaseFold(value)) }
            if caseInsensitive, case .set = node { throw failure("case-insensitive escapes are not supported") }
            return node
        default:
            index += 1
            return caseInsensitive ? .foldedScalar(simpleCaseFold(scalar)) : .scalar(scalar)
        }
    }

    private mutating func parseGroup(caseInsensitive: Bool, depth: Int) throws(TokenizerError) -> RegexNode {
        index += 1  // (
        var insensitive = caseInsensitive
        var lookahead: Bool?  // negated?
        if peek("?:") { index += 2 } else if peek("?i:") { index += 3; insensitive = true } else if peek("?-i:") {
            index += 4; insensitive = false
        } else if peek("?=") { index += 2; lookahead = false } else if peek("?!") { index += 2; lookahead = true } else if peek("?<=") || peek("?<!") {
            throw failure("lookbehind is not supported")
        } else if peek("?<") || peek("?P<") || peek("?'") {
            // A named group captures like a plain group; only the whole match is used here.
            while let scalar = current, scalar != ascii(">"), scalar != ascii("'") { index += 1 }
            guard current != nil else { throw failure("unterminated group name") }
            index += 1
        } else if current == ascii("?") {
            throw failure("this group form (inline flags, atomic groups, conditionals, comments) is not supported")
        }
        let body = try parseAlternation(caseInsensitive: insensitive, depth: depth + 1)
        guard current == ascii(")") else { throw failure("missing ')'") }
        index += 1
        if let negated = lookahead { return .lookahead(body, negated: negated) }
        return body
    }

    /// What an escape stands for.
    private enum Escape {
        case scalar(UInt32)
        case item(ScalarSet.Item)
        case assertion(RegexAssertion)
    }

    /// An escape outside a class, as a node.
    private mutating func parseEscape() throws(TokenizerError) -> RegexNode {
        switch try parseEscapeValue(inClass: false) {
        case let .scalar(value): return .scalar(value)
        case let .item(item): return .set(ScalarSet(items: [item], negated: false))
        case let .assertion(assertion): return .assertion(assertion)
        }
    }

    /// The escape after a backslash; anchors are refused inside a class.
    private mutating func parseEscapeValue(inClass: Bool) throws(TokenizerError) -> Escape {
        guard let scalar = current else { throw failure("pattern ends with a backslash") }
        index += 1
        let digits = ScalarSet.categoryMask("Nd")!
        switch scalar {
        case ascii("n"): return .scalar(0x0A)
        case ascii("r"): return .scalar(0x0D)
        case ascii("t"): return .scalar(0x09)
        case ascii("f"): return .scalar(0x0C)
        case ascii("v"): return .scalar(0x0B)
        case ascii("a"): return .scalar(0x07)
        case ascii("e"): return .scalar(0x1B)
        case ascii("s"): return .item(.whitespace(negated: false))
        case ascii("S"): return .item(.whitespace(negated: true))
        case ascii("d"): return .item(.categories(digits, negated: false))
        case ascii("D"): return .item(.categories(digits, negated: true))
        case ascii("w"): return .item(.word(negated: false))
        case ascii("W"): return .item(.word(negated: true))
        case ascii("p"), ascii("P"): return .item(try parseProperty(negated: scalar == ascii("P")))
        case ascii("u"): return .scalar(try parseHex(count: 4))
        case ascii("x"):
            if current == ascii("{") {
                index += 1
                let value = try parseHex(count: nil)
                guard current == ascii("}") else { throw failure("missing '}' in \\x{...}") }
                index += 1
                return .scalar(value)
            }
            return .scalar(try parseHex(count: 2))
        case ascii("A") where !inClass: return .assertion(.textStart)
        case ascii("z") where !inClass: return .assertion(.textEnd)
        case ascii("Z") where !inClass: return .assertion(.textEndBeforeFinalNewline)
        case ascii("b") where !inClass: return .assertion(.wordBoundary)
        case ascii("B") where !inClass: return .assertion(.notWordBoundary)
        default:
            let isLetterOrDigit = (scalar >= ascii("a") && scalar <= ascii("z")) || (scalar >= ascii("A") && scalar <= ascii("Z"))
                || (scalar >= ascii("0") && scalar <= ascii("9"))
            if isLetterOrDigit { throw failure("the escape \\\(Character(Unicode.Scalar(scalar)!)) is not supported") }
            return .scalar(scalar)
        }
    }

    private mutating func parseProperty(negated: Bool) throws(TokenizerError) -> ScalarSet.Item {
        guard current == ascii("{") else { throw failure("\\p needs a braced property name") }
        index += 1
        var negate = negated
        if current == ascii("^") { negate.toggle(); index += 1 }
        var name = ""
        while let scalar = current, scalar != ascii("}") { name.unicodeScalars.append(Unicode.Scalar(scalar)!); index += 1 }
        guard current == ascii("}") else { throw failure("unterminated \\p{...}") }
        index += 1
        guard let item = ScalarSet.property(name, negated: negate) else {
            throw failure("the Unicode property '\(name)' is not supported (general categories, Alphabetic, White_Space and Any are)")
        }
        return item
    }

    private mutating func parseHex(count: Int?) throws(TokenizerError) -> UInt32 {
        var value: UInt32 = 0
        var digits = 0
        while let scalar = current, count.map({ digits < $0 }) ?? (digits < 8) {
            let digit: UInt32
            switch scalar {
            case ascii("0")...ascii("9"): digit = scalar - ascii("0")
            case ascii("a")...ascii("f"): digit = scalar - ascii("a") + 10
            case ascii("A")...ascii("F"): digit = scalar - ascii("A") + 10
            default:
                guard count == nil, digits > 0 else { throw failure("bad hexadecimal escape") }
                return try checkedScalar(value)
            }
            value = value << 4 | digit
            digits += 1
            index += 1
        }
        guard digits > 0, count.map({ digits == $0 }) ?? true else { throw failure("bad hexadecimal escape") }
        return try checkedScalar(value)
    }

    private func checkedScalar(_ value: UInt32) throws(TokenizerError) -> UInt32 {
        guard Unicode.Scalar(value) != nil else { throw failure("escape names no Unicode scalar") }
        return value
    }

    private mutating func parseClass() throws(TokenizerError) -> ScalarSet {
        index += 1  // [
        var negated = false
        if current == ascii("^") { negated = true; index += 1 }
        var items: [ScalarSet.Item] = []
        var first = true
        while true {
            guard let scalar = current else { throw failure("unterminated character class") }
            if scalar == ascii("]") && !first { index += 1; break }
            first = false
            if scalar == ascii("[") { throw failure("nested classes and POSIX brackets are not supported") }
            if peek("&&") { throw failure("class intersection '&&' is not supported") }
            guard let low = try parseClassMember(into: &items) else { continue }
            // A range needs a scalar on both sides of '-'; a '-' before ']' is literal.
            if current == ascii("-"), index + 1 < scalars.count, scalars[index + 1] != ascii("]") {
                index += 1
                var ignored: [ScalarSet.Item] = []
                guard let high = try parseClassMember(into: &ignored) else { throw failure("a class range must end in a character") }
                guard low <= high else { throw failure("class range is reversed") }
                items.append(.range(low, high))
            } else {
                items.append(.range(low, low))
            }
        }
        return ScalarSet(items: items, negated: negated)
    }

    /// Reads one class member: returns a scalar (a possible range start), or appends a set item and returns nil.
    private mutating func parseClassMember(into items: inout [ScalarSet.Item]) throws(TokenizerError) -> UInt32? {
        let scalar = current!
        index += 1
        guard scalar == ascii("\\") else { return scalar }
        switch try parseEscapeValue(inClass: true) {
        case let .scalar(value): return value
        case let .item(item): items.append(item); return nil
        case .assertion: throw failure("an anchor cannot stand inside a class")
        }
    }
}

@inline(__always) func ascii(_ character: Unicode.Scalar) -> UInt32 { character.value }
