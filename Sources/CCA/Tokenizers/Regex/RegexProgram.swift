/// One step of a compiled pattern.
enum RegexInstruction {
    case scalar(UInt32)
    case foldedScalar(UInt32)
    case set(Int)
    case anyButNewline
    /// Try `first`, and `second` when everything after `first` fails.
    case split(first: Int, second: Int)
    case jump(Int)
    /// The body follows this instruction and ends with `lookaheadSucceeded`; matching goes on at `next`.
    case lookahead(negated: Bool, next: Int)
    case lookaheadSucceeded
    case assertion(RegexAssertion)
    case match
}

/// A regular expression compiled for a backtracking matcher over UTF-8 text, giving Oniguruma's leftmost-first
/// matches (the engine behind the `tokenizers` library's patterns).
///
/// Backtracking keeps the priorities of alternatives and greedy or lazy quantifiers exactly. So that no pattern
/// can take exponential time, a search that runs far past the usual number of steps switches to remembering
/// the (instruction, position) states known to fail, which bounds the rest of the work by their number.
struct RegexProgram: Sendable {
    static let maxInstructions = 100_000

    let pattern: String
    private let code: [RegexInstruction]
    private let sets: [ScalarSet]
    /// For each instruction, the bytes a match from there can begin with (a quick test that skips hopeless
    /// alternatives without trying them).
    private let firstBytes: [FirstBytes]
    private let wordSet = ScalarSet(items: [.word(negated: false)], negated: false)

    init(pattern: String) throws(TokenizerError) {
        self.pattern = pattern
        var compiler = RegexCompiler()
        compiler.emit(try RegexParser.parse(pattern))
        compiler.code.append(.match)
        guard compiler.code.count <= Self.maxInstructions else {
            throw .unsupportedPattern(pattern: pattern, reason: "it expands to more than \(Self.maxInstructions) steps")
        }
        (code, sets) = (compiler.code, compiler.sets)
        firstBytes = FirstBytes.table(code, sets)
    }

    /// A pattern matching `literal` exactly (what `tokenizers` builds from a `{"String": ...}` pattern).
    init(literal: String) {
        self.pattern = literal
        code = literal.unicodeScalars.map { .scalar($0.value) } + [.match]
        sets = []
        firstBytes = FirstBytes.table(code, sets)
    }

    /// The non-overlapping matches in `text` (valid UTF-8), left to right, as byte ranges; an empty match right
    /// after the previous match is skipped, as Oniguruma's `find_iter` does.
    func matches(in text: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        code.withUnsafeBufferPointer { code in
            var run = RegexRun(text: text, code: code, sets: sets, firstBytes: firstBytes, wordSet: wordSet)
            var results: [Range<Int>] = []
            var searchFrom = 0
            var lastMatchEnd = -1
            while searchFrom <= text.count, let found = run.search(from: searchFrom) {
                if found.isEmpty && found.upperBound == lastMatchEnd {
                    searchFrom += searchFrom < text.count ? run.scalarLength(at: searchFrom) : 1
                    continue
                }
                results.append(found)
                (searchFrom, lastMatchEnd) = (found.upperBound, found.upperBound)
            }
            return results
        }
    }
}

/// Turns a ``RegexNode`` tree into instructions.
private struct RegexCompiler {
    var code: [RegexInstruction] = []
    var sets: [ScalarSet] = []

    mutating func emit(_ node: RegexNode) {
        // Stops growing once over the limit; the caller reports the pattern as too large.
        guard code.count <= RegexProgram.maxInstructions else { return }
        switch node {
        case .empty: break
        case let .scalar(value): code.append(.scalar(value))
        case let .foldedScalar(value): code.append(.foldedScalar(value))
        case let .set(set): sets.append(set); code.append(.set(sets.count - 1))
        case .anyButNewline: code.append(.anyButNewline)
        case let .assertion(assertion): code.append(.assertion(assertion))
        case let .sequence(nodes): for node in nodes { emit(node) }
        case let .alternation(branches):
            var jumps: [Int] = []
            for branch in branches.dropLast() {
                let split = placeholder()
                emit(branch)
                jumps.append(placeholder())
                code[split] = .split(first: split + 1, second: code.count)
            }
            emit(branches[branches.count - 1])
            for jump in jumps { code[jump] = .jump(code.count) }
        case let .repetition(body, min, max, greedy):
            for _ in 0..<min { emit(body) }
            if let max {
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(placeholder())
                    emit(body)
                }
                for split in splits { code[split] = choice(split + 1, code.count, greedy: greedy) }
            } else {
                let split = placeholder()
                emit(body)
                code.append(.jump(split))
                code[split] = choice(split + 1, code.count, greedy: greedy)
            }
        case let .lookahead(body, negated):
            let start = placeholder()
            emit(body)
            code.append(.lookaheadSucceeded)
            code[start] = .lookahead(negated: negated, next: code.count)
        }
    }

    private func choice(_ body: Int, _ skip: Int, greedy: Bool) -> RegexInstruction {
        greedy ? .split(first: body, second: skip) : .split(first: skip, second: body)
    }

    private mutating func placeholder() -> Int {
        code.append(.match)
        return code.count - 1
    }
}

/// The state of one `matches(in:)` call: the backtracking stack, the step count and, once needed, the failure memo.
private struct RegexRun {
    let text: UnsafeBufferPointer<UInt8>
    let code: UnsafeBufferPointer<RegexInstruction>
    let sets: [ScalarSet]
    let firstBytes: [FirstBytes]
    let wordSet: ScalarSet
    /// Pairs (instruction, position); a negative instruction -(pc + 1) marks that state's alternatives as done.
    private var stack: [Int] = []
    private var steps = 0
    private let stepBudget: Int
    private var failedStates: Set<Int>?
    private var abandoned = false

    init(text: UnsafeBufferPointer<UInt8>, code: UnsafeBufferPointer<RegexInstruction>, sets: [ScalarSet],
         firstBytes: [FirstBytes], wordSet: ScalarSet) {
        (self.text, self.code, self.sets, self.firstBytes, self.wordSet) = (text, code, sets, firstBytes, wordSet)
        stepBudget = 100_000 + 256 * text.count
        stack.reserveCapacity(64)
    }

    /// The leftmost match starting at or after `start`.
    mutating func search(from start: Int) -> Range<Int>? {
        var position = start
        while true {
            if admits(0, at: position), let end = attempt(at: position) { return position..<end }
            if position >= text.count { return nil }
            position += scalarLength(at: position)
        }
    }

    private mutating func attempt(at position: Int) -> Int? {
        while true {
            let end = run(from: 0, at: position)
            if !abandoned { return end }
            // Too many steps: start this attempt again, remembering failed states from now on.
            abandoned = false
            stack.removeAll(keepingCapacity: true)
            failedStates = failedStates ?? []
        }
    }

    /// Whether a match from instruction `pc` could begin at `position` (false only when it certainly cannot).
    @inline(__always) private func admits(_ pc: Int, at position: Int) -> Bool {
        let first = firstBytes[pc]
        if first.canBeEmpty { return true }
        guard position < text.count else { return false }
        return first.contains(text[position])
    }

    @inline(__always) func scalarLength(at index: Int) -> Int {
        let lead = text[index]
        return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    @inline(__always) private func scalar(at index: Int) -> (value: UInt32, length: Int) {
        let lead = UInt32(text[index])
        if lead < 0x80 { return (lead, 1) }
        if lead < 0xE0 { return ((lead & 0x1F) << 6 | UInt32(text[index + 1] & 0x3F), 2) }
        if lead < 0xF0 {
            return ((lead & 0x0F) << 12 | UInt32(text[index + 1] & 0x3F) << 6 | UInt32(text[index + 2] & 0x3F), 3)
        }
        return ((lead & 0x07) << 18 | UInt32(text[index + 1] & 0x3F) << 12 | UInt32(text[index + 2] & 0x3F) << 6
                | UInt32(text[index + 3] & 0x3F), 4)
    }

    private func scalar(before index: Int) -> UInt32? {
        guard index > 0 else { return nil }
        var start = index - 1
        while start > 0, text[start] & 0xC0 == 0x80 { start -= 1 }
        return scalar(at: start).value
    }

    private func holds(_ assertion: RegexAssertion, at position: Int) -> Bool {
        let count = text.count
        switch assertion {
        case .lineStart: return position == 0 || text[position - 1] == 0x0A
        case .lineEnd: return position == count || text[position] == 0x0A
        case .textStart: return position == 0
        case .textEnd: return position == count
        case .textEndBeforeFinalNewline: return position == count || (position == count - 1 && text[position] == 0x0A)
        case .wordBoundary, .notWordBoundary:
            let before = scalar(before: position).map(wordSet.contains) ?? false
            let after = position < count ? wordSet.contains(scalar(at: position).value) : false
            return (before != after) == (assertion == .wordBoundary)
        }
    }

    /// Runs from instruction `start` at `position` until `match` or `lookaheadSucceeded`; returns the end
    /// position, or nil when every path fails (or the run was abandoned).
    private mutating func run(from start: Int, at position: Int) -> Int? {
        let base = stack.count
        var pc = start, position = position
        let count = text.count
        while true {
            var failed = false
            while !failed {
                steps += 1
                if failedStates != nil {
                    let key = pc &* (count + 1) &+ position
                    if failedStates!.contains(key) { failed = true; break }
                    stack.append(-(pc + 1)); stack.append(position)
                } else if steps > stepBudget {
                    abandoned = true
                    return nil
                }
                switch code[pc] {
                case let .scalar(value):
                    if position < count, case let (found, length) = scalar(at: position), found == value {
                        position += length; pc += 1
                    } else { failed = true }
                case let .foldedScalar(value):
                    if position < count, case let (found, length) = scalar(at: position), found == value || simpleCaseFold(found) == value {
                        position += length; pc += 1
                    } else { failed = true }
                case let .set(index):
                    if position < count, case let (found, length) = scalar(at: position), sets[index].contains(found) {
                        position += length; pc += 1
                    } else { failed = true }
                case .anyButNewline:
                    if position < count, text[position] != 0x0A { position += scalarLength(at: position); pc += 1 } else { failed = true }
                case let .split(first, second):
                    if admits(first, at: position) {
                        if admits(second, at: position) { stack.append(second); stack.append(position) }
                        pc = first
                    } else {
                        pc = second
                    }
                case let .jump(target): pc = target
                case let .lookahead(negated, next):
                    let found = run(from: pc + 1, at: position) != nil
                    if abandoned { return nil }
                    if found != negated { pc = next } else { failed = true }
                case let .assertion(assertion):
                    if holds(assertion, at: position) { pc += 1 } else { failed = true }
                case .match, .lookaheadSucceeded:
                    stack.removeSubrange(base...)
                    return position
                }
            }
            // Backtrack to the most recent untried alternative of this run.
            var resumed = false
            while stack.count > base {
                let savedPosition = stack.removeLast(), savedPC = stack.removeLast()
                if savedPC < 0 {
                    failedStates!.insert((-savedPC - 1) &* (count + 1) &+ savedPosition)
                } else {
                    (pc, position, resumed) = (savedPC, savedPosition, true)
                    break
                }
            }
            if !resumed { return nil }
        }
    }
}
