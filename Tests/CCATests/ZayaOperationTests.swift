import CCA
import Foundation
import RealModule
import Testing

/// The operations ZAYA adds, against plain float64 arithmetic written here.
@Suite struct ZayaOperationTests {
    /// A safetensors file whose tensor `w` (`dtype`, `shape`, little-endian `bytes`) starts `offset` bytes into
    /// the data section, after a U8 tensor of that many bytes: odd offsets leave `w` unaligned.
    static func file(dtype: String, shape: [Int], bytes: [UInt8], offset: Int) throws -> String {
        let header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[\(offset)],\"data_offsets\":[0,\(offset)]},"
            + "\"w\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes.count)]}}"
        let length = UInt64(header.utf8.count)
        let contents = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + Array(header.utf8)
            + [UInt8](repeating: 7, count: offset) + bytes
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cca-stored-\(UUID().uuidString).safetensors").path
        try Data(contents).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    }

    /// `x · Wᵀ + b` with a stored weight in every float type, aligned or not, for decode-sized and
    /// prefill-sized inputs and more output features than one converted block holds.
    @Test(arguments: ["F32", "BF16", "F16", "F64"], [0, 1])
    func storedLinearMatchesFloat64(dtype: String, offset: Int) throws {
        let (outFeatures, inFeatures) = (700, 130)
        let raw = Tensor<Float>(randomNormal: [outFeatures, inFeatures], seed: 3).storage
        // The values the file holds exactly, and its bytes.
        let (values, bytes): ([Double], [UInt8])
        switch dtype {
        case "BF16":
            let bits = raw.map(HalfPrecision.bfloat16Bits)
            (values, bytes) = (bits.map { Double(HalfPrecision.float(bfloat16: $0)) }, Self.littleEndian(bits))
        case "F16":
            let bits = raw.map(HalfPrecision.float16Bits)
            (values, bytes) = (bits.map { Double(HalfPrecision.float(float16: $0)) }, Self.littleEndian(bits))
        case "F64": (values, bytes) = (raw.map(Double.init), Self.littleEndian(raw.map { Double($0).bitPattern }))
        default: (values, bytes) = (raw.map(Double.init), Self.littleEndian(raw.map(\.bitPattern)))
        }
        let path = try Self.file(dtype: dtype, shape: [outFeatures, inFeatures], bytes: bytes, offset: offset)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let weight = try #require(try MappedSafeTensors(path: path)["w"])
        let bias = Tensor<Float>(randomNormal: [outFeatures], seed: 4)
        for rows in [1, 3, 9] {
            let x = Tensor<Float>(randomNormal: [rows, inFeatures], seed: UInt64(rows))
            let y = Linear.forward(x, stored: weight, bias: bias)
            var expected = [Float](repeating: 0, count: rows * outFeatures)
            for r in 0..<rows {
                for o in 0..<outFeatures {
                    var sum = Double(bias.storage[o])
                    for k in 0..<inFeatures { sum += Double(x.storage[r * inFeatures + k]) * values[o * inFeatures + k] }
                    expected[r * outFeatures + o] = Float(sum)
                }
            }
            let error = y.relativeError(to: try Tensor(shape: [rows, outFeatures], storage: expected))
            #expect(y.shape == [rows, outFeatures])
            #expect(error < 1e-5, "\(dtype) offset \(offset) rows \(rows): \(error)")
        }
        #expect(weight.tensor().storage == values.map(Float.init))
    }

    @Test func geluIsTheErfForm() throws {
        let x = Tensor<Float>(randomNormal: [257], std: 3, seed: 5)
        let y = GELU.forward(x)
        let expected = x.storage.map { v in Float(Double(v) / 2 * (1 + Double.erf(Double(v) / 2.0.squareRoot()))) }
        #expect(y.relativeError(to: try Tensor(shape: [257], storage: expected)) < 1e-6)
    }

    /// Rows routed to the same expert run together; rows routed nowhere are 0; weights scale each row.
    @Test func expertsMatchFloat64() throws {
        let (experts, hidden, inner) = (3, 8, 5)
        let gateUp = Tensor<Float>(randomNormal: [experts, 2 * inner, hidden], seed: 6)
        let down = Tensor<Float>(randomNormal: [experts, hidden, inner], seed: 7)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cca-experts-\(UUID().uuidString).safetensors").path
        try SafeTensors.write(["gate_up_proj": gateUp, "down_proj": down], as: .BF16, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedSafeTensors(path: path)
        let (storedGateUp, storedDown) = (try #require(file["gate_up_proj"]), try #require(file["down_proj"]))
        let choices: [Int?] = [2, nil, 0, 2, 1, nil, 2]
        let weights: [Float] = [0.5, 0, 1, 0.25, 0.75, 0, 2]
        let x = Tensor<Float>(randomNormal: [choices.count, hidden], seed: 8)
        let y = MixtureOfExperts.forward(x, experts: choices, weights: weights, gateUp: storedGateUp, down: storedDown)
        let (g, d) = (storedGateUp.tensor().storage.map(Double.init), storedDown.tensor().storage.map(Double.init))
        var expected = [Float](repeating: 0, count: choices.count * hidden)
        for (row, choice) in choices.enumerated() {
            guard let e = choice else { continue }
            let input = (0..<hidden).map { Double(x.storage[row * hidden + $0]) }
            let projected = (0..<(2 * inner)).map { o in (0..<hidden).reduce(0.0) { $0 + g[(e * 2 * inner + o) * hidden + $1] * input[$1] } }
            let h = (0..<inner).map { i in projected[i] / (1 + Double.exp(-projected[i])) * projected[inner + i] }
            for c in 0..<hidden {
                let out = (0..<inner).reduce(0.0) { $0 + d[(e * hidden + c) * inner + $1] * h[$1] }
                expected[row * hidden + c] = Float(Double(weights[row]) * out)
            }
        }
        #expect(y.relativeError(to: try Tensor(shape: [choices.count, hidden], storage: expected)) < 1e-5)
        #expect(y.storage[hidden..<(2 * hidden)].allSatisfy { $0 == 0 })
    }

    @Test func residualScalingMergesBothStreams() throws {
        let vectors = (0..<4).map { Tensor<Float>(randomNormal: [3], seed: UInt64(10 + $0)) }
        let scaling = ResidualScaling(hiddenScale: vectors[0], hiddenBias: vectors[1], residualScale: vectors[2], residualBias: vectors[3])
        let (h, r) = (Tensor<Float>(randomNormal: [2, 3], seed: 20), Tensor<Float>(randomNormal: [2, 3], seed: 21))
        let y = scaling.forward(h, residual: r)
        for i in 0..<6 {
            let c = i % 3
            let v = vectors.map { Double($0.storage[c]) }
            let expected = (Double(h.storage[i]) + v[1]) * v[0] + (Double(r.storage[i]) + v[3]) * v[2]
            #expect(abs(Double(y.storage[i]) - expected) <= 1e-6 * max(1, abs(expected)))
        }
    }
}
