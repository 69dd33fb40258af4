/// The text of a completion while its tokens arrive: which part is final, and whether a stop string ended it.
///
/// All the tokens so far are detokenized each time (a tokenizer may join tokens into characters), and the
/// text is handed out as UTF-8 bytes it will not take back. Held back until the next token: a last character
/// still incomplete (decoded as U+FFFD), and the longest end of the text that begins a stop string.
struct CompletionText {
    private let stops: [[UInt8]]
    private let detokenize: @Sendable ([Int]) -> String
    private var tokens: [Int] = []
    private var text: [UInt8] = []
    /// Bytes of `text` handed out so far.
    private var sent = 0

    init(stopStrings: [String], detokenize: @escaping @Sendable ([Int]) -> String) {
        stops = stopStrings.map { Array($0.utf8) }
        self.detokenize = detokenize
    }

    /// Adds a token. Returns the text that became final and, when the text now holds a stop string, `stopped`
    /// (the text returned then ends before the stop string, and nothing follows).
    mutating func append(_ token: Int) -> (text: String, stopped: Bool) {
        tokens.append(token)
        text = Array(detokenize(tokens).utf8)
        if let stop = firstStop() { return (take(upTo: stop), true) }
        return (take(upTo: text.count - heldBack()), false)
    }

    /// The rest of the text, nothing held back: the completion ended without a stop string.
    mutating func finish() -> String { take(upTo: text.count) }

    private mutating func take(upTo end: Int) -> String {
        guard end > sent else { return "" }
        defer { sent = end }
        return String(decoding: text[sent..<end], as: UTF8.self)
    }

    /// Where the earliest stop string starts; never before what was already handed out.
    private func firstStop() -> Int? {
        var first: Int?
        for stop in stops where stop.count <= text.count {
            for start in 0...(text.count - stop.count) where text[start..<(start + stop.count)].elementsEqual(stop) {
                first = min(first ?? start, start)
                break
            }
        }
        return first.map { max($0, sent) }
    }

    /// Bytes at the end that may still change: an incomplete character, or the start of a stop string.
    private func heldBack() -> Int {
        let replacement = Array("\u{FFFD}".utf8)
        let incomplete = text.count >= replacement.count && text.suffix(replacement.count).elementsEqual(replacement) ? replacement.count : 0
        var longest = incomplete
        for stop in stops {
            for length in stride(from: min(stop.count - 1, text.count), to: longest, by: -1)
                where text.suffix(length).elementsEqual(stop.prefix(length)) {
                longest = length
                break
            }
        }
        return max(0, min(longest, text.count - sent))
    }
}
