/// A dense row-major tensor in device memory, stored as float32 or bfloat16.
///
/// It may be a view into a larger buffer (a parameter of ``DeviceParameters``' flat buffers): its elements
/// then start `byteOffset` bytes in.
struct DeviceTensor: Sendable {
    let shape: [Int]
    let precision: CUDAPrecision
    let buffer: DeviceBuffer
    let byteOffset: Int

    init(shape: [Int], precision: CUDAPrecision, buffer: DeviceBuffer, byteOffset: Int = 0) {
        precondition(byteOffset >= 0 && byteOffset + shape.reduce(1, *) * precision.byteCount <= buffer.byteCount,
                     "a tensor of \(shape) at byte \(byteOffset) does not fit its buffer of \(buffer.byteCount) bytes")
        (self.shape, self.precision, self.buffer, self.byteOffset) = (shape, precision, buffer, byteOffset)
    }

    var count: Int { shape.reduce(1, *) }
    var address: UInt64 { buffer.address + UInt64(byteOffset) }

    /// The same elements under another shape with the same element count.
    func reshaped(_ newShape: [Int]) -> DeviceTensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) to \(newShape) changes the element count")
        return DeviceTensor(shape: newShape, precision: precision, buffer: buffer, byteOffset: byteOffset)
    }

    /// The `shape.reduce(1, *)` elements from element `offset` on, as a tensor of `shape`.
    func view(_ shape: [Int], at offset: Int) -> DeviceTensor {
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= count, "view \(shape) at \(offset) outside \(self.shape)")
        return DeviceTensor(shape: shape, precision: precision, buffer: buffer, byteOffset: byteOffset + offset * precision.byteCount)
    }

    /// `tensors` as one `[Σ rows, columns]` matrix when each lies right after the one before in one buffer
    /// (as ``CCAConfig/upload(_:precision:context:)`` and ``DeviceParameters`` place CCA's projection
    /// weights and an MLP's gate and up weights, and may place their gradients), else nil.
    static func stacked(_ tensors: [DeviceTensor]) -> DeviceTensor? {
        let first = tensors[0]
        let adjacent = zip(tensors, tensors.dropFirst()).allSatisfy { previous, next in
            next.buffer.address == previous.buffer.address && next.precision == previous.precision
                && next.shape.dropFirst() == previous.shape.dropFirst()
                && next.byteOffset == previous.byteOffset + previous.count * previous.precision.byteCount
        }
        guard adjacent else { return nil }
        return DeviceTensor(shape: [tensors.reduce(0) { $0 + $1.shape[0] }] + first.shape.dropFirst(), precision: first.precision,
                            buffer: first.buffer, byteOffset: first.byteOffset)
    }

    /// The tensor as a matrix of its last dimension by everything before it.
    var matrix: DeviceMatrix { columns(0..<shape.last!) }

    /// The columns `range` of ``matrix``, a strided view.
    func columns(_ range: Range<Int>) -> DeviceMatrix {
        let width = shape.last!
        precondition(range.lowerBound >= 0 && range.upperBound <= width, "columns \(range) outside width \(width)")
        return DeviceMatrix(buffer: buffer, byteOffset: byteOffset + range.lowerBound * precision.byteCount, rows: count / width,
                            columns: range.count, stride: width, precision: precision)
    }
}

/// A strided matrix view into device memory: `rows` rows of `columns` elements, `stride` elements apart.
///
/// The view holds its buffer: a view of a temporary must keep the memory from going back to the
/// allocator (and to the next allocation) before the kernels that read it are queued.
struct DeviceMatrix: Sendable {
    let buffer: DeviceBuffer
    let byteOffset: Int
    let rows: Int, columns: Int, stride: Int
    let precision: CUDAPrecision

    var address: UInt64 { buffer.address + UInt64(byteOffset) }
}

extension CUDAContext {
    /// An uninitialised tensor (filled with NaN when the allocator poisons).
    func empty(_ shape: [Int], _ precision: CUDAPrecision) throws -> DeviceTensor {
        DeviceTensor(shape: shape, precision: precision,
                     buffer: try allocator.allocate(max(1, shape.reduce(1, *)) * precision.byteCount))
    }

    /// Sets every byte of `buffer` to zero (queued on the stream).
    func zero(_ buffer: DeviceBuffer) throws {
        try driver.check(driver.memset32(buffer.address, 0, buffer.byteCount / 4, stream), "cuMemsetD32Async")
    }

    /// Sets `count` elements from `address` to zero; an odd count of bfloat16 elements rounds up to a
    /// whole 4-byte word, so the buffer must extend that far (the allocator's size classes do).
    func zero(address: UInt64, count: Int, precision: CUDAPrecision) throws {
        try driver.check(driver.memset32(address, 0, (count * precision.byteCount + 3) / 4, stream), "cuMemsetD32Async")
    }

    /// `tensor` copied to the device, rounded to bfloat16 (nearest even) for `.bfloat16`.
    func upload(_ tensor: Tensor<Float>, _ precision: CUDAPrecision) throws -> DeviceTensor {
        let result = try empty(tensor.shape, precision)
        try upload(tensor, into: result)
        return result
    }

    /// Copies `tensor` into `destination` (a tensor or view of the same element count), in its precision.
    func upload(_ tensor: Tensor<Float>, into destination: DeviceTensor) throws {
        precondition(tensor.count == destination.count, "uploading \(tensor.shape) into \(destination.shape)")
        switch destination.precision {
        case .float32: try copy(tensor.storage, to: destination.address)
        case .bfloat16: try copy(tensor.storage.map(HalfPrecision.bfloat16Bits), to: destination.address)
        }
    }

    /// `values` in a new device buffer, as they are (float32 weights, double frequencies, byte flags).
    func upload<Element: BitwiseCopyable>(_ values: [Element]) throws -> DeviceBuffer {
        let buffer = try allocator.allocate(max(1, values.count * MemoryLayout<Element>.stride))
        try upload(values, into: buffer)
        return buffer
    }

    /// Copies `values` into the start of `buffer` (queued on the stream, after the work queued before).
    func upload<Element: BitwiseCopyable>(_ values: [Element], into buffer: DeviceBuffer) throws {
        precondition(values.count * MemoryLayout<Element>.stride <= buffer.byteCount,
                     "uploading \(values.count) values into \(buffer.byteCount) bytes")
        try copy(values, to: buffer.address)
    }

    /// The tensor's values as a CPU ``Tensor``; waits for the work queued before.
    func download(_ tensor: DeviceTensor) throws -> Tensor<Float> {
        switch tensor.precision {
        case .float32:
            return try Tensor<Float>(shape: tensor.shape, storage: try read(Float.self, tensor.count, from: tensor.address))
        case .bfloat16:
            let bits = try read(UInt16.self, tensor.count, from: tensor.address)
            return try Tensor<Float>(shape: tensor.shape, storage: bits.map { HalfPrecision.float(bfloat16: $0) })
        }
    }

    /// The first `count` values of `buffer` as they are (int32 token ids, flags); waits for the work queued before.
    func download<Element: BitwiseCopyable>(_ type: Element.Type, _ count: Int, from buffer: DeviceBuffer) throws -> [Element] {
        precondition(count * MemoryLayout<Element>.stride <= buffer.byteCount, "reading \(count) values from \(buffer.byteCount) bytes")
        return try read(type, count, from: buffer.address)
    }

    /// Sets every element of `tensor` to 0 (float32 and bfloat16 zero are all-zero bits).
    /// - Throws: ``CUDAError/unsupported(_:)`` for a tensor whose byte count is not a multiple of 4 (an odd
    ///   number of bfloat16 elements).
    func zero(_ tensor: DeviceTensor) throws {
        let bytes = tensor.count * tensor.precision.byteCount
        guard bytes % 4 == 0 else { throw CUDAError.unsupported("zeroing \(bytes) bytes, not a whole number of 4-byte words") }
        guard bytes > 0 else { return }
        try driver.check(driver.memset32(tensor.address, 0, bytes / 4, stream), "cuMemsetD32Async")
    }

    private func copy<Element: BitwiseCopyable>(_ values: [Element], to address: UInt64) throws {
        guard !values.isEmpty else { return }
        guard !isCapturing else { throw CUDAError.unsupported("a copy from the host inside a captured graph") }
        try values.withUnsafeBytes { bytes in
            // From pageable memory the copy returns once the bytes are staged, so `values` may go away after.
            try driver.check(driver.copyHostToDevice(address, bytes.baseAddress!, bytes.count, stream), "cuMemcpyHtoDAsync")
        }
    }

    private func read<Element: BitwiseCopyable>(_ type: Element.Type, _ count: Int, from address: UInt64) throws -> [Element] {
        guard !isCapturing else { throw CUDAError.unsupported("a copy to the host inside a captured graph") }
        var values = [Element](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        try values.withUnsafeMutableBytes { bytes in
            guard bytes.count > 0 else { return }
            try driver.check(driver.copyDeviceToHost(bytes.baseAddress!, address, bytes.count, stream), "cuMemcpyDtoHAsync")
        }
        try synchronize()
        return values
    }
}

extension [String: DeviceTensor] {
    /// Throws unless every name of `shapes` is here, with its shape, in float32 (the storage of weights
    /// that kernels read as float, and of gradients).
    /// - Throws: ``WeightError``.
    func requireFloat32(_ shapes: [String: [Int]]) throws {
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) {
            guard let tensor = self[name] else { throw WeightError.missing(name: name, available: keys.sorted()) }
            guard tensor.shape == shape else { throw WeightError.wrongShape(name: name, expected: shape, actual: tensor.shape) }
            guard tensor.precision == .float32 else {
                throw WeightError.wrongDType(name: name, dtype: tensor.precision.rawValue, expected: "float32")
            }
        }
    }
}
