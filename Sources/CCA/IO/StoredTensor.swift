/// A tensor read in place from a memory-mapped weight file: a safetensors entry of F32, F16, BF16 or F64
/// whose elements convert to `Float` on demand, a block at a time.
///
/// Large weights (an embedding table, stacked experts) stay in this form, so a model's pages are read from
/// disk only when they are used and are never held twice. ``Linear/forward(_:stored:bias:)`` multiplies by
/// one without converting it whole.
public struct StoredTensor: @unchecked Sendable {
    /// The tensor's name in its file.
    public let name: String
    public let dtype: SafeTensorsDType
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// The mapping the elements live in; kept alive by this value.
    public let file: MappedFile
    /// The first byte of the first element (any alignment).
    let base: UnsafeRawPointer

    /// Wraps `shape.reduce(1, *)` elements of `dtype` at `base`, inside `file`; the caller has checked the range.
    init(name: String, dtype: SafeTensorsDType, shape: [Int], file: MappedFile, base: UnsafeRawPointer) {
        precondition(dtype.isFloat, "stored tensors hold float types")
        (self.name, self.dtype, self.shape, self.file, self.base) = (name, dtype, shape, file, base)
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// Converts the elements `elements` (flat, row-major indices) into `destination`.
    public func decode(_ elements: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        precondition(elements.lowerBound >= 0 && elements.upperBound <= count, "elements \(elements) outside \(shape)")
        dtype.decodeFloats(base + elements.lowerBound * dtype.byteSize, count: elements.count, into: destination)
    }

    /// The whole tensor converted to `Float` (a copy: for the small weights).
    public func tensor() -> Tensor<Float> {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { decode(0..<count, into: $0.baseAddress!) }
        return Tensor(checked: shape, values)
    }

    /// Slice `index` of the first dimension, e.g. one expert's `[out, in]` matrix of a stacked `[N, out, in]`
    /// weight; a view, not a copy.
    public func slice(_ index: Int) -> StoredTensor {
        precondition(shape.count >= 1 && (0..<shape[0]).contains(index), "slice \(index) outside \(shape)")
        let inner = Array(shape.dropFirst())
        return StoredTensor(name: "\(name)[\(index)]", dtype: dtype, shape: inner, file: file,
                            base: base + index * inner.reduce(1, *) * dtype.byteSize)
    }

    /// The elements in place when they are stored as aligned F32 (no conversion needed), else nil.
    var floats: UnsafePointer<Float>? {
        guard dtype == .F32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
        return base.assumingMemoryBound(to: Float.self)
    }
}

extension SafeTensorsDType {
    /// Converts `count` little-endian elements at `source` (any alignment) to `Float`; the one decoder of
    /// stored floats, for files read into memory and mapped files alike. Non-float types are a caller error.
    func decodeFloats(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .F32:
            for i in 0..<count { destination[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .BF16:
            // bf16 is the top half of a float32: widen 8 at a time and shift (little-endian hosts).
            var i = 0
            #if _endian(little)
            while i + 8 <= count {
                let bits = SIMD8<UInt32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)) &<< 16
                UnsafeMutableRawPointer(destination + i).storeBytes(of: unsafeBitCast(bits, to: SIMD8<Float>.self), as: SIMD8<Float>.self)
                i += 8
            }
            #endif
            while i < count {
                destination[i] = HalfPrecision.float(bfloat16: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                i += 1
            }
        case .F16:
            for i in 0..<count {
                destination[i] = HalfPrecision.float(float16: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .F64:
            for i in 0..<count { destination[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        default:
            preconditionFailure("\(self) is not a float type")
        }
    }
}
