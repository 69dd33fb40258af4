#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension CUDASelfTest {
    /// ZAYA's experts on the GPU (`--filter moe`), against a plain Double loop over each row's own expert:
    /// - the grouping and grouped products on ragged expert counts (experts with no rows, rows with no expert,
    ///   more rows than one tile of the grouping kernel), on both many-row paths;
    /// - the few-row kernels of a decode step (one row; rows sharing an expert; the skip expert; every row of
    ///   one expert; no row of any), alone and merged into the residual stream with the next layer's norm,
    ///   against ``ResidualScaling/forward(_:residual:)`` and an RMSNorm in Double.
    static var zayaExpertCases: [Case] {
        var cases: [Case] = []
        // (rows, width E, intermediate I, experts)
        for (rows, width, intermediate, experts) in [(37, 64, 40, 6), (3000, 16, 8, 5)] {
            cases.append(Case(name: "zaya moe grouped experts rows\(rows) E\(width) I\(intermediate) N\(experts)") { context, precision in
                var generator = SplitMix64(seed: UInt64(rows))
                // Expert 1 gets no row; about one row in five goes to none.
                let choices: [Int32] = (0..<rows).map { _ in
                    let pick = Int32(generator.next() % UInt64(experts + 1)) - 1
                    return pick == 1 ? 0 : pick
                }
                let problem = ExpertProblem(choices: choices, width: width, intermediate: intermediate, experts: experts, precision: precision)
                // Both paths: the grouped product, and (host reads allowed; 3000 rows are over the threshold) each
                // expert's products on cuBLAS.
                let (gpu, offsets) = try context.exclusive { () -> ([Tensor<Float>], [Int32]) in
                    let ids = try context.upload(choices)
                    let outputs = try [false, true].map { hostReads in
                        try context.download(try problem.forward(ids, hostReads: hostReads, context: context))
                    }
                    let groups = try MixtureOfExperts.group(experts: ids, rows: rows, expertCount: experts, context: context)
                    return (outputs, try context.download(Int32.self, experts + 1, from: groups.offsets))
                }
                var counts = [Int32](repeating: 0, count: experts + 1)
                for choice in choices where choice >= 0 { counts[Int(choice) + 1] += 1 }
                for e in 0..<experts { counts[e + 1] += counts[e] }
                let reference = problem.reference()
                return gpu.map { ($0, reference) } + [
                    (Tensor(checked: [experts + 1], offsets.map(Float.init)), Tensor(checked: [experts + 1], counts.map(Float.init)))]
            })
        }
        // (choices, width E, intermediate I, experts); -1 is the skip expert.
        let fewRows: [([Int32], Int, Int, Int)] = [
            ([3], 64, 32, 4), ([-1], 64, 32, 4), ([2, -1, 2, 0, 5], 64, 40, 6), (Array(repeating: 1, count: 8), 128, 48, 3),
            ([-1, -1, -1], 32, 16, 2), ([0, 1, 2, 3, 4, 5, 6, -1], 40, 24, 7),
        ]
        for (choices, width, intermediate, experts) in fewRows {
            let name = "rows\(choices.count) [\(choices.map(String.init).joined(separator: ","))] E\(width) I\(intermediate) N\(experts)"
            cases.append(Case(name: "zaya moe few rows \(name), alone and merged into the stream with the next norm") { context, precision in
                let problem = ExpertProblem(choices: choices, width: width, intermediate: intermediate, experts: experts, precision: precision)
                let rows = choices.count
                let stream = Tensor<Float>(randomNormal: [rows, width], seed: 64)
                func vector(_ seed: UInt64, mean: Float) -> Tensor<Float> {
                    var v = Tensor<Float>(randomNormal: [width], std: 0.3, seed: seed)
                    v.storage = v.storage.map { $0 + mean }
                    return v
                }
                let scaling = ResidualScaling(hiddenScale: vector(65, mean: 1), hiddenBias: vector(66, mean: 0),
                                              residualScale: vector(67, mean: 1), residualBias: vector(68, mean: 0))
                let normWeight = vector(69, mean: 1), epsilon: Float = 1e-5
                let (alone, merged, normed, counter) = try context.exclusive {
                    () -> (Tensor<Float>, Tensor<Float>, Tensor<Float>, [Int32]) in
                    let ids = try context.upload(choices)
                    let alone = try context.download(try problem.forward(ids, hostReads: false, context: context))
                    let deviceStream = try context.upload(stream, .float32), blocksDone = try context.upload([Int32(0)])
                    let merge = MixtureOfExperts.StreamMerge(
                        stream: deviceStream, scaling: try DeviceResidualScaling(scaling, context: context),
                        norm: (try context.upload(normWeight, .float32), epsilon, blocksDone))
                    let normed = try problem.forward(ids, merging: merge, context: context)
                    return (alone, try context.download(deviceStream), try context.download(normed!),
                            try context.download(Int32.self, 1, from: blocksDone))
                }
                let reference = problem.reference()
                let mergedReference = scaling.forward(reference, residual: stream)
                var normedReference = mergedReference
                for row in 0..<rows {
                    let values = (0..<width).map { Double(mergedReference.storage[row * width + $0]) }
                    let inverse = 1 / (values.reduce(0) { $0 + $1 * $1 } / Double(width) + Double(epsilon)).squareRoot()
                    for c in 0..<width { normedReference.storage[row * width + c] = Float(values[c] * inverse * Double(normWeight.storage[c])) }
                }
                // The counter is back at 0, ready for the next launch (a CUDA graph's replay).
                return [(alone, reference), (merged, mergedReference), (normed, normedReference),
                        (Tensor(checked: [1], counter.map(Float.init)), Tensor(checked: [1], [0]))]
            })
        }
        return cases
    }

    /// Random inputs, router weights and experts for ``MixtureOfExperts`` on the GPU, with their Double reference.
    struct ExpertProblem {
        let choices: [Int32], routerWeights: [Float]
        let x: Tensor<Float>, gateUp: Tensor<Float>, down: Tensor<Float>
        let width: Int, intermediate: Int, experts: Int
        let precision: CUDAPrecision

        init(choices: [Int32], width: Int, intermediate: Int, experts: Int, precision: CUDAPrecision) {
            let rows = choices.count
            var generator = SplitMix64(seed: UInt64(rows * 31 + width))
            routerWeights = (0..<rows).map { _ in Float(generator.next() % 1000) / 1000 + 0.25 }
            x = representable(Tensor<Float>(randomNormal: [rows, width], seed: 61), precision)
            gateUp = representable(Tensor<Float>(randomNormal: [experts, 2 * intermediate, width], std: 0.2, seed: 62), precision)
            down = representable(Tensor<Float>(randomNormal: [experts, width, intermediate], std: 0.2, seed: 63), precision)
            (self.choices, self.width, self.intermediate, self.experts, self.precision) = (choices, width, intermediate, experts, precision)
        }

        /// ``MixtureOfExperts/forward(_:experts:weights:gateUp:down:hostReads:context:)`` on uploads of the inputs.
        func forward(_ ids: DeviceBuffer, hostReads: Bool, context: CUDAContext) throws -> DeviceTensor {
            try MixtureOfExperts.forward(try context.upload(x, precision), experts: ids,
                                         weights: try context.upload(Tensor(checked: [choices.count], routerWeights), .float32),
                                         gateUp: try context.upload(gateUp, precision), down: try context.upload(down, precision),
                                         hostReads: hostReads, context: context)
        }

        /// The same merged into a stream (``MixtureOfExperts/forward(_:experts:weights:gateUp:down:merging:hostReads:context:)``).
        func forward(_ ids: DeviceBuffer, merging merge: MixtureOfExperts.StreamMerge, context: CUDAContext) throws -> DeviceTensor? {
            try MixtureOfExperts.forward(try context.upload(x, precision), experts: ids,
                                         weights: try context.upload(Tensor(checked: [choices.count], routerWeights), .float32),
                                         gateUp: try context.upload(gateUp, precision), down: try context.upload(down, precision),
                                         merging: merge, hostReads: false, context: context)
        }

        /// The plain loop, in Double: each row through its own expert, 0 for a row of none.
        func reference() -> Tensor<Float> {
            let rows = choices.count
            var reference = [Float](repeating: 0, count: rows * width)
            for row in 0..<rows where choices[row] >= 0 {
                let e = Int(choices[row])
                var hidden = [Double](repeating: 0, count: intermediate)
                for i in 0..<intermediate {
                    var (g, u) = (0.0, 0.0)
                    for k in 0..<width {
                        g += Double(gateUp.storage[(e * 2 * intermediate + i) * width + k]) * Double(x.storage[row * width + k])
                        u += Double(gateUp.storage[(e * 2 * intermediate + intermediate + i) * width + k]) * Double(x.storage[row * width + k])
                    }
                    hidden[i] = g / (1 + Double.exp(-g)) * u
                }
                for c in 0..<width {
                    var sum = 0.0
                    for i in 0..<intermediate { sum += Double(down.storage[(e * width + c) * intermediate + i]) * hidden[i] }
                    reference[row * width + c] = Float(Double(routerWeights[row]) * sum)
                }
            }
            return Tensor(checked: [rows, width], reference)
        }
    }
}
