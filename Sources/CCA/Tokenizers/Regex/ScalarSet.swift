/// A set of Unicode scalars, as a regular-expression character class or escape (`[^\s\p{L}]`, `\p{N}`) names it.
///
/// The meanings follow Oniguruma with UTF-8 text, the engine the `tokenizers` library runs its patterns on:
/// `\s` is White_Space, `\d` is General_Category Nd, `\w` is Letter, Mark, Number or Connector_Punctuation,
/// and `.` is anything but `\n`.
struct ScalarSet: Sendable {
    /// One member of a class: a range of scalars or a property, possibly negated.
    enum Item: Sendable {
        case range(UInt32, UInt32)
        /// General categories as a bit mask over ``ScalarSet/categoryBit(_:)``.
        case categories(UInt32, negated: Bool)
        case whitespace(negated: Bool)
        case word(negated: Bool)
        case alphabetic(negated: Bool)
    }

    private let items: [Item]
    private let negated: Bool
    /// Membership of the 128 ASCII scalars, precomputed because most text is mostly ASCII.
    private let asciiLow: UInt64, asciiHigh: UInt64

    init(items: [Item], negated: Bool) {
        (self.items, self.negated) = (items, negated)
        var low: UInt64 = 0, high: UInt64 = 0
        for value in UInt32(0)..<128 where Self.evaluate(items, negated, value) {
            if value < 64 { low |= 1 << UInt64(value) } else { high |= 1 << UInt64(value - 64) }
        }
        (asciiLow, asciiHigh) = (low, high)
    }

    @inline(__always) func contains(_ value: UInt32) -> Bool {
        if value < 64 { return asciiLow >> UInt64(value) & 1 != 0 }
        if value < 128 { return asciiHigh >> UInt64(value - 64) & 1 != 0 }
        return Self.evaluate(items, negated, value)
    }

    private static func evaluate(_ items: [Item], _ negated: Bool, _ value: UInt32) -> Bool {
        guard let scalar = Unicode.Scalar(value) else { return negated }
        for item in items where itemContains(item, scalar) { return !negated }
        return negated
    }

    private static func itemContains(_ item: Item, _ scalar: Unicode.Scalar) -> Bool {
        switch item {
        case let .range(low, high): return low <= scalar.value && scalar.value <= high
        case let .categories(mask, negated): return (mask & categoryBit(scalar.properties.generalCategory) != 0) != negated
        case let .whitespace(negated): return scalar.properties.isWhitespace != negated
        case let .word(negated): return (wordCategories & categoryBit(scalar.properties.generalCategory) != 0) != negated
        case let .alphabetic(negated): return scalar.properties.isAlphabetic != negated
        }
    }

    /// Oniguruma's `\w`: Letter, Mark, Number, Connector_Punctuation.
    private static let wordCategories = categoryMask("L")! | categoryMask("M")! | categoryMask("N")! | categoryMask("Pc")!

    /// One bit per general category, in the order of Unicode's two-letter abbreviations below.
    static func categoryBit(_ category: Unicode.GeneralCategory) -> UInt32 {
        let index: Int
        switch category {
        case .uppercaseLetter: index = 0
        case .lowercaseLetter: index = 1
        case .titlecaseLetter: index = 2
        case .modifierLetter: index = 3
        case .otherLetter: index = 4
        case .nonspacingMark: index = 5
        case .spacingMark: index = 6
        case .enclosingMark: index = 7
        case .decimalNumber: index = 8
        case .letterNumber: index = 9
        case .otherNumber: index = 10
        case .connectorPunctuation: index = 11
        case .dashPunctuation: index = 12
        case .openPunctuation: index = 13
        case .closePunctuation: index = 14
        case .initialPunctuation: index = 15
        case .finalPunctuation: index = 16
        case .otherPunctuation: index = 17
        case .mathSymbol: index = 18
        case .currencySymbol: index = 19
        case .modifierSymbol: index = 20
        case .otherSymbol: index = 21
        case .spaceSeparator: index = 22
        case .lineSeparator: index = 23
        case .paragraphSeparator: index = 24
        case .control: index = 25
        case .format: index = 26
        case .surrogate: index = 27
        case .privateUse: index = 28
        case .unassigned: index = 29
        @unknown default: index = 29
        }
        return 1 << UInt32(index)
    }

    private static let categoryAbbreviations = ["lu", "ll", "lt", "lm", "lo", "mn", "mc", "me", "nd", "nl", "no", "pc", "pd",
                                                "ps", "pe", "pi", "pf", "po", "sm", "sc", "sk", "so", "zs", "zl", "zp", "cc",
                                                "cf", "cs", "co", "cn"]
    private static let categoryLongNames = [
        "uppercaseletter", "lowercaseletter", "titlecaseletter", "modifierletter", "otherletter", "nonspacingmark",
        "spacingmark", "enclosingmark", "decimalnumber", "letternumber", "othernumber", "connectorpunctuation",
        "dashpunctuation", "openpunctuation", "closepunctuation", "initialpunctuation", "finalpunctuation",
        "otherpunctuation", "mathsymbol", "currencysymbol", "modifiersymbol", "othersymbol", "spaceseparator",
        "lineseparator", "paragraphseparator", "control", "format", "surrogate", "privateuse", "unassigned"]
    private static let groupNames: [String: String] = [
        "letter": "l", "mark": "m", "combiningmark": "m", "number": "n", "punctuation": "p", "punct": "p",
        "symbol": "s", "separator": "z", "other": "c", "casedletter": "lc"]

    /// The category mask for a property name as Oniguruma spells it (`L`, `Lu`, `Letter`, `Uppercase_Letter`;
    /// case, spaces, `_` and `-` ignored), or nil when the name is not a general category.
    static func categoryMask(_ name: String) -> UInt32? {
        var key = String(name.lowercased().filter { $0 != " " && $0 != "_" && $0 != "-" })
        key = groupNames[key] ?? key
        if key == "lc" { return categoryMask("Lu")! | categoryMask("Ll")! | categoryMask("Lt")! }
        if let index = categoryAbbreviations.firstIndex(of: key) ?? categoryLongNames.firstIndex(of: key) {
            return 1 << UInt32(index)
        }
        guard key.count == 1 else { return nil }
        var mask: UInt32 = 0
        for (index, abbreviation) in categoryAbbreviations.enumerated() where abbreviation.hasPrefix(key) {
            mask |= 1 << UInt32(index)
        }
        return mask == 0 ? nil : mask
    }

    /// A class item for `\p{name}` (or `\P{name}` when `negated`), or nil for a property this matcher lacks.
    static func property(_ name: String, negated: Bool) -> Item? {
        if let mask = categoryMask(name) { return .categories(mask, negated: negated) }
        switch String(name.lowercased().filter { $0 != " " && $0 != "_" && $0 != "-" }) {
        case "any": return .categories(negated ? 0 : ~0, negated: false)
        case "whitespace", "space": return .whitespace(negated: negated)
        case "alpha", "alphabetic": return .alphabetic(negated: negated)
        case "word": return .word(negated: negated)
        default: return nil
        }
    }
}
