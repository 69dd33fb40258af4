import CCA
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Helpers

/// A safetensors file assembled byte by byte: the length prefix (the real one unless overridden), the header
/// text as given, and the data section.
private func assemble(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    let length = declaredLength ?? UInt64(headerBytes.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + headerBytes + data
}

private func pow2(_ exponent: Int) -> Float { Float(sign: .plus, exponent: exponent, significand: 1) }

private func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
}

/// A fresh empty directory, removed by `removeDirectory`.
private func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("cca-io-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    return path
}

private func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

private func listing(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
}

/// `x` rounded to a float format with `mantissaBits` explicit significand bits, nearest-even, assuming the
/// result is a normal number: scaling by a power of two is exact, so rounding the scaled value to an integer
/// is the whole rounding step. Written without bit tricks to check the library's bit-level code.
private func roundedToSignificand(_ x: Float, mantissaBits: Int) -> Float {
    guard x != 0, x.isFinite else { return x }
    let ulp = Float(sign: .plus, exponent: x.exponent - mantissaBits, significand: 1)
    return (x / ulp).rounded(.toNearestOrEven) * ulp
}

/// Expects `bytes` to be refused with a ``SafeTensorsError`` whose message contains each of `fragments`.
private func expectRejected(_ bytes: [UInt8], _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    let error = #expect(throws: SafeTensorsError.self, sourceLocation: sourceLocation) { try SafeTensors(bytes: bytes) }
    for fragment in fragments {
        #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "no error") lacks '\(fragment)'",
                sourceLocation: sourceLocation)
    }
}

/// A valid file with several dtypes, metadata and an empty tensor: the seed of the corruption tests.
private func sampleFile() throws -> [UInt8] {
    try SafeTensors.serialize(
        [("qkv_proj.q_proj.weight", Tensor<Float>(randomNormal: [4, 3], seed: 1)), ("qk_norm.temp", Tensor<Float>(zeros: [2], value: 1)),
         ("empty", Tensor<Float>(zeros: [0, 3]))],
        as: .F16, int64: [("ids", [2], [7, -1])], metadata: ["format": "pt"])
}

// MARK: - Tests

@Suite struct SafeTensorsTests {
    @Test func float32RoundTripIsBitExact() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let specials: [Float] = [0, -0.0, 1, -2.5, .infinity, -.infinity, .nan, .leastNonzeroMagnitude,
                                 .greatestFiniteMagnitude, .leastNormalMagnitude, 0.1]
        let tensors: [(name: String, tensor: Tensor<Float>)] = [
            ("b.weight", Tensor<Float>(randomNormal: [3, 5], seed: 7)),
            ("a.specials", try Tensor<Float>(shape: [specials.count], storage: specials)),
            ("scalar", try Tensor<Float>(shape: [], storage: [42])),
            ("empty", Tensor<Float>(zeros: [2, 0, 3])),
        ]
        let path = directory + "/model.safetensors"
        try SafeTensors.write(tensors, to: path)
        let file = try SafeTensors(contentsOf: path)

        #expect(file.names == tensors.map(\.name))
        #expect(file.metadata.isEmpty)
        for (name, tensor) in tensors {
            let loaded = try file.tensor(name)
            #expect(file[name]?.dtype == .F32)
            #expect(loaded.shape == tensor.shape)
            #expect(loaded.storage.map(\.bitPattern) == tensor.storage.map(\.bitPattern), "\(name)")
        }
        #expect(listing(directory) == ["model.safetensors"])
    }

    @Test func float16RoundTripRoundsToNearestEven() throws {
        var generator = SplitMix64(seed: 3)
        // Magnitudes from 2^-14 (the smallest normal half) to about 2^15, so that every value is a normal half.
        var values = (0..<2000).map { _ in
            (generator.nextUniform() < 0.5 ? -1 : 1) * pow2(Int(generator.next() % 29) - 14) * (1 + generator.nextUniform())
        }
        values += [1, -1, 0.5, 1024, 65504, 65519, 1 + pow2(-11), 1 + 3 * pow2(-11)]  // exact, and two ties
        let tensor = try Tensor<Float>(shape: [values.count], storage: values)
        let loaded = try SafeTensors(bytes: SafeTensors.serialize([("w", tensor)], as: .F16)).tensor("w")

        for (x, y) in zip(values, loaded.storage) {
            #expect(y == roundedToSignificand(x, mantissaBits: 10), "\(x)")
            #expect(abs(y - x) <= abs(x) * pow2(-11), "\(x)")  // half an ulp of an 11-bit significand
            #if !(os(macOS) && arch(x86_64))
            #expect(y == Float(Float16(x)), "\(x)")  // the compiler's own conversion agrees
            #endif
        }
        // Out of the normal range: overflow to infinity, subnormals, underflow to signed zero.
        let edges: [Float] = [65520, 70000, -1e9, pow2(-24), 3 * pow2(-20), pow2(-26), -pow2(-26)]
        let expected: [Float] = [.infinity, .infinity, -.infinity, pow2(-24), 3 * pow2(-20), 0, -0.0]
        let edgeTensor = try Tensor<Float>(shape: [edges.count], storage: edges)
        let edgeLoaded = try SafeTensors(bytes: SafeTensors.serialize([("e", edgeTensor)], as: .F16)).tensor("e")
        #expect(edgeLoaded.storage.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test func bfloat16RoundTripRoundsToNearestEven() throws {
        var generator = SplitMix64(seed: 4)
        var values = (0..<2000).map { _ in
            (generator.nextUniform() < 0.5 ? -1 : 1) * pow2(Int(generator.next() % 200) - 100) * (1 + generator.nextUniform())
        }
        values += [1, -3.140625, 1 + pow2(-8), 1 + 3 * pow2(-8), 3e38]  // exact, two ties, near the top
        let tensor = try Tensor<Float>(shape: [5, values.count / 5], storage: values)
        let file = try SafeTensors(bytes: SafeTensors.serialize([("w", tensor)], as: .BF16))
        #expect(file["w"]?.dtype == .BF16)
        #expect(file["w"]?.bytes.count == values.count * 2)
        let loaded = try file.tensor("w")
        #expect(loaded.shape == tensor.shape)
        for (x, y) in zip(values, loaded.storage) {
            #expect(y == roundedToSignificand(x, mantissaBits: 7), "\(x)")
            #expect(abs(y - x) <= abs(x) * pow2(-8), "\(x)")
        }
        let nan = try SafeTensors(bytes: SafeTensors.serialize([("n", Tensor<Float>(shape: [1], storage: [.nan]))], as: .BF16))
        #expect(try nan.tensor("n").storage[0].isNaN)
    }

    @Test func int64AndMetadataRoundTrip() throws {
        let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t bell \u{7} é 🙂", "": "empty key"]
        let ids: [Int64] = [0, 1, -1, 16_777_216, -16_777_216, 50_000]
        let big: [Int64] = [.min, .max, 1 << 40]
        let bytes = try SafeTensors.serialize(
            [("w", Tensor<Float>(zeros: [2, 2], value: 0.5))], as: .F16,
            int64: [("input_ids", [2, 3], ids), ("big", [3], big)], metadata: metadata)
        let file = try SafeTensors(bytes: bytes)

        #expect(file.metadata == metadata)
        #expect(file.names == ["input_ids", "big", "w"])  // integers first, for alignment
        #expect(try file.int64Values("input_ids") == ids)
        #expect(try file.int64Values("big") == big)
        let idTensor = try file.integerTensor("input_ids")
        #expect(idTensor.shape == [2, 3])
        #expect(idTensor.storage == ids.map { Float($0) })
        #expect(try file.tensor("w").storage == [0.5, 0.5, 0.5, 0.5])

        // Values a Float cannot hold exactly are refused rather than silently rounded.
        let error = #expect(throws: SafeTensorsError.self) { try file.integerTensor("big") }
        #expect(error?.kind == .value)
        #expect(error?.description.contains("big") == true)
        // An id tensor is never handed out as a weight, and a weight never as ids.
        #expect(throws: WeightError.wrongDType(name: "input_ids", dtype: "I64", expected: "F32, F16, BF16 or F64")) {
            try file.tensor("input_ids")
        }
        #expect(throws: WeightError.self) { try file.floatTensors() }
        #expect(throws: WeightError.self) { try file.integerTensor("w") }
        #expect(throws: WeightError.self) { try file.int64Values("w") }
        #expect(throws: WeightError.missing(name: "nope", available: ["big", "input_ids", "w"])) { try file.tensor("nope") }
    }

    @Test func writerLaysOutTheHeaderLikeTheReferenceLibrary() throws {
        let tensor = try Tensor<Float>(shape: [2], storage: [1, -2])
        let bytes = try SafeTensors.serialize([("w", tensor)], int64: [("i", [1], [3])], metadata: ["format": "pt"])
        let json = #"{"__metadata__":{"format":"pt"},"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        let padded = json + String(repeating: " ", count: (8 - json.utf8.count % 8) % 8)
        #expect(bytes == assemble(padded, data: littleEndian([Int64(3)]) + littleEndian([Float(1).bitPattern, Float(-2).bitPattern])))
        #expect((bytes.count - 16 - 8) % 8 == 0)

        // The dictionary form writes in name order, so equal inputs give equal files.
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try SafeTensors.write(["b": tensor, "a": tensor, "c": tensor], as: .BF16, to: directory + "/d.safetensors")
        #expect(try SafeTensors(contentsOf: directory + "/d.safetensors").names == ["a", "b", "c"])
    }

    @Test func writerRefusesWhatItCannotStore() throws {
        let t = Tensor<Float>(zeros: [2])
        let cases: [() throws -> [UInt8]] = [
            { try SafeTensors.serialize([("a", t), ("a", t)]) },
            { try SafeTensors.serialize([("a", t)], int64: [("a", [1], [1])]) },
            { try SafeTensors.serialize([("__metadata__", t)]) },
            { try SafeTensors.serialize([("a", t)], as: .I64) },
            { try SafeTensors.serialize([], int64: [("i", [2, 2], [1, 2, 3])]) },
            { try SafeTensors.serialize([], int64: [("i", [-1, -3], [1, 2, 3])]) },
            { try SafeTensors.serialize([], int64: [("i", [Int.max, 2], [])]) },
        ]
        for make in cases {
            let error = #expect(throws: SafeTensorsError.self) { try make() }
            #expect(error?.kind == .write)
        }
    }

    /// Bytes laid out as Python's `safetensors.torch.save_file` would: compact JSON, metadata first, header padded
    /// with spaces to 8 bytes; plus liberties a valid file may take (whitespace, field order, escaped names).
    @Test func handAssembledFileParses() throws {
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3555, 0x0001, 0x7C00, 0x8000]  // 1, -2, 0.333…, 2^-24, inf, -0
        let bf16: [UInt16] = [0x3F80, 0x4049, 0xC2F7]  // 1, 3.140625, -123.5
        let f32: [UInt32] = [0x3DCC_CCCD, 0xBF80_0000]  // 0.1, -1
        let i64: [Int64] = [-1, 5]
        let bools: [UInt8] = [1, 0, 1]
        let data = littleEndian(i64) + littleEndian(f32) + littleEndian(f16) + littleEndian(bf16) + bools
        let header = """
            {"__metadata__":{"format":"pt"},"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},\
            "x":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]},
              "h" : { "shape" : [ 2 , 3 ] , "data_offsets" : [ 24 , 36 ] , "dtype" : "F16" } ,\
            "caf\\u00e9\\n\\ud83d\\ude00":{"dtype":"BF16","shape":[3],"data_offsets":[36,42]},\
            "mask":{"data_offsets":[42,45],"dtype":"BOOL","shape":[3]}}
            """
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        let file = try SafeTensors(bytes: assemble(padded, data: data), path: "hand.safetensors")

        #expect(file.metadata == ["format": "pt"])
        #expect(file.names == ["ids", "x", "h", "café\n😀", "mask"])
        #expect(try file.int64Values("ids") == [-1, 5])
        #expect(try file.tensor("x") == Tensor<Float>(shape: [1, 2], storage: [0.1, -1]))
        let h = try file.tensor("h")
        #expect(h.shape == [2, 3])
        #expect(h.storage.map(\.bitPattern) == [1, -2, 0.333251953125, pow2(-24), .infinity, -0.0].map(\.bitPattern))
        #expect(try file.tensor("café\n😀").storage == [1, 3.140625, -123.5])
        #expect(try file.integerTensor("mask").storage == [1, 0, 1])
        #expect(file["mask"]?.dtype == .BOOL)
        #expect(file["h"]?.count == 6)
        #expect(throws: WeightError.self) { try file.floatTensors() }
    }

    @Test func specificCorruptionsAreRefusedWithUsefulMessages() throws {
        let four = [UInt8](repeating: 0, count: 4)
        func entry(_ name: String, _ body: String) -> String { "{\"\(name)\":{\(body)}}" }

        expectRejected([], "0 bytes long")
        expectRejected([1, 2, 3], "3 bytes long")
        expectRejected(assemble("{}", declaredLength: .max), "above the")
        expectRejected(assemble("{}", declaredLength: 1 << 63), "above the")
        expectRejected(assemble("{}", declaredLength: UInt64(SafeTensors.maxHeaderSize) + 1), "above the")
        expectRejected(assemble("{}", declaredLength: 3), "truncated")
        expectRejected(assemble("{}", declaredLength: 0), "not valid JSON")
        expectRejected(assemble("hello"), "not valid JSON")
        expectRejected(assemble("{} x"), "not valid JSON")
        expectRejected(assemble("{\"a\":}"), "not valid JSON")
        expectRejected(assemble("[]"), "must be a JSON object")
        expectRejected(assemble("\"s\""), "must be a JSON object")
        expectRejected([2, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF], "UTF-8")
        expectRejected(assemble("{\"a\":5}", data: four), "'a'", "must be an object")
        expectRejected(assemble(entry("a", #""shape":[1],"data_offsets":[0,4]"#), data: four), "'a'", "'dtype' is missing")
        expectRejected(assemble(entry("a", #""dtype":"F32","data_offsets":[0,4]"#), data: four), "'shape' is missing")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1]"#), data: four), "'data_offsets' is missing")
        expectRejected(assemble(entry("a", #""dtype":4,"shape":[1],"data_offsets":[0,4]"#), data: four), "must be a string")
        expectRejected(assemble(entry("a", #""dtype":"F33","shape":[1],"data_offsets":[0,4]"#), data: four), "unknown dtype 'F33'")
        expectRejected(assemble(entry("a", #""dtype":"f32","shape":[1],"data_offsets":[0,4]"#), data: four), "unknown dtype")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":"1","data_offsets":[0,4]"#), data: four), "array of integers")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1.0],"data_offsets":[0,4]"#), data: four), "not an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1e0],"data_offsets":[0,4]"#), data: four), "not an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[-1],"data_offsets":[0,4]"#), data: four), "negative")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[true],"data_offsets":[0,4]"#), data: four), "must be an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[[1]],"data_offsets":[0,4]"#), data: four), "must be an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]"#), data: four), "not an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]"#), data: four), "addressed")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]"#)), "addressed")
        expectRejected(assemble(entry("a", #""dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]"#), data: four), "addressed")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[0]"#), data: four), "[begin, end]")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[0,4,4]"#), data: four), "[begin, end]")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[4,0]"#), data: four), "begin <= end")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[-4,0]"#), data: four), "begin <= end")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[0,"4"]"#), data: four), "must be an integer")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[0,8]"#), data: four), "beyond")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[9223372036854775800,9223372036854775807]"#), data: four), "beyond")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[2],"data_offsets":[0,4]"#), data: four), "'a'", "needs 8")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[4,8]"#), data: four + four), "belong to no tensor")
        expectRejected(assemble(entry("a", #""dtype":"F32","shape":[1],"data_offsets":[0,4]"#), data: four + four), "trailing")
        expectRejected(assemble(entry("a", #""dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]"#), data: four), "twice")
        expectRejected(assemble(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                data: four + four + four), "'b'", "overlap", "'a'")
        expectRejected(assemble(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#,
                                data: four + four), "overlap")
        expectRejected(assemble(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                data: four + four), "'a'", "twice")
        expectRejected(assemble(#"{"__metadata__":"x"}"#), "__metadata__")
        expectRejected(assemble(#"{"__metadata__":{"k":1}}"#), "'k' must be a string")
        expectRejected(assemble(#"{"__metadata__":{"k":"1","k":"2"}}"#), "twice")
        expectRejected(assemble(#"{"__metadata__":{},"__metadata__":{}}"#), "twice")
        for badJSON in [#"{"\x":1}"#, #"{"\ud800":1}"#, #"{"\udc00x":1}"#, #"{"\u12":1}"#, "{\"a\u{1}\":1}", #"{"a"#,
                        #"{"a":[01]}"#, #"{"a":-}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":1e}"#, #"{"a":+1}"#, #"{"a":nul}"#,
                        #"{"a":tru}"#, #"{"a" 1}"#, #"{"a":1,}"#, #"{"a":[1,]}"#, #"{a:1}"#, "{\"a\":1}\u{0}", "\u{FEFF}{}"] {
            expectRejected(assemble(badJSON), "not valid JSON")
        }
        expectRejected(assemble(String(repeating: "[", count: 100_000)), "nested deeper")
        expectRejected(assemble(String(repeating: "{\"a\":", count: 100_000)), "nested deeper")

        // The file path reaches the message, and I/O problems are the same error type.
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let missing = #expect(throws: SafeTensorsError.self) { try SafeTensors(contentsOf: directory + "/missing.safetensors") }
        #expect(missing?.kind == .io)
        #expect(missing?.description.contains("missing.safetensors") == true)
        #expect(throws: SafeTensorsError.self) { try SafeTensors(contentsOf: directory) }
        let path = directory + "/short.safetensors"
        try writeAtomically([1, 2], to: path)
        let short = #expect(throws: SafeTensorsError.self) { try SafeTensors(contentsOf: path) }
        #expect(short?.description.hasPrefix(path) == true)
    }

    @Test func validEdgeCasesParse() throws {
        #expect(try SafeTensors(bytes: assemble("{}")).names.isEmpty)
        #expect(try SafeTensors(bytes: assemble("  {}\n\t        ")).names.isEmpty)
        #expect(try SafeTensors(bytes: assemble(#"{"__metadata__":null}"#)).metadata.isEmpty)
        let scalar = try SafeTensors(bytes: assemble(#"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
                                                     data: littleEndian([Float(2).bitPattern])))
        #expect(try scalar.tensor("s") == Tensor<Float>(shape: [], storage: [2]))
        // Unknown extra fields are ignored, as the reference implementation does.
        let extra = try SafeTensors(bytes: assemble(#"{"e":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":[{}]}}"#))
        #expect(extra["e"]?.count == 0)
        #expect(throws: WeightError.self) { try extra.tensor("e") }
    }

    /// Thousands of damaged files: each must either be refused with ``SafeTensorsError`` or parse into tensors
    /// that convert without trapping. A crash here fails the whole test run.
    @Test func hostileFilesNeverCrash() throws {
        let valid = try sampleFile()
        #expect(try SafeTensors(bytes: valid).names.count == 4)

        // Every strict prefix is refused: the tensors must tile the data section to its very end.
        for length in 0..<valid.count {
            #expect(throws: SafeTensorsError.self) { try SafeTensors(bytes: Array(valid[..<length])) }
        }
        // One extra byte anywhere after the header length field is refused too.
        #expect(throws: SafeTensorsError.self) { try SafeTensors(bytes: valid + [0]) }

        var generator = SplitMix64(seed: 20_240_601)
        let headerLength = Int(valid[0]) | Int(valid[1]) << 8
        var refused = 0, accepted = 0
        for round in 0..<6000 {
            var bytes = valid
            switch round % 3 {
            case 0:  // flip bits anywhere, length field included
                for _ in 0...(generator.next() % 3) {
                    bytes[Int(generator.next() % UInt64(bytes.count))] ^= UInt8(1 << (generator.next() % 8))
                }
            case 1:  // replace header bytes with JSON-ish characters, so that the damage reaches the validator
                let alphabet = Array(#"{}[]",:0123456789-.eE "\ u"#.utf8) + [0xC3, 0xFF, 0x00]
                for _ in 0...(generator.next() % 4) {
                    bytes[8 + Int(generator.next() % UInt64(headerLength))] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                }
            default:  // cut or duplicate a piece of the header and fix the length field to match
                let start = 8 + Int(generator.next() % UInt64(headerLength))
                let end = min(8 + headerLength, start + 1 + Int(generator.next() % 12))
                let piece = Array(bytes[start..<end])
                if generator.next() % 2 == 0 { bytes.removeSubrange(start..<end) } else { bytes.insert(contentsOf: piece, at: start) }
                let newLength = UInt64(headerLength + bytes.count - valid.count)
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: newLength >> (8 * i)) }
            }
            do {
                let file = try SafeTensors(bytes: bytes)
                for name in file.names {
                    do { _ = try file.tensor(name) } catch is WeightError {}
                    do { _ = try file.integerTensor(name) } catch is WeightError {} catch is SafeTensorsError {}
                }
                accepted += 1
            } catch is SafeTensorsError {
                refused += 1
            } catch {
                Issue.record("round \(round): unexpected error type \(type(of: error)): \(error)")
            }
        }
        #expect(refused > 3000, "accepted \(accepted), refused \(refused)")
        #expect(refused + accepted == 6000)
    }

    @Test func atomicWriteReplacesTheFileAndLeavesNoTemporaryFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/checkpoint.bin"
        try writeAtomically([1, 2, 3], to: path)
        #expect(chmod(path, 0o600) == 0)
        try writeAtomically(Array(repeating: 9, count: 100_000), to: path)
        #expect(try readFile(path) == Array(repeating: 9, count: 100_000))
        #expect(listing(directory) == ["checkpoint.bin"])
        // A private file stays private after being replaced.
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)

        // A name near the file system's limit still gets a legal temporary name.
        let long = directory + "/" + String(repeating: "n", count: 250)
        try writeAtomically([4], to: long)
        try writeAtomically([5], to: long)
        #expect(try readFile(long) == [5])
    }

    @Test func failedAtomicWriteKeepsTheOldFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }

        // The rename fails after the temporary file was written: the target is a non-empty directory.
        let occupied = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: false)
        try writeAtomically([7], to: occupied + "/inside")
        let renameError = #expect(throws: FileIOError.self) { try writeAtomically([1, 2, 3], to: occupied) }
        #expect(renameError?.path == occupied)
        #expect(listing(directory) == ["occupied"])
        #expect(try readFile(occupied + "/inside") == [7])

        // Creating the temporary file fails: the directory does not exist.
        #expect(throws: FileIOError.self) { try writeAtomically([1], to: directory + "/no/such/dir/file") }
        #expect(throws: FileIOError.self) { try writeAtomically([1], to: directory + "/") }
        #expect(listing(directory) == ["occupied"])

        // A writer refusing its input touches nothing.
        let weights = directory + "/weights.safetensors"
        try SafeTensors.write([("a", Tensor<Float>(zeros: [1]))], to: weights)
        let before = try readFile(weights)
        #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("a", Tensor<Float>(zeros: [1])), ("a", Tensor<Float>(zeros: [1]))], to: weights)
        }
        let ioError = #expect(throws: SafeTensorsError.self) { try SafeTensors.write([("a", Tensor<Float>(zeros: [1]))], to: occupied) }
        #expect(ioError?.kind == .io)
        #expect(try readFile(weights) == before)
        #expect(listing(directory) == ["occupied", "weights.safetensors"])
    }

    /// The write itself fails halfway (the file size limit is hit), in a child process so that the limit
    /// cannot disturb other tests: the old file must survive intact and the partial temporary file must go.
    @Test func atomicWriteFailingMidwayKeepsTheOldFile() async throws {
        await #expect(processExitsWith: .success) {
            let directory = try makeTemporaryDirectory()
            defer { removeDirectory(directory) }
            let path = directory + "/model.safetensors"
            let old = [UInt8](repeating: 1, count: 1000)
            try writeAtomically(old, to: path)

            signal(SIGXFSZ, SIG_IGN)  // make the kernel return EFBIG instead of killing the process
            var limit = rlimit(rlim_cur: 4096, rlim_max: 4096)
            #if canImport(Glibc)
            guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else { exit(10) }
            #else
            guard setrlimit(RLIMIT_FSIZE, &limit) == 0 else { exit(10) }
            #endif
            do {
                try writeAtomically([UInt8](repeating: 2, count: 100_000), to: path)
                exit(11)
            } catch let error as FileIOError {
                guard error.description.contains(path) else { exit(12) }
            }
            guard try readFile(path) == old else { exit(13) }
            guard listing(directory) == ["model.safetensors"] else { exit(14) }
        }
    }
}
