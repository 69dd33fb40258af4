import RealModule

/// Checks every GPU operation and every layer against the CPU path on random inputs, in both storage
/// precisions, over shapes chosen to reach the edges of the kernels' tiles: S = 1, odd S, S that is not a
/// multiple of a tile, B > 1, one KV head, groups of 1 to 8 query heads, head dims 64 and 128 (and odd
/// ones), with and without a padding mask; attention both causal and not.
public enum CUDASelfTest {
    /// Largest relative error (max |gpu − cpu| / max |cpu|) a case may have.
    public static func tolerance(_ precision: CUDAPrecision) -> Float { precision == .float32 ? 1e-4 : 2e-2 }

    /// Runs all cases, logging one line each and, last, exactly `N passed, M failed`.
    ///
    /// Every device allocation is filled with NaN before use, so a case whose output has an element no
    /// kernel wrote fails. A machine without CUDA counts as one failed case, with the reason.
    /// - Parameter filter: run only the cases whose name contains it (`cca selftest --filter`).
    @discardableResult
    public static func run(filter: String? = nil, log: (String) -> Void = { print($0) }) -> (passed: Int, failed: Int) {
        var (passed, failed) = (0, 0)
        var worst: [CUDAPrecision: (error: Float, name: String, tolerance: Float)] = [:]
        do {
            let context = try CUDAContext.shared()
            log("device: \(context.deviceName), kernels for \(context.architecture); \(CUDAKernels.compilerStatus)")
            context.allocator.poison = true
            defer { context.allocator.poison = false }
            let cases = (operationCases + trainingOperationCases + decodeCases + samplingCases + sampledStepCases + decodeEngineCases + decodeGraphCases
                + layerCases + layerBackwardCases + trainingStepCases + packedCases + zayaCases)
                .filter { testCase in filter.map { testCase.name.contains($0) } ?? true }
            for precision in CUDAPrecision.allCases {
                for testCase in cases {
                    let label = "\(precision.rawValue.padding(to: 9)) \(testCase.name.padding(to: 58))"
                    do {
                        let errors = try testCase.run(context, precision).map { relativeError($0.gpu, $0.reference) }
                        let error = errors.reduce(0) { $1.isNaN || $0.isNaN ? .nan : max($0, $1) }
                        let allowed = testCase.tolerance(precision)
                        let ok = error <= allowed
                        if ok { passed += 1 } else { failed += 1 }
                        if !(worst[precision].map { $0.error >= error } ?? false) { worst[precision] = (error, testCase.name, allowed) }
                        // A failure names its first output over the tolerance (the case's outputs in its order).
                        let culprit = ok ? "" : errors.firstIndex { !($0 <= allowed) }.map { " (output \($0 + 1) of \(errors.count))" } ?? ""
                        let stated = allowed == tolerance(precision) ? "" : " (tolerance \(scientific(allowed)))"
                        log("\(ok ? "PASS" : "FAIL") \(label) rel \(scientific(error))\(stated)\(culprit)")
                    } catch {
                        failed += 1
                        log("FAIL \(label) \(error)")
                    }
                }
            }
        } catch {
            failed += 1
            log("FAIL cuda unavailable: \(error)")
        }
        for (precision, (error, name, allowed)) in worst.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            log("worst \(precision.rawValue): \(scientific(error)) (\(name)), its tolerance \(scientific(allowed))")
        }
        log("\(passed) passed, \(failed) failed")
        return (passed, failed)
    }

    /// A named check: runs on the GPU in a precision and returns GPU results with their CPU references.
    struct Case {
        let name: String
        /// A looser bfloat16 tolerance than ``CUDASelfTest/tolerance(_:)``, for cases that chain many rounded
        /// steps (whole models); nil keeps the suite's.
        var bfloat16Tolerance: Float? = nil
        let run: (CUDAContext, CUDAPrecision) throws -> [(gpu: Tensor<Float>, reference: Tensor<Float>)]

        func tolerance(_ precision: CUDAPrecision) -> Float {
            precision == .bfloat16 ? bfloat16Tolerance ?? CUDASelfTest.tolerance(precision) : CUDASelfTest.tolerance(precision)
        }
    }

    // MARK: operations

    static var operationCases: [Case] {
        var cases = [
            Case(name: "linear 37x96 · (80x96)ᵀ") { context, precision in
                let x = representable(Tensor<Float>(randomNormal: [37, 96], seed: 1), precision)
                let w = representable(randomLinearWeight(80, 96, seed: 2), precision)
                let gpu = try context.exclusive {
                    try context.download(try Linear.forward(try context.upload(x, precision), try context.upload(w, precision), context: context))
                }
                return [(gpu, Linear.forward(x, w))]
            },
            Case(name: "rms_norm 33 rows, first 96 of 120 columns") { context, precision in
                let x = representable(Tensor<Float>(randomNormal: [33, 120], seed: 3), precision)
                let weight = Tensor<Float>(randomNormal: [96], std: 0.1, seed: 4).storage.map { $0 + 1 }
                let gpu = try context.exclusive {
                    let input = try context.upload(x, precision).columns(0..<96)
                    let deviceWeight = try context.upload(Tensor(checked: [96], weight), .float32)
                    return try context.download(try RMSNorm.forward(input, weight: deviceWeight, epsilon: 1e-6, context: context).y)
                }
                let reference = RMSNorm.forward(x.columns(0..<96), weight: Tensor(checked: [96], weight), epsilon: 1e-6).y
                return [(gpu, reference)]
            },
        ]
        // (batch, length, heads, head dim, offset of the rotated channels, rotated channels, key heads rotated in
        // the same launch): 16-byte steps (half the rotated channels a multiple of 8) and single ones, head
        // counts not a multiple of the 4 a thread loads at once.
        // The forward rotation and the backward one (the inverse, for gradients).
        let rotaryShapes = [(2, 13, 3, 64, 0, 32, 1), (2, 9, 2, 96, 64, 32, 0), (1, 1, 1, 128, 0, 128, 0), (3, 40, 5, 64, 0, 64, 2),
                            (1, 5, 2, 20, 4, 12, 1)]
        for ((batch, length, heads, headDim, offset, rotaryDim, keyHeads), inverse) in rotaryShapes.flatMap({ shape in [false, true].map { (shape, $0) } }) {
            let name = "rotary\(inverse ? " backward" : "") B\(batch) S\(length) H\(heads) d\(headDim) channels \(offset)+\(rotaryDim)"
                + (keyHeads > 0 ? " with \(keyHeads) key heads" : "")
            cases.append(Case(name: name) { context, precision in
                let data = representable(Tensor<Float>(randomNormal: [batch, length, heads, headDim], seed: 5), precision)
                let keys = representable(Tensor<Float>(randomNormal: [batch, length, keyHeads, headDim], seed: 6), precision)
                let rotary = RotaryEmbedding(rotaryDim: rotaryDim, theta: 10_000)
                let gpu = try context.exclusive {
                    let (device, deviceKeys) = (try context.upload(data, precision), try context.upload(keys, precision))
                    let rows = device.reshaped([batch * length, heads * headDim]).matrix
                    let keyRows = keyHeads > 0 ? (deviceKeys.reshaped([batch * length, keyHeads * headDim]).matrix, keyHeads) : nil
                    let deviceRotary = try DeviceRotary(rotary, context: context)
                    if inverse {
                        try deviceRotary.backward(rows, heads: heads, keys: keyRows, headStride: headDim, offset: offset,
                                                  sequenceLength: length, context: context)
                    } else {
                        try deviceRotary.forward(rows, heads: heads, keys: keyRows, headStride: headDim, offset: offset,
                                                 sequenceLength: length, context: context)
                    }
                    return (try context.download(device), try context.download(deviceKeys))
                }
                let rotatedKeys = keyHeads > 0 ? [(gpu.1, rotatedOnCPU(keys, rotary: rotary, offset: offset, inverse: inverse))] : []
                return [(gpu.0, rotatedOnCPU(data, rotary: rotary, offset: offset, inverse: inverse))] + rotatedKeys
            })
        }
        // (batch, length, query heads, KV heads, key dim, value dim, padding mask)
        let attentionShapes = [
            (1, 1, 1, 1, 64, 64, false), (1, 7, 2, 1, 64, 64, false), (2, 64, 4, 2, 128, 128, false),
            (1, 65, 8, 1, 128, 128, false), (3, 130, 4, 4, 64, 64, false), (2, 257, 8, 2, 128, 128, false),
            (1, 33, 16, 2, 64, 64, false), (2, 100, 4, 1, 96, 64, false), (2, 19, 2, 1, 20, 8, false),
            (1, 1000, 2, 1, 128, 128, false), (3, 70, 4, 2, 64, 64, true), (2, 129, 2, 1, 128, 128, true),
            (1, 1, 1, 1, 128, 128, false), (2, 200, 2, 2, 128, 128, false), (1, 517, 4, 1, 128, 128, true),
            // Head dim 64 past one key tile of the Hopper forward (192) and one row block (128): groups of 4, one KV head.
            (2, 517, 4, 1, 64, 64, true), (1, 400, 8, 2, 64, 64, false),
        ]
        // Head dims 128 and 64 also with 1 and 3 blocks per block of keys on the Hopper path (the small grids here
        // split in up to 4 otherwise; 3 leaves some blocks of the last keys no rows).
        let attentionCases = attentionShapes.flatMap { shape in
            let hopper = shape.4 == shape.5 && [64, 128].contains(shape.4)
            return [true, false].flatMap { causal in (hopper ? [nil, 1, 3] : [nil] as [Int?]).map { (shape, causal: causal, parts: $0) } }
        }
        for ((batch, length, queryHeads, keyValueHeads, keyDim, valueDim, masked), causal, keyBlockParts) in attentionCases {
            let name = "attention B\(batch) S\(length) Hq\(queryHeads) Hkv\(keyValueHeads) dk\(keyDim) dv\(valueDim)"
                + (masked ? " masked" : "") + (causal ? "" : " non-causal") + (keyBlockParts.map { " parts \($0)" } ?? "")
            let heads = Attention.Heads(queryHeads: queryHeads, keyValueHeads: keyValueHeads, keyDim: keyDim,
                                        valueDim: valueDim, scale: 1 / Double(keyDim).squareRoot(), causal: causal)
            // Forward with its log-sum-exp, then the backward from the GPU's own forward.
            cases.append(Case(name: name + " forward, lse, backward") { context, precision in
                let q = representable(Tensor<Float>(randomNormal: [batch, length, queryHeads, keyDim], seed: 6), precision)
                let k = representable(Tensor<Float>(randomNormal: [batch, length, keyValueHeads, keyDim], seed: 7), precision)
                let v = representable(Tensor<Float>(randomNormal: [batch, length, keyValueHeads, valueDim], seed: 8), precision)
                let dOut = representable(Tensor<Float>(randomNormal: [batch, length, queryHeads, valueDim], seed: 9), precision)
                let keyValid = masked ? paddingMask(batch: batch, length: length).storage.map { $0 != 0 } : nil
                let gpu = try context.exclusive {
                    let flags = try keyValid.map { try context.upload($0.map { $0 ? UInt8(1) : 0 }) }
                    let (dq, dk, dv) = (try context.upload(q, precision), try context.upload(k, precision), try context.upload(v, precision))
                    let (out, lse) = try Attention.forward(q: dq, k: dk, v: dv, heads: heads, keyValid: flags, keepLSE: true,
                                                           context: context)
                    let gradients = try Attention.backward(dOut: try context.upload(dOut, precision), q: dq, k: dk, v: dv, out: out,
                                                           lse: lse!, heads: heads, keyValid: flags, keyBlockParts: keyBlockParts,
                                                           context: context)
                    return try [out, lse!, gradients.dq, gradients.dk, gradients.dv].map { try context.download($0) }
                }
                let layout = try SequenceLayout(batch: batch, length: length, keyValid: keyValid)
                let saved = Attention.forward(q: q, k: k, v: v, layout: layout, heads: heads)
                var (dq, dk, dv) = Attention.backward(dOut: dOut, q: q, k: k, v: v, saved: saved, layout: layout, heads: heads)
                if length == 1 {
                    // One key: the softmax is constant, so dq and dk are exactly zero; the float32 reference holds
                    // only its own rounding of dP − delta, which no relative comparison can match.
                    (dq, dk) = (Tensor(zeros: dq.shape), Tensor(zeros: dk.shape))
                }
                let (gpuLSE, referenceLSE) = try finiteOrBothInfinite(gpu[1], try saved.lse.reshaped(gpu[1].shape))
                return [(gpu[0], try saved.out.reshaped(gpu[0].shape)), (gpuLSE, referenceLSE), (gpu[2], dq), (gpu[3], dk), (gpu[4], dv)]
            })
        }
        for (batch, length, config) in ccaConfigs + ccaPrologueOnlyConfigs {
            cases.append(Case(name: "cca prologue B\(batch) S\(length) \(describe(config))") { context, precision in
                let layer = try CCA<Float>(config: config, seed: 9)
                let x = Tensor<Float>(randomNormal: [batch, length, config.hiddenSize], seed: 10)
                let gpu = try context.exclusive {
                    let (q, k, v) = try DeviceCCA(config: config, weights: try config.upload(layer.weights, precision: precision, context: context), context: context)
                        .project(try context.upload(x, precision), context: context)
                    return (try context.download(q), try context.download(k), try context.download(v))
                }
                let layout = try SequenceLayout(batch: batch, length: length)
                let reference = try layer.forward(x, layout: layout, states: nil, keep: true).saved!
                return [(gpu.0, try reference.q.reshaped(gpu.0.shape)), (gpu.1, try reference.k.reshaped(gpu.1.shape)),
                        (gpu.2, try reference.v.reshaped(gpu.2.shape))]
            })
        }
        return cases
    }

    // MARK: layers

    /// CCA / CCGQA settings: plain CCA, CCGQA with groups 2 to 8, exp temperature, full and partial RoPE,
    /// one and no convolution, no QK-mean, no value shift, and a ZAYA1-like layer at reduced width.
    static let ccaConfigs: [(batch: Int, length: Int, config: CCAConfig)] = [
        (1, 1, CCAConfig(hiddenSize: 256, queryHeads: 2, keyValueHeads: 2, headDim: 64, rope: RoPEConfig(theta: 10_000, fraction: 0.5))),
        (2, 37, CCAConfig(hiddenSize: 512, queryHeads: 4, keyValueHeads: 2, headDim: 128, rope: RoPEConfig(theta: 5e6, fraction: 0.5), temperature: .exp)),
        (2, 70, CCAConfig(hiddenSize: 256, queryHeads: 8, keyValueHeads: 1, headDim: 64, rope: RoPEConfig(theta: 10_000, fraction: 1))),
        (2, 33, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 1, headDim: 64, convolutions: 1)),
        (1, 20, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64, convolutions: 0)),
        (2, 40, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 64, qkMean: false, valueShift: false)),
        (1, 300, CCAConfig(hiddenSize: 1024, queryHeads: 8, keyValueHeads: 2, headDim: 128)),
    ]

    /// Steps 2-8 alone: a long sequence, with more row tiles than the tensor-core prologue has blocks per
    /// head (so each block loops) and RoPE angles in the thousands of radians; and a head dim of 20, whose
    /// value halves are no whole 16-byte units (the element-wise value shift).
    static let ccaPrologueOnlyConfigs: [(batch: Int, length: Int, config: CCAConfig)] = [
        (2, 9000, CCAConfig(hiddenSize: 256, queryHeads: 4, keyValueHeads: 2, headDim: 128)),
        (2, 45, CCAConfig(hiddenSize: 128, queryHeads: 2, keyValueHeads: 1, headDim: 20)),
    ]

    static var layerCases: [Case] {
        var cases: [Case] = []
        // Forward, and where the GPU has it the backward: dx and every weight's gradient for the same dy.
        func add(_ name: String, batch: Int, length: Int, masked: Bool, backward: Bool = false,
                 _ make: @escaping () throws -> any AttentionLayer<Float>) {
            let label = "\(name) B\(batch) S\(length)\(masked ? " masked" : "")" + (backward ? " forward and backward" : "")
            cases.append(Case(name: label) { _, precision in
                let layer = try make()
                let x = Tensor<Float>(randomNormal: [batch, length, layer.hiddenSize], seed: 11)
                let mask = masked ? paddingMask(batch: batch, length: length) : nil
                let gpu = try CUDALayer(layer, precision: precision)
                guard backward else { return [(try gpu.forward(x, mask: mask), try layer.forward(x, mask: mask))] }
                let dy = Tensor<Float>(randomNormal: x.shape, seed: 12)
                let (y, gpuBackward) = try gpu.pullback(x, mask: mask)
                let layout = try SequenceLayout(batch: batch, length: length, mask: mask)
                let (reference, cpuBackward) = try layer.pullback(x, layout: layout)
                let (dx, grads) = try gpuBackward(dy)
                let (referenceDX, referenceGrads) = try cpuBackward(dy)
                return [(y, reference), (dx, referenceDX)] + referenceGrads.sorted { $0.key < $1.key }.map { name, gradient in
                    (grads[name] ?? Tensor(zeros: [0]), gradient)
                }
            })
        }
        for (index, (batch, length, config)) in ccaConfigs.enumerated() {
            add("layer cca \(describe(config))", batch: batch, length: length, masked: false) { try CCA<Float>(config: config, seed: 12) }
            if index == 1 || index == 2 {
                add("layer cca \(describe(config))", batch: batch + 1, length: length, masked: true) { try CCA<Float>(config: config, seed: 12) }
            }
        }
        // (query heads, KV heads, head dim, RoPE fraction, batch, length, masked)
        for (queryHeads, keyValueHeads, headDim, fraction, batch, length, masked) in [
            (4, 2, 64, 1.0, 2, 45, false), (8, 1, 64, 0.5, 1, 129, false), (8, 8, 128, 1.0, 2, 17, false),
            (4, 1, 128, 0.5, 3, 66, true),
        ] {
            let config = GQAConfig(hiddenSize: 512, queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: headDim,
                                   rope: RoPEConfig(theta: 10_000, fraction: fraction))
            add("layer gqa Hq\(queryHeads) Hkv\(keyValueHeads) d\(headDim) rope\(fraction)", batch: batch, length: length,
                masked: masked, backward: true) { try GQA<Float>(config: config, seed: 13) }
        }
        add("layer mha E512 H4 d128", batch: 2, length: 31, masked: false, backward: true) { try GQA<Float>(config: .mha(hiddenSize: 512, heads: 4), seed: 14) }
        // (no-PE dim, RoPE dim, value dim, batch, length, masked)
        for (noPE, rope, value, batch, length, masked) in [(64, 32, 64, 2, 50, false), (96, 32, 128, 1, 130, false), (64, 32, 64, 3, 40, true)] {
            let config = MLAConfig(hiddenSize: 256, heads: 4, queryRank: 96, keyValueRank: 64, noPEHeadDim: noPE,
                                   ropeHeadDim: rope, valueHeadDim: value)
            add("layer mla H4 dn\(noPE) dr\(rope) dv\(value)", batch: batch, length: length, masked: masked) {
                try MLA<Float>(config: config, seed: 15)
            }
        }
        return cases
    }

    // MARK: helpers

    /// `tensor` rounded to what `precision` can store, so that operation checks compare like with like.
    static func representable(_ tensor: Tensor<Float>, _ precision: CUDAPrecision) -> Tensor<Float> {
        guard precision == .bfloat16 else { return tensor }
        var rounded = tensor
        rounded.storage = tensor.storage.map { HalfPrecision.float(bfloat16: HalfPrecision.bfloat16Bits($0)) }
        return rounded
    }

    /// The two log-sum-exp tensors with the rows that see no key (−∞ in the reference) set to 0 in both,
    /// after checking the GPU also has −∞ there (a mismatch leaves a NaN, which fails the case).
    static func finiteOrBothInfinite(_ gpu: Tensor<Float>, _ reference: Tensor<Float>) throws -> (Tensor<Float>, Tensor<Float>) {
        var (gpu, reference) = (gpu, reference)
        for i in 0..<reference.count where reference.storage[i] == -.infinity {
            gpu.storage[i] = gpu.storage[i] == -.infinity ? 0 : .nan
            reference.storage[i] = 0
        }
        return (gpu, reference)
    }

    /// `[B, S]` padding: sequence 1 loses its last third, sequence 2 its first two tokens (left padding),
    /// the others are whole.
    static func paddingMask(batch: Int, length: Int) -> Tensor<Float> {
        var mask = Tensor<Float>(zeros: [batch, length], value: 1)
        for t in 0..<length {
            if batch > 1 && t >= length - length / 3 { mask.storage[length + t] = 0 }
            if batch > 2 && t < 2 { mask.storage[2 * length + t] = 0 }
        }
        return mask
    }

    /// The CPU rotation of channels `offset ..< offset + rotaryDim` of each head of a `[B,S,H,d]` tensor, or
    /// its backward pass (the inverse rotation).
    static func rotatedOnCPU(_ data: Tensor<Float>, rotary: RotaryEmbedding, offset: Int, inverse: Bool,
                             positions: [Int]? = nil) -> Tensor<Float> {
        let (batch, length, heads, headDim) = (data.shape[0], data.shape[1], data.shape[2], data.shape[3])
        let positions = positions ?? (0..<(batch * length)).map { $0 % length }
        var result = data
        if inverse {
            rotary.backward(&result, positions: positions, heads: heads, headStride: headDim, offset: offset)
        } else {
            rotary.forward(&result, positions: positions, heads: heads, headStride: headDim, offset: offset)
        }
        return result
    }

    /// max |gpu − reference| / max |reference|; NaN when the GPU result has a non-finite element. A
    /// reference that is exactly zero (the attention's dq and dk of a one-token sequence, whose softmax is
    /// constant) is compared absolutely: max |gpu|, rounding noise, must stay under the tolerance.
    static func relativeError(_ gpu: Tensor<Float>, _ reference: Tensor<Float>) -> Float {
        guard gpu.shape == reference.shape else { return .infinity }
        guard reference.storage.allSatisfy({ $0 == 0 }) else { return gpu.relativeError(to: reference) }
        return gpu.storage.reduce(0) { $1.isFinite && $0.isFinite ? max($0, abs($1)) : .nan }
    }

    static func describe(_ c: CCAConfig) -> String {
        var text = "E\(c.hiddenSize) Hq\(c.queryHeads) Hkv\(c.keyValueHeads) d\(c.headDim) rope\(c.rope.fraction) \(c.temperature)"
        if c.convolutions != 2 { text += " conv\(c.convolutions)" }
        if !c.qkMean { text += " no-mean" }
        if !c.valueShift { text += " no-shift" }
        return text
    }

    /// `x` as `d.dde±XX`; "NaN (unwritten or non-finite output)" for NaN.
    static func scientific(_ x: Float) -> String {
        if x.isNaN { return "NaN (unwritten or non-finite output)" }
        if x == 0 || !x.isFinite { return "\(x)" }
        var exponent = Int(Double.log10(Double(x)).rounded(.down))
        var mantissa = (Double(x) / Double.pow(10, exponent) * 100).rounded() / 100
        if mantissa >= 10 { mantissa /= 10; exponent += 1 }
        let digits = String(Int((mantissa * 100).rounded()))
        let sign = exponent < 0 ? "-" : "+"
        let magnitude = abs(exponent)
        return "\(digits.prefix(1)).\(digits.dropFirst())e\(sign)\(magnitude < 10 ? "0" : "")\(magnitude)"
    }
}

extension String {
    /// The string cut or padded with spaces to `width` characters, for aligned log columns.
    func padding(to width: Int) -> String {
        count >= width ? String(prefix(width)) : self + String(repeating: " ", count: width - count)
    }
}
