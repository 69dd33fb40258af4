/// A model's parameters on the GPU for training, as flat buffers that one kernel updates at once
/// (``AdamW/update(_:rate:clipping:context:)``): float32 master weights, their copy in the compute
/// precision (what the layers read), float32 gradients and AdamW's two float32 moments, all in one layout.
///
/// The layout puts the matrices (rank 2 and up: the parameters AdamW decays) first, then the rest (norms,
/// biases, temperatures), each group in sorted name order, every parameter starting at a multiple of 64
/// elements (256 bytes of float32, 128 of bfloat16: aligned as cuBLAS wants its operands). So elements
/// `0..<decayedCount` are exactly the decayed ones and the update needs no table of parameters. The padding
/// between parameters is zero in every buffer and stays zero (zero gradient and moments, so a zero update).
/// A parameter's part of a buffer is a ``DeviceTensor`` view of its shape: ``view(_:in:)``.
struct DeviceParameters: Sendable {
    /// Where one parameter lives in every buffer.
    struct Segment: Sendable, Equatable {
        let name: String
        let shape: [Int]
        /// Its first element.
        let offset: Int
        var count: Int { shape.reduce(1, *) }
    }

    /// The flat buffers, all `[count]`.
    enum Buffer: CaseIterable { case master, compute, gradients, firstMoments, secondMoments }

    /// Every parameter, in layout order.
    let segments: [Segment]
    /// Elements in each buffer, padding included (a multiple of ``alignment``).
    let count: Int
    /// Elements `0..<decayedCount` belong to decayed parameters (matrices), the rest to the others.
    let decayedCount: Int
    /// The storage type of ``Buffer/compute``; the other buffers are float32.
    let precision: CUDAPrecision
    private let buffers: [Buffer: DeviceTensor]
    private let index: [String: Int]

    /// Elements each parameter's offset is a multiple of.
    static let alignment = 64

    /// Names sort by this: themselves, except that each CCA layer's four down-projections follow one another
    /// in the order its forward stacks them (``DeviceCCA/projectionNames``), so that they make one product
    /// (an MLP's `gate_proj` and `up_proj` already follow one another by name, and make one too).
    static func layoutKey(_ name: String) -> String {
        for (index, projection) in DeviceCCA.projectionNames.enumerated() where name.hasSuffix(projection) {
            return String(name.dropLast(projection.count)) + "qkv_proj.\u{1}\(index)"
        }
        return name
    }

    /// The layout of parameters of `shapes`: see the type's description.
    static func layout(_ shapes: [String: [Int]]) -> (segments: [Segment], count: Int, decayedCount: Int) {
        func aligned(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }
        var segments: [Segment] = [], end = 0, decayedCount = 0
        let names = shapes.keys.map { (key: layoutKey($0), name: $0) }.sorted { $0.key < $1.key }.map(\.name)
        for decayed in [true, false] {
            for name in names where (shapes[name]!.count >= 2) == decayed {
                segments.append(Segment(name: name, shape: shapes[name]!, offset: aligned(end)))
                end = segments.last!.offset + segments.last!.count
            }
            if decayed { decayedCount = end }
        }
        return (segments, aligned(end), decayedCount)
    }

    /// Uploads `parameters` as the master weights and their compute copy in `precision` (in float32 the
    /// master buffer serves as both); gradients and moments start at zero.
    init(_ parameters: [String: Tensor<Float>], precision: CUDAPrecision, context: CUDAContext) throws {
        let layout = Self.layout(parameters.mapValues(\.shape))
        (segments, count, decayedCount) = layout
        self.precision = precision
        index = Dictionary(uniqueKeysWithValues: layout.segments.indices.map { (layout.segments[$0].name, $0) })
        var buffers: [Buffer: DeviceTensor] = [:]
        for buffer in Buffer.allCases where !(buffer == .compute && precision == .float32) {
            let tensor = try context.empty([count], buffer == .compute ? precision : .float32)
            try context.zero(tensor)
            buffers[buffer] = tensor
        }
        buffers[.compute] = buffers[.compute] ?? buffers[.master]
        self.buffers = buffers
        try upload(parameters, into: .master, context: context)
        if precision != .float32 { try upload(parameters, into: .compute, context: context) }
    }

    /// The whole flat buffer.
    func tensor(_ buffer: Buffer) -> DeviceTensor { buffers[buffer]! }

    /// Parameter `name`'s part of `buffer`, with its shape.
    /// - Throws: ``WeightError/missing(name:available:)`` for a name the model does not have.
    func view(_ name: String, in buffer: Buffer) throws -> DeviceTensor {
        guard let position = index[name] else { throw WeightError.missing(name: name, available: segments.map(\.name)) }
        let segment = segments[position]
        return tensor(buffer).view(segment.shape, at: segment.offset)
    }

    /// Sets every gradient to zero, as each step's backward pass adds into them.
    func zeroGradients(context: CUDAContext) throws { try context.zero(tensor(.gradients)) }

    /// Copies `tensors` (by parameter name, each of its parameter's shape) into `buffer`: weights to
    /// resume from, or an optimizer's moments.
    /// - Throws: ``WeightError`` for an unknown name or a shape that is not the parameter's.
    func upload(_ tensors: [String: Tensor<Float>], into buffer: Buffer, context: CUDAContext) throws {
        for (name, value) in tensors {
            let destination = try view(name, in: buffer)
            guard destination.shape == value.shape else {
                throw WeightError.wrongShape(name: name, expected: destination.shape, actual: value.shape)
            }
            try context.upload(value, into: destination)
        }
    }

    /// `buffer` by parameter name (each download waits for the queued work).
    func download(_ buffer: Buffer, context: CUDAContext) throws -> [String: Tensor<Float>] {
        var tensors: [String: Tensor<Float>] = [:]
        for segment in segments { tensors[segment.name] = try context.download(try view(segment.name, in: buffer)) }
        return tensors
    }
}
