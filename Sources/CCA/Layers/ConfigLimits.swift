/// Upper bounds on the sizes a configuration may ask for, checked by the configs' `validate()` before any
/// weight shape is computed, so that no product of sizes can overflow (release builds would wrap silently)
/// and no config asks for more memory than a machine has.
enum ConfigLimits {
    /// Any one size field (width, head count, head width, rank, layer count). Sums and products of two such
    /// fields, which is what weight shapes are made of, then stay far inside `Int`.
    static let maxDimension = 1 << 24
    /// Elements of any one weight tensor (16 GiB in float32).
    static let maxTensorElements = 1 << 32

    /// Throws ``ConfigError/invalidValue(name:value:expected:)`` for the first field above ``maxDimension``.
    static func requireDimensions(_ pairs: KeyValuePairs<String, Int>) throws {
        for (name, value) in pairs where value > maxDimension {
            throw ConfigError.invalidValue(name: name, value: "\(value)", expected: "at most \(maxDimension)")
        }
    }

    /// The product of `factors`, or nil when it overflows `Int`.
    static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            result = next
        }
        return result
    }

    /// Throws when a weight of `shapes` has more than ``maxTensorElements`` elements; returns their total.
    @discardableResult
    static func requireTensorSizes(_ shapes: [String: [Int]]) throws -> Int {
        var total = 0
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) {
            guard let count = product(shape), count <= maxTensorElements else {
                throw ConfigError.invalidValue(name: "weight '\(name)'", value: "shape \(shape)",
                                               expected: "at most \(maxTensorElements) elements; choose smaller sizes")
            }
            total += count
        }
        return total
    }
}
