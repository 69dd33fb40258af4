@testable import CCA
import Testing

/// Packed documents never see each other: a packed batch equals each document run alone, forward and
/// backward, for every attention kind (for CCA this needs the convolution and value-shift state reset at
/// each document start, which no other implementation we know does).
@Suite struct PackedSequenceTests {
    static let hidden = 32
    static let lengths = [3, 5, 1, 4]

    static func rows(_ t: Tensor<Float>, _ range: Range<Int>) -> Tensor<Float> {
        let width = t.shape.last!
        return Tensor(checked: [1, range.count, width], Array(t.storage[(range.lowerBound * width)..<(range.upperBound * width)]))
    }

    @Test func packedDocumentsEqualEachDocumentAlone() throws {
        for (name, layer) in try DecodingTests.layers() {
            let layout = try SequenceLayout(lengths: Self.lengths)
            let x = Tensor<Float>(randomNormal: [layout.rows, Self.hidden], seed: 40)
            let dy = Tensor<Float>(randomNormal: [layout.rows, Self.hidden], seed: 41)
            let (y, backward) = try layer.pullback(x, layout: layout)
            let (dx, grads) = try backward(dy)
            var summed: [String: Tensor<Float>] = layer.weights.mapValues { Tensor(zeros: $0.shape) }
            for range in layout.sequences {
                let single = try SequenceLayout(batch: 1, length: range.count)
                let (alone, backwardAlone) = try layer.pullback(Self.rows(x, range), layout: single)
                #expect(alone.relativeError(to: Self.rows(y, range)) < 1e-6, "\(name) forward of document \(range)")
                let (dxAlone, gradsAlone) = try backwardAlone(Self.rows(dy, range))
                #expect(dxAlone.relativeError(to: Self.rows(dx, range)) < 1e-5, "\(name) dx of document \(range)")
                for (weight, gradient) in gradsAlone {
                    for i in 0..<gradient.count { summed[weight]!.storage[i] += gradient.storage[i] }
                }
            }
            for (weight, gradient) in grads {
                #expect(gradient.relativeError(to: summed[weight]!) < 1e-5, "\(name) grad \(weight)")
            }
        }
    }

    /// The model's loss over packed documents is the token-weighted mean of each document's loss.
    @Test(arguments: AttentionKind.allCases)
    func packedModelLossIsTheMeanOverDocuments(_ kind: AttentionKind) throws {
        let model = try LanguageModel<Float>(config: .preset(.tiny, attention: kind), seed: 5)
        var generator = SplitMix64(seed: 6)
        let tokens = (0..<13).map { _ in Int(generator.next() % 256) }
        let targets = (0..<13).map { _ in Int(generator.next() % 256) }
        let layout = try SequenceLayout(lengths: Self.lengths)
        let packed = try model.loss(inputs: tokens, targets: targets, layout: layout)
        var total: Float = 0
        for range in layout.sequences {
            total += try model.loss(inputs: Array(tokens[range]), targets: Array(targets[range]),
                                    layout: SequenceLayout(lengths: [range.count])) * Float(range.count)
        }
        #expect(abs(packed - total / 13) < 1e-5 * abs(packed), "\(kind)")
    }
}
