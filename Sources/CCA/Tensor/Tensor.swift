/// A dense, row-major, owned array of scalars with a shape: the one CPU tensor type of the package.
///
/// `Tensor<Float>` carries activations, weights and gradients; `Tensor<Double>` runs the same code for
/// gradient checks. A value type: copies share storage until one of them is written (copy on write).
/// The last dimension is the fastest-moving one.
public struct Tensor<Scalar: TensorScalar>: Equatable, Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `storage.count == shape.reduce(1, *)`.
    public var storage: [Scalar]

    /// A tensor of the given shape filled with `value`.
    // Specialised: generic code fills the array through a value-witness call per element.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public init(zeros shape: [Int], value: Scalar = 0) {
        self.shape = shape
        storage = [Scalar](count: shape.reduce(1, *)) { $0.initialize(repeating: value) }
    }

    /// A tensor whose every element `fill` writes, for outputs that an operation overwrites whole (a matrix
    /// product with beta 0), so that no pass zeros them first. `fill` must write all `count` elements.
    init(shape: [Int], filling fill: (UnsafeMutableBufferPointer<Scalar>) -> Void) {
        self.shape = shape
        storage = [Scalar](count: shape.reduce(1, *), filling: fill)
    }

    /// A tensor wrapping existing row-major data.
    /// - Throws: ``ShapeError/elementCount(shape:count:)`` if `storage.count` does not match the shape.
    public init(shape: [Int], storage: [Scalar]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), storage.count == Self.elementCount(shape) else {
            throw ShapeError.elementCount(shape: shape, count: storage.count)
        }
        self.shape = shape
        self.storage = storage
    }

    /// A tensor whose shape the caller has already checked against `storage`.
    init(checked shape: [Int], _ storage: [Scalar]) {
        precondition(storage.count == shape.reduce(1, *), "storage of \(storage.count) does not fit shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    /// Normally distributed values with standard deviation `std`, reproducible from `seed`. The draws are
    /// made in `Float`, so a `Tensor<Double>` from a seed holds exactly the values of the `Float` one.
    public init(randomNormal shape: [Int], std: Float = 1, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        self.shape = shape
        storage = (0..<shape.reduce(1, *)).map { _ in Scalar(generator.nextNormal() * std) }
    }

    /// The same values in another scalar type (rounded when it is narrower).
    public init<Other: TensorScalar>(_ other: Tensor<Other>) {
        shape = other.shape
        storage = other.storage.map { Scalar($0) }
    }

    /// Number of elements.
    public var count: Int { storage.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        try Tensor(shape: newShape, storage: storage)
    }

    /// Throws unless the tensor has exactly `expected` shape; `name` goes into the message.
    public func requireShape(_ expected: [Int], _ name: String) throws {
        guard shape == expected else { throw ShapeError.mismatch(name: name, expected: expected, actual: shape) }
    }

    /// Largest absolute elementwise difference to `other` over the largest absolute element of `other`.
    ///
    /// NaN when this tensor has a non-finite element (so any `error < tolerance` check fails; `max` alone
    /// would skip NaN), infinity when the element counts differ.
    public func relativeError(to other: Tensor) -> Scalar {
        guard count == other.count else { return .infinity }
        var difference: Scalar = 0, scale: Scalar = 0
        for (value, expected) in zip(storage, other.storage) {
            guard value.isFinite else { return .nan }
            difference = max(difference, abs(value - expected))
            scale = max(scale, abs(expected))
        }
        return difference / max(scale, .leastNormalMagnitude)
    }

    /// The product of `shape`'s extents, or nil when it overflows `Int`.
    static func elementCount(_ shape: [Int]) -> Int? {
        var total = 1
        for extent in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: extent)
            guard !overflow else { return nil }
            total = product
        }
        return total
    }
}

/// Shape problems in tensors handed to the library.
public enum ShapeError: Error, CustomStringConvertible, Equatable {
    case elementCount(shape: [Int], count: Int)
    case mismatch(name: String, expected: [Int], actual: [Int])
    case rank(name: String, expected: Int, actual: [Int])

    public var description: String {
        switch self {
        case let .elementCount(shape, count):
            let needed = Tensor<Float>.elementCount(shape).map(String.init) ?? "more than Int.max"
            return "shape \(shape) needs \(needed) elements but \(count) were given"
        case let .mismatch(name, expected, actual):
            return "\(name) has shape \(actual) but \(expected) is required"
        case let .rank(name, expected, actual):
            return "\(name) must have \(expected) dimensions, got shape \(actual)"
        }
    }
}

extension Array where Element: TensorScalar {
    /// `count` elements, every one of which `fill` writes (no pass sets them first).
    init(count: Int, filling fill: (UnsafeMutableBufferPointer<Element>) -> Void) {
        self.init(unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer)
            initialized = count
        }
    }
}
