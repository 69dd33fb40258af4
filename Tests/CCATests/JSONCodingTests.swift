@testable import CCA
import Foundation
import Testing

/// `JSON.encode` / `JSON.decode`: exact text for a known value, round trips checked by Foundation's own
/// decoder and encoder, and every refusal with the key path it names.
@Suite struct JSONCodingTests {
    enum Color: String, Codable, CaseIterable, Equatable { case red, green }

    struct Inner: Codable, Equatable {
        var ratio: Float
        var tags: [String]
    }

    struct Sample: Codable, Equatable {
        var count: Int
        var seed: UInt64
        var scale: Double
        var enabled: Bool
        var name: String
        var color: Color
        var note: String?
        var inner: Inner
        var matrix: [[Int]]
        var table: [String: Int]
    }

    static let sample = Sample(count: -3, seed: .max, scale: 0.1, enabled: true, name: "a \"b\"\n", color: .green,
                               note: nil, inner: Inner(ratio: 1e-6, tags: ["x", "y"]), matrix: [[1, 2], []], table: ["z": 1, "a": 2])

    func text(_ value: some Encodable) throws -> String { String(decoding: try JSON.encode(value), as: UTF8.self) }

    @Test func writesSortedIndentedText() throws {
        // Written by hand: keys sorted, nil left out, the Float's shortest spelling, UInt64.max in full.
        let expected = """
        {
          "color": "green",
          "count": -3,
          "enabled": true,
          "inner": {
            "ratio": 1e-06,
            "tags": [
              "x",
              "y"
            ]
          },
          "matrix": [
            [
              1,
              2
            ],
            []
          ],
          "name": "a \\"b\\"\\n",
          "scale": 0.1,
          "seed": 18446744073709551615,
          "table": {
            "a": 2,
            "z": 1
          }
        }

        """
        #expect(try text(Self.sample) == expected)
    }

    @Test func roundTripsAndAgreesWithFoundation() throws {
        let bytes = try JSON.encode(Self.sample)
        #expect(try JSON.decode(Sample.self, from: bytes) == Self.sample)
        #expect(try JSONDecoder().decode(Sample.self, from: Data(bytes)) == Self.sample)
        let foundation = Array(try JSONEncoder().encode(Self.sample))
        #expect(try JSON.decode(Sample.self, from: foundation) == Self.sample)
    }

    @Test func floatsReadBackBitExactly() throws {
        var random = SplitMix64(seed: 5)
        let floats = (0..<2000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) }.filter(\.isFinite)
        let doubles = (0..<2000).map { _ in Double(bitPattern: random.next()) }.filter(\.isFinite)
        #expect(try JSON.decode([Float].self, from: JSON.encode(floats)).map(\.bitPattern) == floats.map(\.bitPattern))
        #expect(try JSON.decode([Double].self, from: JSON.encode(doubles)).map(\.bitPattern) == doubles.map(\.bitPattern))
    }

    @Test func refusesNonFiniteNumbersNamingThePath() {
        var sample = Self.sample
        sample.inner.ratio = .nan
        #expect(throws: JSONError.notFinite(path: "inner.ratio", value: "nan")) { try JSON.encode(sample) }
        #expect(throws: JSONError.notFinite(path: "[1]", value: "-inf")) { try JSON.encode([1, -Double.infinity]) }
    }

    func decodingError<T: Decodable>(_ type: T.Type, _ json: String) -> JSONError? {
        do { _ = try JSON.decode(type, from: Array(json.utf8), source: "f.json"); return nil } catch { return error }
    }

    @Test func namesWhatIsWrong() {
        #expect(decodingError(Inner.self, #"{"ratio": 1, "tags": ["a"], "tgas": 2, "x": {"y": 1}}"#)
                == .unknownKeys(source: "f.json", paths: ["tgas", "x"]))
        #expect(decodingError(Inner.self, #"{"ratio": 1}"#) == .missingKey(source: "f.json", path: "tags"))
        #expect(decodingError(Inner.self, #"{"ratio": "1", "tags": []}"#)
                == .wrongType(source: "f.json", path: "ratio", expected: "a number", found: "a string"))
        #expect(decodingError(Inner.self, #"{"ratio": 1e39, "tags": []}"#)
                == .outOfRange(source: "f.json", path: "ratio", number: "1e39", type: "Float"))
        #expect(decodingError([[Int8]].self, "[[1], [2, 300]]") == .outOfRange(source: "f.json", path: "[1][1]", number: "300", type: "Int8"))
        #expect(decodingError(UInt64.self, "-1") == .outOfRange(source: "f.json", path: "(top level)", number: "-1", type: "UInt64"))
        #expect(decodingError(Int.self, "2.5") == .wrongType(source: "f.json", path: "(top level)", expected: "a whole number", found: "a number"))
        #expect(decodingError(Inner.self, #"{"ratio": 1, "ratio": 2, "tags": []}"#) == .duplicateKey(source: "f.json", path: "ratio"))
        #expect(decodingError([Color].self, #"["red", "blue"]"#)
                == .invalidValue(source: "f.json", path: "[1]", reason: "'blue' is not one of red, green"))
        #expect(decodingError(Inner.self, "{") == .syntax(source: "f.json", offset: 1, message: "expected a string key"))
        #expect(throws: JSONError.notUTF8(source: "JSON")) { try JSON.decode(Int.self, from: [0xFF]) }
    }

    @Test func acceptsWholeNumbersInOtherSpellingsAndNullForOptionals() throws {
        #expect(try JSON.decode([Int].self, from: Array("[2048.0, 1e3, -0]".utf8)) == [2048, 1000, 0])
        struct Maybe: Codable, Equatable { var value: Int? }
        #expect(try JSON.decode(Maybe.self, from: Array(#"{"value": null}"#.utf8)) == Maybe(value: nil))
        #expect(try JSON.decode(Maybe.self, from: Array("{}".utf8)) == Maybe(value: nil))
    }

    @Test func reportsUnusedKeysWhenAskedToIgnoreThem() throws {
        let json = Array(#"{"ratio": 2, "tags": [], "extra": [{"deep": 1}]}"#.utf8)
        let (value, unused) = try JSON.decodeReportingUnusedKeys(Inner.self, from: json)
        #expect(value == Inner(ratio: 2, tags: []) && unused == ["extra"])
        #expect(try JSON.decode(Inner.self, from: json, unknownKeys: .ignore) == Inner(ratio: 2, tags: []))
    }
}
