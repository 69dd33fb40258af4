extension CUDASelfTest {
    /// Packed documents (`cca selftest --filter packed`): rows that hold several documents back to back, each
    /// token given its position within its document, against the CPU path on the same pieces as separate
    /// sequences. The attention forward (with its log-sum-exp) and backward, with boundaries at the tiles'
    /// edges (64, 128 and 192 rows) and inside them, pieces of one token, B > 1 and grouped heads, at head dims
    /// 64 and 128 so that each tier runs; the rotary embedding both ways; CCA's value shift both ways and its
    /// training prologue (both convolutions, RoPE, QK-mean) forward and backward with two, one and no
    /// convolutions; and a whole training step on a packed batch for every attention kind.
    static var packedCases: [Case] {
        packedAttentionCases + packedRotaryCases + packedValueShiftCases + packedPrologueCases + packedTrainingStepCases
    }

    /// Each token's position within its piece, for pieces of `lengths` back to back.
    static func positions(lengths: [Int]) -> [Int] { lengths.flatMap { 0..<$0 } }

    /// (pieces of each row, query heads, KV heads, head dim): every row's pieces sum to the same length.
    static let packedAttentionShapes: [(rows: [[Int]], queryHeads: Int, keyValueHeads: Int, headDim: Int)] = [
        ([[64, 1, 70, 65]], 4, 2, 64),
        ([[128, 1, 100, 71], [5, 250, 45]], 8, 2, 128),
        ([[1, 1, 128, 3]], 2, 2, 128),
        ([[32, 32, 33, 31, 1, 63], [192]], 4, 4, 64),
        ([[191, 2, 200, 7]], 8, 2, 64),
    ]

    static var packedAttentionCases: [Case] {
        // Also with one block per block of keys on the Hopper path (its small grids split otherwise).
        packedAttentionShapes.flatMap { shape in [nil, 1].map { (shape, parts: $0) } }
            .map { shape, keyBlockParts in
            let (rows, queryHeads, keyValueHeads, headDim) = shape
            let (batch, length, lengths) = (rows.count, rows[0].reduce(0, +), rows.flatMap { $0 })
            let heads = Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: headDim, valueDim: headDim,
                                        scale: 1 / Double(headDim).squareRoot())
            let name = "packed attention B\(batch) S\(length) pieces \(lengths.map(String.init).joined(separator: ",")) "
                + "Hq\(queryHeads) Hkv\(keyValueHeads) d\(headDim) forward, lse, backward" + (keyBlockParts.map { " parts \($0)" } ?? "")
            return Case(name: name) { context, precision in
                let q = representable(Tensor<Float>(randomNormal: [batch, length, queryHeads, headDim], seed: 16), precision)
                let k = representable(Tensor<Float>(randomNormal: [batch, length, keyValueHeads, headDim], seed: 17), precision)
                let v = representable(Tensor<Float>(randomNormal: [batch, length, keyValueHeads, headDim], seed: 18), precision)
                let dOut = representable(Tensor<Float>(randomNormal: [batch, length, queryHeads, headDim], seed: 19), precision)
                let gpu = try context.exclusive {
                    let positions = try context.upload(Self.positions(lengths: lengths).map(Int32.init))
                    let (dq, dk, dv) = (try context.upload(q, precision), try context.upload(k, precision), try context.upload(v, precision))
                    let (out, lse) = try Attention.forward(q: dq, k: dk, v: dv, heads: heads, keyValid: nil, positions: positions,
                                                           keepLSE: true, context: context)
                    let gradients = try Attention.backward(dOut: try context.upload(dOut, precision), q: dq, k: dk, v: dv, out: out,
                                                           lse: lse!, heads: heads, keyValid: nil, positions: positions,
                                                           keyBlockParts: keyBlockParts, context: context)
                    return try [out, lse!, gradients.dq, gradients.dk, gradients.dv].map { try context.download($0) }
                }
                let layout = try SequenceLayout(lengths: lengths)
                let saved = Attention.forward(q: q, k: k, v: v, layout: layout, heads: heads)
                let (dq, dk, dv) = Attention.backward(dOut: dOut, q: q, k: k, v: v, saved: saved, layout: layout, heads: heads)
                return [(gpu[0], try saved.out.reshaped(gpu[0].shape)), (gpu[1], try saved.lse.reshaped(gpu[1].shape)),
                        (gpu[2], dq), (gpu[3], dk), (gpu[4], dv)]
            }
        }
    }

    static var packedRotaryCases: [Case] {
        [false, true].map { inverse in
            let (lengths, heads, headDim) = ([3, 1, 9, 20, 7], 3, 64)
            return Case(name: "packed rotary\(inverse ? " backward" : "") pieces 3,1,9,20,7 (B2 S20) H3 d64") { context, precision in
                let data = representable(Tensor<Float>(randomNormal: [2, 20, heads, headDim], seed: 21), precision)
                let rotary = RotaryEmbedding(rotaryDim: 32, theta: 10_000)
                let positions = Self.positions(lengths: lengths)
                let gpu = try context.exclusive {
                    let device = try context.upload(data, precision)
                    let (rows, devicePositions) = (device.reshaped([40, heads * headDim]).matrix, try context.upload(positions.map(Int32.init)))
                    let deviceRotary = try DeviceRotary(rotary, context: context)
                    if inverse {
                        try deviceRotary.backward(rows, heads: heads, headStride: headDim, offset: 16, sequenceLength: 20,
                                                  positions: devicePositions, context: context)
                    } else {
                        try deviceRotary.forward(rows, heads: heads, headStride: headDim, offset: 16, sequenceLength: 20,
                                                 positions: devicePositions, context: context)
                    }
                    return try context.download(device)
                }
                return [(gpu, rotatedOnCPU(data, rotary: rotary, offset: 16, inverse: inverse, positions: positions))]
            }
        }
    }

    static var packedValueShiftCases: [Case] {
        // Two rows of 10: pieces 3, 1, 6 and one of 10.
        let (lengths, config) = ([3, 1, 6, 10], CCAConfig(hiddenSize: 64, queryHeads: 2, keyValueHeads: 1, headDim: 8))
        let (rows, ct, ek) = (20, config.convolutionChannels, config.keyWidth)
        return [
            Case(name: "packed value shift forward pieces 3,1,6,10 (B2 S10) ek\(ek)") { context, precision in
                let projections = representable(Tensor<Float>(randomNormal: [2, 10, ct + ek], seed: 44), precision)
                let gpu = try context.exclusive {
                    let positions = try context.upload(Self.positions(lengths: lengths).map(Int32.init))
                    return try context.download(try context.ccaValues(try context.upload(projections, precision), config: config,
                                                                      positions: positions))
                }
                let values = try projections.reshaped([rows, ct + ek]).columns(ct..<(ct + ek))
                let reference = ValueShift.forward(values, layout: try SequenceLayout(lengths: lengths), previous: nil).v
                return [(try gpu.reshaped([rows, ek]), reference)]
            },
            Case(name: "packed value shift backward pieces 3,1,6,10 (B2 S10) ek\(ek)") { context, precision in
                let dv = representable(Tensor<Float>(randomNormal: [rows, ek], seed: 45), precision)
                let gpu = try context.exclusive {
                    let positions = try context.upload(Self.positions(lengths: lengths).map(Int32.init))
                    let wide = try context.empty([rows, 16 + ek], precision)  // the value columns of the fused gradient
                    try ValueShift.backward(try context.upload(dv, precision), sequenceLength: 10, positions: positions, shifted: true,
                                            into: wide.columns(16..<(16 + ek)), context: context)
                    return try context.download(wide).columns(16..<(16 + ek))
                }
                return [(gpu, ValueShift.backward(dv, layout: try SequenceLayout(lengths: lengths)))]
            },
        ]
    }

    /// (rows, length, pieces, config): two convolutions with a piece of one token and one of two (the
    /// shortest that reach conv B's older input), one convolution with the exp temperature, none.
    static let packedPrologueConfigs: [(batch: Int, length: Int, pieces: [Int], config: CCAConfig)] = [
        (2, 40, [7, 1, 2, 30, 20, 20], CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64)),
        (1, 33, [1, 16, 16], CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64, temperature: .exp,
                                       convolutions: 1)),
        (1, 20, [10, 10], CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 1, headDim: 64, convolutions: 0)),
        (1, 45, [3, 42], CCAConfig(hiddenSize: 512, queryHeads: 4, keyValueHeads: 2, headDim: 128, rope: RoPEConfig(theta: 5e6, fraction: 0.5))),
    ]

    static var packedPrologueCases: [Case] {
        packedPrologueConfigs.map { batch, length, pieces, config in
            Case(name: "packed cca prologue training B\(batch) S\(length) pieces \(pieces.map(String.init).joined(separator: ",")) "
                 + describe(config)) { context, precision in
                try prologueTrainingComparison(batch: batch, length: length, config: config, pieces: pieces, context, precision)
            }
        }
    }

    /// A training step on 48 tokens packed as pieces of 5, 1, 18, 11 and 13 (two windows of 24 cut at document
    /// boundaries: 5 + 1 + 18 and 11 + 13), each piece's last target ignored as ``PackedSequences`` ignores the
    /// target that would cross into the next document, and every fifth too.
    static var packedTrainingStepCases: [Case] {
        AttentionKind.allCases.map { kind in
            Case(name: "packed training step, gradients, AdamW: \(kind.rawValue) model E64 L2",
                 bfloat16Tolerance: trainingCheckBFloat16Tolerance) { context, precision in
                var batch = trainingCheckBatches(count: 1)[0]
                batch.lengths = [5, 1, 18, 11, 13]
                var end = 0
                for length in batch.lengths {
                    end += length
                    batch.targets[end - 1] = CrossEntropy.ignored
                }
                return try trainingStepComparison(kind, batch, context, precision)
            }
        }
    }
}
