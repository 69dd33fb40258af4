#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face `tokenizer.json` with a BPE model, encoding and decoding exactly as the Python `tokenizers`
/// library does: GPT-2 and Llama 3 style byte-level files, and SentencePiece-style files (Llama 2, Gemma,
/// Mistral) with `▁` spaces and byte fallback.
///
/// The pipeline is that of `tokenizers`: added tokens are cut out of the raw text, the rest is normalized,
/// normalized added tokens are cut out, the pre-tokenizer splits and transforms the pieces, the BPE model
/// tokenizes each piece, and the post-processor adds special tokens when asked. A component the file names that
/// is not implemented here is an error (``TokenizerError/unsupported(component:type:)``), never approximated.
///
/// ```swift
/// let tokenizer = try BPETokenizer(contentsOf: "tokenizer.json")
/// let ids = tokenizer.encode("Hello world", addSpecialTokens: false)
/// let text = tokenizer.decode(ids, skipSpecialTokens: true)
/// ```
public struct BPETokenizer: Tokenizer {
    /// Larger files are refused before reading (the largest public tokenizer files are a few tens of MB).
    public static let maxFileBytes = 512 << 20

    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer?
    private let model: BPEModel
    private let addedVocabulary: AddedVocabulary
    private let postProcessor: PostProcessor?
    private let decoder: TokenDecoder?
    /// Whether pieces carry character origins (a Metaspace with `prepend_scheme: first` needs them).
    private let tracksOrigins: Bool

    public let vocabSize: Int
    public let bosTokenID: Int?
    public let eosTokenID: Int?

    /// Reads a `tokenizer.json` file.
    ///
    /// - Throws: ``FileIOError`` when the file cannot be read, ``TokenizerError`` when it is too large, not
    ///   JSON, malformed, or needs a component this implementation lacks.
    public init(contentsOf path: String) throws {
        var info = stat()
        if stat(path, &info) == 0, Int(info.st_size) > Self.maxFileBytes {
            throw TokenizerError.fileTooLarge(path: path, bytes: Int(info.st_size), limit: Self.maxFileBytes)
        }
        let bytes = try readFile(path)
        guard bytes.count <= Self.maxFileBytes else {
            throw TokenizerError.fileTooLarge(path: path, bytes: bytes.count, limit: Self.maxFileBytes)
        }
        try self.init(jsonBytes: bytes, source: "'\(path)'")
    }

    /// Reads the contents of a `tokenizer.json`; `source` names it in error messages.
    public init(jsonBytes: [UInt8], source: String = "the tokenizer JSON") throws(TokenizerError) {
        if let offset = firstInvalidUTF8Offset(in: jsonBytes) { throw .invalidUTF8(source: source, offset: offset) }
        let root: JSONValue
        do { root = try JSONParser.parse(jsonBytes) } catch { throw .invalidJSON(source: source, offset: error.offset, message: error.message) }
        let file = try TokenizerJSONObject(root, field: "(top level)")
        func present(_ key: String) -> JSONValue? { file[key].flatMap { $0.isNull ? nil : $0 } }

        if let version = try file.optionalString("version"), version != "1.0" {
            throw .unsupported(component: "file version", type: version)
        }
        if present("truncation") != nil { throw .unsupported(component: "setting", type: "truncation") }
        if present("padding") != nil { throw .unsupported(component: "setting", type: "padding") }

        let modelObject = try file.object("model")
        model = try BPEModel(json: modelObject)
        normalizer = try present("normalizer").map { (json) throws(TokenizerError) in try Normalizer(json: json, field: "normalizer") }
        preTokenizer = try present("pre_tokenizer").map { (json) throws(TokenizerError) in try PreTokenizer(json: json, field: "pre_tokenizer") }
        postProcessor = try present("post_processor").map { (json) throws(TokenizerError) in try PostProcessor(json: json, field: "post_processor") }
        decoder = try present("decoder").map { (json) throws(TokenizerError) in try TokenDecoder(json: json, field: "decoder") }

        tracksOrigins = preTokenizer?.needsOrigins ?? false
        if tracksOrigins, let normalizer, !normalizer.tracksOrigins {
            throw .unsupported(component: "normalizer", type: "NFC before a Metaspace pre-tokenizer with prepend_scheme \"first\"")
        }

        let addedTokens = try present("added_tokens").map { (json) throws(TokenizerError) in try Self.readAddedTokens(json) } ?? []
        addedVocabulary = try AddedVocabulary(tokens: addedTokens, modelID: { [model] in model.idsByToken[$0] },
                                              modelVocabularyCount: model.count, normalizer: normalizer)

        let largestAdded = addedVocabulary.tokensByID.keys.max() ?? -1
        vocabSize = max(model.tokensByID.count, largestAdded + 1)
        let surrounding = postProcessor?.surroundingTokens ?? (before: [], after: [])
        let lookup = { [addedVocabulary, model] (name: String) -> Int? in
            addedVocabulary.idsByContent[Array(name.utf8)] ?? model.idsByToken[Array(name.utf8)]
        }
        let specials = addedVocabulary.tokensByID.filter(\.value.special)
        func known(_ names: [String]) -> Int? {
            names.lazy.compactMap { name in specials.first { $0.value.content == Array(name.utf8) }?.key }.first
        }
        bosTokenID = surrounding.before.first.flatMap(lookup) ?? known(["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"])
        eosTokenID = surrounding.after.last.flatMap(lookup) ?? known(["<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"])
    }

    private static func readAddedTokens(_ json: JSONValue) throws(TokenizerError) -> [AddedToken] {
        guard case let .array(entries) = json else { throw .malformed(field: "added_tokens", reason: "must be an array") }
        return try entries.enumerated().map { (index, entry) throws(TokenizerError) in
            let object = try TokenizerJSONObject(entry, field: "added_tokens[\(index)]")
            var token = AddedToken(content: Array(try object.string("content").utf8))
            token.singleWord = try object.bool("single_word", default: false)
            token.leftStrip = try object.bool("lstrip", default: false)
            token.rightStrip = try object.bool("rstrip", default: false)
            token.normalized = try object.bool("normalized", default: true)
            token.special = try object.bool("special", default: false)
            return token
        }
    }

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var pieces = [TextPiece(text: Array(text.utf8), trackOrigins: tracksOrigins)]
        pieces = addedVocabulary.extract(from: pieces, normalized: false)
        if let normalizer {
            for index in pieces.indices where pieces[index].addedTokenID == nil { normalizer.apply(&pieces[index]) }
            pieces.removeAll { $0.bytes.isEmpty }
        }
        pieces = addedVocabulary.extract(from: pieces, normalized: true)
        if let preTokenizer { pieces = preTokenizer.apply(pieces) }
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3)
        var cache = BPEModel.WordCache()
        for piece in pieces {
            if let id = piece.addedTokenID { ids.append(id) } else { model.tokenize(piece, into: &ids, cache: &cache) }
        }
        return postProcessor?.apply(ids, addSpecialTokens: addSpecialTokens) ?? ids
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let tokens = ids.compactMap { id -> [UInt8]? in
            guard let token = tokenBytes(id) else { return nil }
            return skipSpecialTokens && addedVocabulary.isSpecial(token) ? nil : token
        }
        guard let decoder else { return tokens.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
        return String(decoding: decoder.decodeChain(tokens).flatMap { $0 }, as: UTF8.self)
    }

    public func id(forToken token: String) -> Int? {
        addedVocabulary.idsByContent[Array(token.utf8)] ?? model.idsByToken[Array(token.utf8)]
    }

    public func token(forID id: Int) -> String? { tokenBytes(id).map { String(decoding: $0, as: UTF8.self) } }

    /// Added tokens first (in their decoding form), then the model's vocabulary, as `id_to_token` looks them up.
    private func tokenBytes(_ id: Int) -> [UInt8]? {
        if let added = addedVocabulary.decodingContent(of: id) { return added }
        guard id >= 0, id < model.tokensByID.count else { return nil }
        return model.tokensByID[id]
    }

    /// Whether `id` names a special added token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecialToken(_ id: Int) -> Bool { tokenBytes(id).map(addedVocabulary.isSpecial) ?? false }
}
