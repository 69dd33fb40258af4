import CCA
import Testing

@Suite struct SamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.0, -1.0, 2.5]

    @Test func greedyAndTopOneAlwaysPickTheArgmax() throws {
        var greedy = try Sampler(temperature: 0, seed: 1)
        var topOne = try Sampler(temperature: 1, topK: 1, seed: 1)
        for _ in 0..<50 {
            #expect(greedy.sample(logits) == 1)
            #expect(topOne.sample(logits) == 1)
        }
    }

    @Test func topKAndTopPKeepTheRightTokens() throws {
        let softmax = logits.map { Double.exp(Double($0)) }
        let total = softmax.reduce(0, +)
        let p = softmax.map { $0 / total }  // order: 1, 4, 2, 0, 3
        let topTwo = try Sampler(topK: 2).distribution(logits)
        #expect(abs(Double(topTwo[1]) - p[1] / (p[1] + p[4])) < 1e-6)
        #expect(topTwo[2] == 0 && topTwo[0] == 0 && topTwo[3] == 0)
        // p[1] ≈ 0.43 < 0.5, so top-p 0.5 keeps tokens 1 and 4; 0.4 keeps only token 1.
        #expect(try Sampler(topP: 0.5).distribution(logits).enumerated().filter { $0.element > 0 }.map(\.offset).sorted() == [1, 4])
        #expect(try Sampler(topP: 0.4).distribution(logits) == [0, 1, 0, 0, 0])
    }

    @Test func drawsFollowTheDistribution() throws {
        var sampler = try Sampler(temperature: 2, seed: 7)
        let expected = sampler.distribution(logits)
        var counts = [Int](repeating: 0, count: logits.count)
        let draws = 20_000
        for _ in 0..<draws { counts[sampler.sample(logits)] += 1 }
        for token in logits.indices {
            let frequency = Double(counts[token]) / Double(draws), p = Double(expected[token])
            #expect(abs(frequency - p) < 4 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-3, "token \(token)")
        }
    }

    @Test func badSettingsAreRefused() {
        #expect(throws: ConfigError.self) { try Sampler(temperature: -1) }
        #expect(throws: ConfigError.self) { try Sampler(topK: 0) }
        #expect(throws: ConfigError.self) { try Sampler(topP: 1.5) }
    }
}
