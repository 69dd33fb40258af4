@testable import CCA
import Foundation
import Testing

/// Prepared corpora: the token file round trip, its checks on damaged files, and packed windows that keep
/// the document boundaries.
@Suite struct TokenFileTests {
    static func temporaryPath(_ name: String) -> String {
        let directory = NSTemporaryDirectory() + "cca-tokens-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory + "/" + name
    }

    @Test func roundTripAndDocumentLookup() throws {
        let documents = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
        let path = Self.temporaryPath("a.tokens")
        try TokenFile.write(documents, vocabSize: 10, to: path)
        let file = try TokenFile(path: path)
        #expect((file.vocabSize, file.tokenCount, file.documentCount) == (10, 9, 3))
        #expect((0..<9).map(file.token) == documents.flatMap { $0 })
        #expect((0..<9).map(file.document(containing:)) == [0, 0, 0, 1, 2, 2, 2, 2, 2])
        #expect(throws: TokenFileError.tokenOutOfRange(token: 10, vocabSize: 10)) { try TokenFile.write([[10]], vocabSize: 10, to: path) }
        #expect(throws: TokenFileError.emptyDocument(path: path)) { try TokenFile.write([[1], []], vocabSize: 10, to: path) }
    }

    @Test func damagedFilesAreRefused() throws {
        let path = Self.temporaryPath("b.tokens")
        try TokenFile.write([[1, 2], [3]], vocabSize: 4, to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func refuses(_ bytes: Data, _ fragment: String) throws {
            try bytes.write(to: URL(fileURLWithPath: path))
            do {
                _ = try TokenFile(path: path)
                Issue.record("accepted a damaged file (\(fragment))")
            } catch let error as TokenFileError {
                #expect(error.description.contains(fragment), "\(error)")
            }
        }
        try refuses(good.dropLast(3), "truncated")
        try refuses(Data("not a token file at all, really".utf8) + good.dropFirst(31), "header")
        var badToken = good
        badToken[TokenFile.headerBytes] = 9  // token 9 in a vocabulary of 4
        try refuses(badToken, "outside the vocabulary")
        var badOffsets = good
        badOffsets[TokenFile.headerBytes + 12 + 8] = 0  // document 1 starts where document 0 does
        try refuses(badOffsets, "offsets")
    }

    /// Every window piece lies inside one document; targets are the next token except where the next token
    /// starts another document; the same batch index and seed give the same windows.
    @Test func packedWindowsKeepDocumentBoundaries() throws {
        var generator = SplitMix64(seed: 3)
        let documents = (0..<40).map { _ in (0..<Int(1 + generator.next() % 9)).map { _ in Int(generator.next() % 50) } }
        let path = Self.temporaryPath("c.tokens")
        try TokenFile.write(documents, vocabSize: 50, to: path)
        let stream = documents.flatMap { $0 }
        var documentOf: [Int] = []
        for (index, document) in documents.enumerated() { documentOf += [Int](repeating: index, count: document.count) }
        let packed = try PackedSequences(file: TokenFile(path: path), length: 12)
        for index in 0..<20 {
            let batch = packed.batch(index, size: 3, seed: 7)
            #expect(batch == packed.batch(index, size: 3, seed: 7))
            #expect(batch.inputs.count == 36 && batch.lengths.reduce(0, +) == 36)
            // Recover each window's start in the stream, then check every piece and target against the table.
            var row = 0
            for window in 0..<3 {
                let inputs = Array(batch.inputs[(window * 12)..<((window + 1) * 12)])
                let starts = (0..<(stream.count - 12)).filter { Array(stream[$0..<($0 + 12)]) == inputs }
                #expect(!starts.isEmpty)
                let start = starts[0]
                for offset in 0..<12 {
                    let crosses = documentOf[start + offset + 1] != documentOf[start + offset]
                    #expect(batch.targets[window * 12 + offset] == (crosses ? CrossEntropy.ignored : stream[start + offset + 1]))
                }
                var covered = 0
                while covered < 12 {
                    let piece = batch.lengths[row]
                    #expect(Set(documentOf[(start + covered)..<(start + covered + piece)]).count == 1, "a piece spans documents")
                    covered += piece
                    row += 1
                }
                #expect(covered == 12)
            }
        }
    }

    @Test func corpusIsSplitByDocument() throws {
        let directory = Self.temporaryPath("corpus")
        let text = Self.temporaryPath("works.txt")
        try Data("first work\n\n\nsecond\n\n\nthird one\n\n\nfourth".utf8).write(to: URL(fileURLWithPath: text))
        let documents = try CorpusPreparation.documents(paths: [text], separator: "\n\n\n")
        #expect(documents.map { String(decoding: $0, as: UTF8.self) } == ["first work", "second", "third one", "fourth"])
        let summary = try CorpusPreparation.prepare(documents, vocabSize: 256, validationFraction: 0.5, directory: directory) { $0.map(Int.init) }
        #expect(summary == .init(trainDocuments: 2, validationDocuments: 2, trainTokens: 19, validationTokens: 12))
        let validation = try TokenFile(path: directory + "/validation.tokens")
        #expect(String(decoding: (0..<validation.tokenCount).map { UInt8(validation.token($0)) }, as: UTF8.self) == "secondfourth")
        #expect(throws: CorpusError.tooFewDocuments(1)) {
            try CorpusPreparation.prepare([[1]], vocabSize: 256, validationFraction: 0.1, directory: directory) { $0.map(Int.init) }
        }
    }
}
