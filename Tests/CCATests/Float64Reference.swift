import CCA
import RealModule

/// Plain float64 implementations of every layer, written from the spec for the tests only:
/// nested loops, no shared code with the library, so an error in either shows up as a mismatch.
enum Reference {
    /// Row-major matrix with named dimensions.
    typealias Matrix = [[Double]]

    static func matrix(_ t: Tensor<Float>, rows: Int, columns: Int) -> Matrix {
        (0..<rows).map { r in (0..<columns).map { c in Double(t.storage[r * columns + c]) } }
    }

    /// y[r] = x[r] · Wᵀ for W [out, in].
    static func linear(_ x: Matrix, _ weight: Tensor<Float>) -> Matrix {
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        return x.map { row in
            (0..<outFeatures).map { o in
                var sum = 0.0
                for i in 0..<inFeatures { sum += row[i] * Double(weight.storage[o * inFeatures + i]) }
                return sum
            }
        }
    }

    /// NeoX rotate-half RoPE of one head vector at `position` on its first `rotaryDim` channels.
    static func rope(_ v: [Double], position: Int, rotaryDim: Int, theta: Double) -> [Double] {
        var out = v
        let half = rotaryDim / 2
        for i in 0..<half {
            let angle = Double(position) / Double.pow(theta, Double(2 * i) / Double(rotaryDim))
            out[i] = v[i] * Double.cos(angle) - v[i + half] * Double.sin(angle)
            out[i + half] = v[i + half] * Double.cos(angle) + v[i] * Double.sin(angle)
        }
        return out
    }

    /// softmax(q·k·scale) v over keys s ≤ t that are valid; q [S][Hq][dk], k [S][Hkv][dk], v [S][Hkv][dv].
    static func attention(q: [[[Double]]], k: [[[Double]]], v: [[[Double]]], scale: Double, valid: [Bool]) -> [[[Double]]] {
        let (length, queryHeads, keyValueHeads, valueDim) = (q.count, q[0].count, k[0].count, v[0][0].count)
        let group = queryHeads / keyValueHeads
        var out = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: valueDim), count: queryHeads), count: length)
        for t in 0..<length {
            for h in 0..<queryHeads {
                let j = h / group
                let keys = (0...t).filter { valid[$0] }
                guard !keys.isEmpty else { continue }
                let scores = keys.map { s in zip(q[t][h], k[s][j]).reduce(0) { $0 + $1.0 * $1.1 } * scale }
                let top = scores.max()!
                let weights = scores.map { Double.exp($0 - top) }
                let total = weights.reduce(0, +)
                for (index, s) in keys.enumerated() {
                    for c in 0..<valueDim { out[t][h][c] += weights[index] / total * v[s][j][c] }
                }
            }
        }
        return out
    }

    /// Splits rows of width heads·d into [S][heads][d].
    static func heads(_ x: Matrix, count: Int, width: Int) -> [[[Double]]] {
        x.map { row in (0..<count).map { h in Array(row[(h * width)..<((h + 1) * width)]) } }
    }

    static func tensor(_ rows: [Matrix], shape: [Int]) -> Tensor<Float> {
        try! Tensor<Float>(shape: shape, storage: rows.flatMap { $0.flatMap { $0.map { Float($0) } } })
    }

    /// One sequence (batch element) of x, with padded rows zeroed.
    static func sequence(_ x: Tensor<Float>, _ b: Int, mask: Tensor<Float>?) -> (Matrix, [Bool]) {
        let (length, width) = (x.shape[1], x.shape[2])
        var rows = (0..<length).map { t in (0..<width).map { c in Double(x.storage[(b * length + t) * width + c]) } }
        let valid = (0..<length).map { t in mask.map { $0.storage[b * length + t] != 0 } ?? true }
        for t in 0..<length where !valid[t] { rows[t] = [Double](repeating: 0, count: width) }
        return (rows, valid)
    }

    static func finish(_ output: Matrix, valid: [Bool]) -> Matrix {
        output.enumerated().map { t, row in valid[t] ? row : row.map { _ in 0 } }
    }

    // MARK: Layers

    static func gqa(_ x: Tensor<Float>, weights w: [String: Tensor<Float>], config c: GQAConfig, mask: Tensor<Float>? = nil) -> Tensor<Float> {
        let d = c.headDim
        let rotaryDim = Int(Double(d) * c.rope.fraction)
        let outputs = (0..<x.shape[0]).map { b -> Matrix in
            let (rows, valid) = sequence(x, b, mask: mask)
            let q = heads(linear(rows, w["q_proj.weight"]!), count: c.queryHeads, width: d).enumerated().map { t, hs in
                hs.map { rope($0, position: t, rotaryDim: rotaryDim, theta: c.rope.theta) } }
            let k = heads(linear(rows, w["k_proj.weight"]!), count: c.keyValueHeads, width: d).enumerated().map { t, hs in
                hs.map { rope($0, position: t, rotaryDim: rotaryDim, theta: c.rope.theta) } }
            let v = heads(linear(rows, w["v_proj.weight"]!), count: c.keyValueHeads, width: d)
            let o = attention(q: q, k: k, v: v, scale: 1 / Double(d).squareRoot(), valid: valid)
            return finish(linear(o.map { $0.flatMap { $0 } }, w["o_proj.weight"]!), valid: valid)
        }
        return tensor(outputs, shape: x.shape)
    }

    static func cca(_ x: Tensor<Float>, weights w: [String: Tensor<Float>], config c: CCAConfig, mask: Tensor<Float>? = nil) -> Tensor<Float> {
        let (d, hq, hkv) = (c.headDim, c.queryHeads, c.keyValueHeads)
        let (eq, ek) = (hq * d, hkv * d)
        let ct = eq + ek, g = hq / hkv
        let rotaryDim = Int(Double(d) * c.rope.fraction)
        let outputs = (0..<x.shape[0]).map { b -> Matrix in
            let (rows, valid) = sequence(x, b, mask: mask)
            let length = rows.count
            let q0 = linear(rows, w["qkv_proj.q_proj.weight"]!), k0 = linear(rows, w["qkv_proj.k_proj.weight"]!)
            let qk0 = (0..<length).map { q0[$0] + k0[$0] }
            // Convolutions over the sequence padded on the left (spec step 4).
            var mixed = qk0
            if c.convolutions >= 1 {
                let pad = c.convolutions
                let padded = [[Double]](repeating: [Double](repeating: 0, count: ct), count: pad) + qk0
                let wA = w["qkv_proj.conv_qk_depthwise.weight"]!, bA = w["qkv_proj.conv_qk_depthwise.bias"]!
                let convA = (0..<(padded.count - 1)).map { (i: Int) -> [Double] in
                    (0..<ct).map { (ch: Int) -> Double in
                        let older: Double = Double(wA.storage[ch * 2]) * padded[i][ch]
                        let newer: Double = Double(wA.storage[ch * 2 + 1]) * padded[i + 1][ch]
                        return older + newer + Double(bA.storage[ch])
                    }
                }
                mixed = convA
                if c.convolutions == 2 {
                    let wB = w["qkv_proj.conv_qk_grouped.weight"]!, bB = w["qkv_proj.conv_qk_grouped.bias"]!
                    mixed = (0..<(convA.count - 1)).map { i in
                        (0..<ct).map { o in
                            let group = o / d
                            var sum = Double(bB.storage[o])
                            for inner in 0..<d {
                                for tap in 0..<2 {
                                    sum += Double(wB.storage[(o * d + inner) * 2 + tap]) * convA[i + tap][group * d + inner]
                                }
                            }
                            return sum
                        }
                    }
                }
            }
            // QK-mean, norm, temperature, RoPE (steps 5, 7, 8).
            var q = [[[Double]]](), k = [[[Double]]]()
            for t in 0..<length {
                let meanQuery = (0..<hq).map { h in (0..<d).map { ch in (q0[t][h * d + ch] + k0[t][(h / g) * d + ch]) / 2 } }
                let meanKey = (0..<hkv).map { j in (0..<d).map { ch in
                    (j * g..<(j + 1) * g).reduce(0.0) { $0 + meanQuery[$1][ch] } / Double(g) } }
                let queryHeads = (0..<hq).map { h in (0..<d).map { ch in mixed[t][h * d + ch] + (c.qkMean ? meanQuery[h][ch] : 0) } }
                let keyHeads = (0..<hkv).map { j in (0..<d).map { ch in mixed[t][eq + j * d + ch] + (c.qkMean ? meanKey[j][ch] : 0) } }
                func normalize(_ v: [Double]) -> [Double] {
                    let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), Double(Float.ulpOfOne))
                    return v.map { $0 * Double(d).squareRoot() / norm }
                }
                q.append(queryHeads.map { rope(normalize($0), position: t, rotaryDim: rotaryDim, theta: c.rope.theta) })
                k.append(keyHeads.enumerated().map { j, head in
                    let raw = Double(w["qk_norm.temp"]!.storage[j])
                    let temperature = c.temperature == .exp ? Double.exp(raw) : raw
                    return rope(normalize(head).map { $0 * temperature }, position: t, rotaryDim: rotaryDim, theta: c.rope.theta)
                })
            }
            // Value shift (step 6): the delayed half reads x_{t-1}.
            let current = linear(rows, w["qkv_proj.v_proj_current.weight"]!)
            let delayedInput = c.valueShift ? [[Double]](repeating: [Double](repeating: 0, count: rows[0].count), count: 1) + rows.dropLast() : rows
            let delayed = linear(Array(delayedInput), w["qkv_proj.v_proj_delayed.weight"]!)
            let v = heads((0..<length).map { current[$0] + delayed[$0] }, count: hkv, width: d)
            let o = attention(q: q, k: k, v: v, scale: 1 / Double(d).squareRoot(), valid: valid)
            return finish(linear(o.map { $0.flatMap { $0 } }, w["o_proj.weight"]!), valid: valid)
        }
        return tensor(outputs, shape: x.shape)
    }

    static func mla(_ x: Tensor<Float>, weights w: [String: Tensor<Float>], config c: MLAConfig, mask: Tensor<Float>? = nil) -> Tensor<Float> {
        let (h, dn, dr, dv) = (c.heads, c.noPEHeadDim, c.ropeHeadDim, c.valueHeadDim)
        func rmsNorm(_ row: [Double], _ weight: Tensor<Float>) -> [Double] {
            let rms = (row.reduce(0) { $0 + $1 * $1 } / Double(row.count) + Double(c.normEpsilon)).squareRoot()
            return row.enumerated().map { $1 / rms * Double(weight.storage[$0]) }
        }
        let outputs = (0..<x.shape[0]).map { b -> Matrix in
            let (rows, valid) = sequence(x, b, mask: mask)
            let cq = linear(rows, w["q_a_proj.weight"]!).map { rmsNorm($0, w["q_a_layernorm.weight"]!) }
            let qHeads = heads(linear(cq, w["q_b_proj.weight"]!), count: h, width: dn + dr)
            let kvInput = linear(rows, w["kv_a_proj_with_mqa.weight"]!)
            let ckv = kvInput.map { rmsNorm(Array($0[0..<c.keyValueRank]), w["kv_a_layernorm.weight"]!) }
            let kvHeads = heads(linear(ckv, w["kv_b_proj.weight"]!), count: h, width: dn + dv)
            var q = [[[Double]]](), k = [[[Double]]](), v = [[[Double]]]()
            for t in 0..<rows.count {
                let ropeKey = rope(Array(kvInput[t][c.keyValueRank...]), position: t, rotaryDim: dr, theta: c.ropeTheta)
                q.append(qHeads[t].map { Array($0[0..<dn]) + rope(Array($0[dn...]), position: t, rotaryDim: dr, theta: c.ropeTheta) })
                k.append(kvHeads[t].map { Array($0[0..<dn]) + ropeKey })
                v.append(kvHeads[t].map { Array($0[dn...]) })
            }
            let o = attention(q: q, k: k, v: v, scale: 1 / Double(dn + dr).squareRoot(), valid: valid)
            return finish(linear(o.map { $0.flatMap { $0 } }, w["o_proj.weight"]!), valid: valid)
        }
        return tensor(outputs, shape: x.shape)
    }
}
