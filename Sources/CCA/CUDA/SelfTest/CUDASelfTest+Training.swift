extension CUDASelfTest {
    /// The GPU operations of training against their CPU operations (``RMSNorm``, ``SwiGLU``, ``Embedding``,
    /// ``CrossEntropy``, ``AdamW``, ``GradientClipping``, ``ValueShift``, ``CCAPrologue``; RoPE's backward
    /// pass is beside its forward pass in ``operationCases``), or against float64 sums written here: one
    /// row, widths of 1, odd widths, widths past a block, rows past a reduction chunk (so the sums over rows
    /// take two passes), a 262144-token vocabulary, NaN and infinite logits.
    static var trainingOperationCases: [Case] {
        normalizationCases + activationCases + lossCases + optimizerCases + valueShiftCases + prologueTrainingCases
    }

    static var normalizationCases: [Case] {
        var cases: [Case] = []
        // (rows, width, stride of x and dx): a single element, a column range, widths not a multiple of 8 (the
        // 16-byte steps) or of the 32 lanes, more rows than the grid's warps (each warp takes several rows and
        // the blocks' dWeight partial sums take two passes). Dense ones also add a residual gradient into dx in
        // place, as a pre-norm block's backward does.
        for (rows, width, stride) in [(1, 1, 1), (33, 96, 120), (5, 1000, 1000), (3, 4097, 4100), (700, 33, 33), (9000, 768, 768),
                                      (37, 264, 264)] {
            let residual = stride == width
            cases.append(Case(name: "rms_norm forward+backward \(rows)x\(width) of \(stride) columns\(residual ? " adding a residual gradient" : "")") { context, precision in
                let wide = representable(Tensor<Float>(randomNormal: [rows, stride], seed: 20), precision)
                let x = wide.columns(0..<width)
                let weight = Tensor(checked: [width], Tensor<Float>(randomNormal: [width], std: 0.1, seed: 21).storage.map { $0 + 1 })
                let dy = representable(Tensor<Float>(randomNormal: [rows, width], seed: 22), precision)
                let earlier = Tensor<Float>(randomNormal: [width], seed: 23)  // what dWeight holds before: the gradient adds to it
                let carried = representable(Tensor<Float>(randomNormal: [rows, width], seed: 19), precision)
                let (y, inverse) = RMSNorm.forward(x, weight: weight, epsilon: 1e-6)
                var (dx, dWeight) = RMSNorm.backward(dy, x: x, weight: weight, inverseRMS: inverse)
                if residual { dx = Tensor(checked: dx.shape, zip(dx.storage, carried.storage).map(+)) }
                let gpu = try context.exclusive {
                    let input = try context.upload(wide, precision).columns(0..<width)
                    let deviceWeight = try context.upload(weight, .float32)
                    let (y, inverse) = try RMSNorm.forward(input, weight: deviceWeight, epsilon: 1e-6, context: context)
                    let dx = residual ? try context.upload(carried, precision) : try context.empty([rows, stride], precision)
                    let dWeight = try context.upload(earlier, .float32)
                    try RMSNorm.backward(try context.upload(dy, precision), x: input, weight: deviceWeight, inverseRMS: inverse,
                                         adding: residual ? dx : nil, dWeight: dWeight, into: dx.columns(0..<width), context: context)
                    return try [y, inverse, dx, dWeight].map { try context.download($0) }
                }
                // With one column y = w · x / sqrt(x² + ε) ≈ w · sign(x), so dx is ε-sized cancellation on both sides
                // and is compared at the wider shapes only.
                let dxPair = width > 1 ? [(gpu[2].columns(0..<width), dx)] : []
                return [(gpu[0], y), (gpu[1], Tensor(checked: [rows], inverse))] + dxPair
                    + [(gpu[3], Tensor(checked: [width], zip(earlier.storage, dWeight.storage).map(+)))]
            })
        }
        for (rows, width) in [(1, 7), (9, 300), (4, 2049), (20, 768)] {
            cases.append(Case(name: "rms_norm of a residual add in place \(rows)x\(width)") { context, precision in
                let a = representable(Tensor<Float>(randomNormal: [rows, width], seed: 24), precision)
                let b = representable(Tensor<Float>(randomNormal: [rows, width], seed: 25), precision)
                let weight = Tensor<Float>(randomNormal: [width], seed: 26)
                let h = representable(Tensor(checked: a.shape, zip(a.storage, b.storage).map(+)), precision)
                let (y, inverse) = RMSNorm.forward(h, weight: weight, epsilon: 1e-5)
                let gpu = try context.exclusive {
                    let sum = try context.upload(a, precision)
                    let (y, inverse) = try RMSNorm.forward(sum, adding: try context.upload(b, precision), into: sum,
                                                           weight: try context.upload(weight, .float32), epsilon: 1e-5, context: context)
                    return try [sum, y, inverse].map { try context.download($0) }
                }
                return [(gpu[0], h), (gpu[1], y), (gpu[2], Tensor(checked: [rows], inverse))]
            })
        }
        // (rows, columns summed, stride): one element, a column range, rows needing three passes, no rows.
        for (rows, width, stride) in [(1, 1, 1), (1000, 33, 40), (70_000, 3, 3), (0, 5, 5)] {
            cases.append(Case(name: "column sums \(rows)x\(width) of \(stride) columns") { context, precision in
                let x = representable(Tensor<Float>(randomNormal: [rows, stride], seed: 27), precision)
                var sums = [Double](repeating: 0, count: width)
                for row in 0..<rows { for c in 0..<width { sums[c] += Double(x.storage[row * stride + c]) } }
                let gpu = try context.exclusive {
                    let out = try context.empty([width], .float32)
                    try ColumnSums.sum(try context.upload(x, precision).columns(0..<width), into: out, accumulate: false, context: context)
                    return try context.download(out)
                }
                return [(gpu, Tensor(checked: [width], sums.map { Float($0) }))]
            })
        }
        return cases
    }

    static var activationCases: [Case] {
        var cases: [Case] = []
        for (rows, width) in [(1, 1), (37, 100), (3, 5001), (513, 64), (9, 7616)] {
            cases.append(Case(name: "swiglu forward+backward \(rows)x\(width)") { context, precision in
                let gateUp = representable(Tensor<Float>(randomNormal: [rows, 2 * width], std: 2, seed: 30), precision)
                let dh = representable(Tensor<Float>(randomNormal: [rows, width], seed: 31), precision)
                let (h, sigmoid) = SwiGLU.forward(gateUp)
                let dGateUp = SwiGLU.backward(dh, gateUp: gateUp, sigmoid: sigmoid)
                let gpu = try context.exclusive {
                    let deviceGateUp = try context.upload(gateUp, precision)
                    let h = try SwiGLU.forward(deviceGateUp, context: context)
                    let dGateUp = try SwiGLU.backward(try context.upload(dh, precision), gateUp: deviceGateUp, context: context)
                    return (try context.download(h), try context.download(dGateUp))
                }
                return [(gpu.0, h), (gpu.1, dGateUp)]
            })
        }
        for count in [1, 1001, 70_000] {
            cases.append(Case(name: "residual add of \(count), new and in place") { context, precision in
                let a = representable(Tensor<Float>(randomNormal: [count], seed: 32), precision)
                let b = representable(Tensor<Float>(randomNormal: [count], seed: 33), precision)
                let sum = representable(Tensor(checked: [count], zip(a.storage, b.storage).map(+)), precision)
                let gpu = try context.exclusive {
                    let (deviceA, deviceB) = (try context.upload(a, precision), try context.upload(b, precision))
                    let y = try context.empty([count], precision)
                    try Residual.add(deviceA, deviceB, into: y, context: context)
                    try Residual.add(deviceA, deviceB, into: deviceB, context: context)
                    return (try context.download(y), try context.download(deviceB))
                }
                return [(gpu.0, sum), (gpu.1, sum)]
            })
        }
        // (vocabulary, width, tokens): repeated tokens (their gradients meet in one row), one token of width 1.
        for (vocab, width, count) in [(50, 33, 70), (3, 1, 1), (1000, 260, 9)] {
            cases.append(Case(name: "embedding forward+backward vocab \(vocab) E\(width) \(count) tokens") { context, precision in
                let table = representable(Tensor<Float>(randomNormal: [vocab, width], seed: 34), precision)
                let tokens = (0..<count).map { ($0 * 7 + 2) % vocab }
                let dx = representable(Tensor<Float>(randomNormal: [count, width], seed: 35), precision)
                var dTable = Tensor<Float>(randomNormal: [vocab, width], seed: 36)
                let gpu = try context.exclusive {
                    let x = try Embedding.forward(tokens, table: try context.upload(table, precision), context: context)
                    let deviceDTable = try context.upload(dTable, .float32)
                    try Embedding.backward(try context.upload(dx, precision), tokens: tokens, dTable: deviceDTable, context: context)
                    return (try context.download(x), try context.download(deviceDTable))
                }
                let x = try Embedding.forward(tokens, table: table)
                Embedding.backward(dx, tokens: tokens, dTable: &dTable)
                return [(gpu.0, x), (gpu.1, dTable)]
            })
        }
        cases.append(Case(name: "embedding rejects tokens outside the vocabulary") { context, precision in
            let table = try context.exclusive { try context.upload(Tensor<Float>(zeros: [4, 2]), precision) }
            let rejected = try [[0, 4], [-1]].map { tokens in
                do {
                    _ = try context.exclusive { try Embedding.forward(tokens, table: table, context: context) }
                    return Float(0)
                } catch EmbeddingError.tokenOutOfRange { return 1 }
            }
            return [(Tensor(checked: [2], rejected), Tensor(zeros: [2], value: 1))]
        })
        return cases
    }

    static var lossCases: [Case] {
        var cases: [Case] = []
        // (rows, vocabulary, chunks of rows): ignored rows, a vocabulary of 1, one not a multiple of the 512
        // threads, GPT-2's (its row cached in shared memory, over several rounds of loads), and the largest
        // vocabulary (too long to cache) in two chunks. The reference runs in float64: a float sum of 262144
        // exponentials in order is itself off by 3e-5.
        for (rows, vocab, chunks) in [(5, 1000, 2), (3, 1, 1), (4, 1025, 1), (3, 50304, 1), (2, 262_144, 2)] {
            cases.append(Case(name: "cross_entropy \(rows) rows vocab \(vocab) in \(chunks) chunks") { context, precision in
                let logits = representable(Tensor<Float>(randomNormal: [rows, vocab], std: 3, seed: 40), precision)
                let targets = (0..<rows).map { $0 == 1 ? CrossEntropy.ignored : ($0 * 7919 + 11) % vocab }
                let counted = targets.filter { $0 != CrossEntropy.ignored }.count
                let exact = Tensor<Double>(logits).storage
                let (loss, dLogits) = CrossEntropy.backward(logits: exact, targets: targets, vocab: vocab)
                let rowLosses = (0..<rows).map { r in
                    Float(CrossEntropy.forward(logits: Array(exact[(r * vocab)..<((r + 1) * vocab)]), targets: [targets[r]], vocab: vocab))
                }
                let gpu = try context.exclusive {
                    let deviceLogits = try context.upload(logits, precision)
                    let losses = try context.empty([rows], .float32)
                    let size = (rows + chunks - 1) / chunks
                    for start in stride(from: 0, to: rows, by: size) {
                        let end = min(rows, start + size)
                        try CrossEntropy.backward(logits: deviceLogits.view([end - start, vocab], at: start * vocab),
                                                  targets: Array(targets[start..<end]), countedRows: counted,
                                                  into: losses.view([end - start], at: start), context: context)
                    }
                    let mean = try CrossEntropy.meanLoss(losses, countedRows: counted, context: context)
                    return (try context.download(losses), mean, try context.download(deviceLogits))
                }
                return [(gpu.0, Tensor(checked: [rows], rowLosses)), (Tensor(checked: [1], [gpu.1]), Tensor(checked: [1], [Float(loss)])),
                        (gpu.2, Tensor(checked: [rows, vocab], dLogits.map { Float($0) }))]
            })
        }
        // A vocabulary of 300 takes the kernel's one-column steps, 304 its eight-column (16-byte) ones.
        for vocab in [300, 304] {
            cases.append(Case(name: "cross_entropy NaN, +inf and -inf logits, vocab \(vocab)") { context, precision in
                // Row 0 has -inf logits (finite loss), row 1 a NaN (NaN loss and gradient), row 2 is plain,
                // row 3 has a +inf away from its target (infinite loss).
                var logits = representable(Tensor<Float>(randomNormal: [4, vocab], seed: 41), precision)
                for c in [3, 100, 299] { logits.storage[c] = -.infinity }
                logits.storage[vocab + 5] = .nan
                logits.storage[3 * vocab + 7] = .infinity
                let targets = [0, 1, 2, 0]
                let gpu = try context.exclusive {
                    let deviceLogits = try context.upload(logits, precision)
                    let losses = try context.empty([4], .float32)
                    try CrossEntropy.backward(logits: deviceLogits, targets: targets, countedRows: 4, into: losses, context: context)
                    return (try context.download(losses).storage, try context.download(deviceLogits).storage)
                }
                let finiteRows = [0, 2]
                let (_, dLogits) = CrossEntropy.backward(logits: logits.storage, targets: targets, vocab: vocab)
                let reference = finiteRows.map { r in
                    CrossEntropy.forward(logits: Array(logits.storage[(r * vocab)..<((r + 1) * vocab)]), targets: [targets[r]], vocab: vocab)
                }
                func rows(_ values: [Float]) -> Tensor<Float> {
                    Tensor(checked: [2, vocab], finiteRows.flatMap { values[($0 * vocab)..<(($0 + 1) * vocab)] })
                }
                let flags: [Float] = [gpu.0[1].isNaN ? 1 : 0, gpu.0[3] == .infinity ? 1 : 0,
                                      gpu.1[vocab..<(2 * vocab)].allSatisfy(\.isNaN) ? 1 : 0]
                return [(Tensor(checked: [2], finiteRows.map { gpu.0[$0] }), Tensor(checked: [2], reference)),
                        (rows(gpu.1), rows(dLogits)), (Tensor(checked: [3], flags), Tensor(zeros: [3], value: 1))]
            })
        }
        return cases
    }

    static var optimizerCases: [Case] {
        var cases: [Case] = []
        // A large rate and decay, so that decaying a vector (or not decaying a matrix) moves it by more than
        // the bfloat16 tolerance.
        cases.append(Case(name: "adamw 3 steps, clipped and not, matrices and vectors") { context, precision in
            let shapes: [String: [Int]] = ["a.weight": [33, 17], "b.bias": [5], "c.temp": [1], "d.weight": [2, 3, 4], "e.norm": [130]]
            var parameters = shapes.mapValues { Tensor<Float>(randomNormal: $0, seed: UInt64($0.reduce(1, *))) }
            var (cpu, gpu) = (AdamW<Float>(weightDecay: 0.5), AdamW<Float>(weightDecay: 0.5))
            var (norms, deviceNorms): ([Float], [Float]) = ([], [])
            let device = try context.exclusive { () -> DeviceParameters in
                let device = try DeviceParameters(parameters, precision: precision, context: context)
                // Step 2's gradients are small enough to pass unclipped; steps 1 and 3 are clipped.
                for (step, std) in [Float(1), 0.01, 1].enumerated() {
                    let grads = shapes.mapValues { Tensor<Float>(randomNormal: $0, std: std, seed: UInt64(100 * step + $0.count)) }
                    var clipped = grads
                    norms.append(GradientClipping.clip(&clipped, maxNorm: 1))
                    try cpu.update(&parameters, grads: clipped, rate: 0.05)
                    try device.upload(grads, into: .gradients, context: context)
                    let clipping = try GradientClipping.norm(of: device.tensor(.gradients), maxNorm: 1, context: context)
                    deviceNorms.append(try context.download(clipping).storage[0])
                    try gpu.update(device, rate: 0.05, clipping: clipping, context: context)
                }
                return device
            }
            func flat(_ tensors: [String: Tensor<Float>]) -> Tensor<Float> {
                let values = tensors.keys.sorted().flatMap { tensors[$0]!.storage }
                return Tensor(checked: [values.count], values)
            }
            let downloaded = try context.exclusive {
                try [DeviceParameters.Buffer.master, .compute, .firstMoments, .secondMoments].map { flat(try device.download($0, context: context)) }
            }
            return [(Tensor(checked: [3], deviceNorms), Tensor(checked: [3], norms)), (downloaded[0], flat(parameters)),
                    (downloaded[1], representable(flat(parameters), precision)),
                    (downloaded[2], flat(cpu.firstMoments)), (downloaded[3], flat(cpu.secondMoments))]
        })
        cases.append(Case(name: "gradient norm of 3000001 values, clipped and not") { context, _ in
            let gradients = Tensor<Float>(randomNormal: [3_000_001], std: 0.01, seed: 42)
            let norm = gradients.storage.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let maxNorm = Float(norm / 3)
            let gpu = try context.exclusive {
                let device = try context.upload(gradients, .float32)
                return try [maxNorm, .infinity].map { try context.download(try GradientClipping.norm(of: device, maxNorm: $0, context: context)) }
            }
            return [(gpu[0], Tensor(checked: [2], [Float(norm), maxNorm / Float(norm)])), (gpu[1], Tensor(checked: [2], [Float(norm), 1]))]
        })
        return cases
    }

    static var valueShiftCases: [Case] {
        var cases: [Case] = []
        // (batch, length, value width, shifted): one row per sequence, a width of 2, no shift.
        for (batch, length, width, shifted) in [(3, 5, 8, true), (2, 1, 4, true), (1, 70, 2, true), (2, 9, 6, false)] {
            cases.append(Case(name: "value shift backward B\(batch) S\(length) ek\(width)\(shifted ? "" : " unshifted")") { context, precision in
                let dv = representable(Tensor<Float>(randomNormal: [batch * length, width], seed: 43), precision)
                let layout = try SequenceLayout(batch: batch, length: length)
                let gpu = try context.exclusive {
                    let wide = try context.empty([batch * length, 16 + width], precision)  // the value columns of the fused gradient
                    try ValueShift.backward(try context.upload(dv, precision), sequenceLength: length, shifted: shifted,
                                            into: wide.columns(16..<(16 + width)), context: context)
                    return try context.download(wide).columns(16..<(16 + width))
                }
                return [(gpu, shifted ? ValueShift.backward(dv, layout: layout) : dv)]
            })
        }
        return cases
    }
}
