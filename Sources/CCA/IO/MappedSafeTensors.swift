/// A safetensors file mapped from disk (``MappedFile``) with its header checked as ``SafeTensors`` checks
/// it; each tensor is a ``StoredTensor`` view into the mapping, so opening costs the header only.
public struct MappedSafeTensors: Sendable {
    public let path: String
    /// Tensor names in header order.
    public let names: [String]
    /// The `__metadata__` map; empty when the file has none.
    public let metadata: [String: String]
    /// Placements of every tensor, float types or not.
    let placements: [String: SafeTensorsHeader.Placement]
    let file: MappedFile

    /// Maps and validates the file at `path`.
    /// - Throws: ``SafeTensorsError`` naming the file (and the tensor, when one is at fault).
    public init(path: String) throws {
        do { file = try MappedFile(path: path) } catch let error as FileIOError {
            throw SafeTensorsError(kind: .io, path: path, tensor: nil, message: error.description)
        }
        let header = try SafeTensorsHeader(file: file.bytes, path: path)
        (self.path, names, metadata, placements) = (path, header.names, header.metadata, header.placements)
    }

    /// The dtype and shape of tensor `name`, or nil when the file has no such tensor.
    public func describe(_ name: String) -> (dtype: SafeTensorsDType, shape: [Int])? {
        placements[name].map { ($0.dtype, $0.shape) }
    }

    /// Tensor `name` as a view into the mapping, or nil when the file has no such tensor or it is not a float type.
    public subscript(name: String) -> StoredTensor? {
        guard let placement = placements[name], placement.dtype.isFloat else { return nil }
        // An empty tensor has no bytes to point at; any address inside the mapping will do.
        let base = file.bytes.baseAddress.map { $0 + placement.bytes.lowerBound } ?? UnsafeRawPointer(bitPattern: 1)!
        return StoredTensor(name: name, dtype: placement.dtype, shape: placement.shape, file: file, base: base)
    }
}
