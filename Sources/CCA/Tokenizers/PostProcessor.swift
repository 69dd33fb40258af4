/// The post-processors of `tokenizer.json` as they act on the ids of one sequence: they add special tokens
/// (BOS, EOS, CLS/SEP) when `add_special_tokens` is asked for. Offsets and type ids are not kept here.
indirect enum PostProcessor: Sendable {
    case sequence([PostProcessor])
    /// Only adjusts offsets in `tokenizers`; the ids pass unchanged.
    case byteLevel
    /// The `single` template: special tokens' ids around the sequence.
    case template(before: [Int], after: [Int], beforeNames: [String], afterNames: [String])

    init(json: JSONValue, field: String) throws(TokenizerError) {
        let object = try TokenizerJSONObject(json, field: field)
        switch try object.type() {
        case "Sequence":
            self = .sequence(try object.elements("processors", PostProcessor.init))
        case "ByteLevel": self = .byteLevel
        case "TemplateProcessing": self = try Self.template(object)
        case "RobertaProcessing", "BertProcessing":
            // Both put cls before and sep after a single sequence.
            let (clsName, cls) = try Self.namedID(object, "cls")
            let (sepName, sep) = try Self.namedID(object, "sep")
            self = .template(before: [cls], after: [sep], beforeNames: [clsName], afterNames: [sepName])
        case let other: throw .unsupported(component: "post-processor", type: other)
        }
    }

    /// `["<s>", 0]`.
    private static func namedID(_ object: TokenizerJSONObject, _ key: String) throws(TokenizerError) -> (String, Int) {
        let pair = try object.array(key)
        guard pair.count == 2, case let .string(name) = pair[0] else {
            throw .malformed(field: "\(object.field).\(key)", reason: "must be [token, id]")
        }
        return (name, try TokenizerJSONObject.integer(pair[1], field: "\(object.field).\(key)[1]"))
    }

    private static func template(_ object: TokenizerJSONObject) throws(TokenizerError) -> PostProcessor {
        let specials = try object.object("special_tokens")
        var before: [Int] = [], after: [Int] = [], beforeNames: [String] = [], afterNames: [String] = []
        var seenSequence = false
        for (index, item) in try object.array("single").enumerated() {
            let itemField = "\(object.field).single[\(index)]"
            let entry = try TokenizerJSONObject(item, field: itemField)
            if let sequence = entry["Sequence"] {
                let name = try TokenizerJSONObject(sequence, field: itemField + ".Sequence").string("id")
                guard name == "A", !seenSequence else {
                    throw .malformed(field: itemField, reason: "a single-sequence template must name sequence A once")
                }
                seenSequence = true
            } else {
                let name = try entry.object("SpecialToken").string("id")
                guard let special = specials[name] else {
                    throw .malformed(field: itemField, reason: "names the special token \(jsonQuoted(name)), missing from special_tokens")
                }
                let ids = try TokenizerJSONObject(special, field: "\(specials.field)[\(jsonQuoted(name))]").array("ids")
                    .enumerated().map { (position, id) throws(TokenizerError) in
                        try TokenizerJSONObject.integer(id, field: "\(specials.field)[\(jsonQuoted(name))].ids[\(position)]")
                    }
                if seenSequence { after += ids; afterNames.append(name) } else { before += ids; beforeNames.append(name) }
            }
        }
        guard seenSequence else { throw .malformed(field: object.field + ".single", reason: "does not contain the sequence $A") }
        return .template(before: before, after: after, beforeNames: beforeNames, afterNames: afterNames)
    }

    func apply(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        guard addSpecialTokens else { return ids }
        switch self {
        case let .sequence(processors): return processors.reduce(ids) { $1.apply($0, addSpecialTokens: true) }
        case .byteLevel: return ids
        case let .template(before, after, _, _): return before + ids + after
        }
    }

    /// The special tokens this processor puts before and after the text, by name.
    var surroundingTokens: (before: [String], after: [String]) {
        switch self {
        case let .sequence(processors):
            return processors.reduce(([], [])) { sum, processor in
                let tokens = processor.surroundingTokens
                return (sum.0 + tokens.before, sum.1 + tokens.after)
            }
        case .byteLevel: return ([], [])
        case let .template(_, _, beforeNames, afterNames): return (beforeNames, afterNames)
        }
    }
}
