/// A dense, row-major, owned array of `Float` with a shape.
///
/// `Tensor` is a value type: copies share storage until one of them is written (copy on write).
/// Every layer takes and returns tensors; the last dimension is the fastest-moving one.
public struct Tensor: Equatable, Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `storage.count == shape.reduce(1, *)`.
    public var storage: [Float]

    /// A tensor of the given shape filled with `value`.
    public init(zeros shape: [Int], value: Float = 0) {
        self.shape = shape
        self.storage = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor wrapping existing row-major data.
    /// - Throws: ``ShapeError/elementCount`` if `storage.count` does not match the shape.
    public init(shape: [Int], storage: [Float]) throws {
        let expected = shape.reduce(1, *)
        guard storage.count == expected, shape.allSatisfy({ $0 >= 0 }) else {
            throw ShapeError.elementCount(shape: shape, count: storage.count)
        }
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of normally distributed values with standard deviation `std`, reproducible from `seed`.
    public init(randomNormal shape: [Int], std: Float = 1, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        self.shape = shape
        self.storage = (0..<shape.reduce(1, *)).map { _ in generator.nextNormal() * std }
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
    public func relativeError(to other: Tensor) -> Float {
        guard count == other.count else { return .infinity }
        var diff: Float = 0, scale: Float = 0
        for (value, expected) in zip(storage, other.storage) {
            guard value.isFinite else { return .nan }
            diff = max(diff, abs(value - expected))
            scale = max(scale, abs(expected))
        }
        return diff / max(scale, .leastNormalMagnitude)
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
            return "shape \(shape) needs \(shape.reduce(1, *)) elements but \(count) were given"
        case let .mismatch(name, expected, actual):
            return "\(name) has shape \(actual) but \(expected) is required"
        case let .rank(name, expected, actual):
            return "\(name) must have \(expected) dimensions, got shape \(actual)"
        }
    }
}
