#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A model directory as Hugging Face publishes one: `config.json`, optionally `generation_config.json` and
/// `tokenizer.json`, and the weights in one `model.safetensors` or in shards listed by
/// `model.safetensors.index.json`.
///
/// Every weight file is memory-mapped (``MappedSafeTensors``), so opening reads the headers only; tensors
/// are found by name across the shards. Only files inside the directory are read: the index must name its
/// shards as plain file names.
public struct ModelDirectory: Sendable {
    public static let configFile = "config.json", generationConfigFile = "generation_config.json"
    public static let weightsFile = "model.safetensors", indexFile = "model.safetensors.index.json"
    public static let tokenizerFile = "tokenizer.json"

    public let path: String
    /// `config.json`.
    let config: KeyReader
    /// `generation_config.json`, when the directory has one.
    let generationConfig: KeyReader?
    /// `tokenizer.json`, when the directory has one.
    public let tokenizerPath: String?
    /// The weight files by file name, and the file name holding each tensor.
    let files: [String: MappedSafeTensors]
    let fileOfTensor: [String: String]

    /// Reads the configs and maps every weight file of the directory at `path`.
    /// - Throws: ``ModelDirectoryError``, ``ConfigFileError`` for a malformed JSON file, or ``SafeTensorsError``
    ///   for a malformed weight file (each naming the file).
    public init(path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw ModelDirectoryError.notADirectory(path) }
        self.path = path
        func file(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }
        func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

        guard exists(Self.configFile) else { throw ModelDirectoryError.missingFile(file(Self.configFile)) }
        config = try Self.readJSON(file(Self.configFile))
        generationConfig = exists(Self.generationConfigFile) ? try Self.readJSON(file(Self.generationConfigFile)) : nil
        tokenizerPath = exists(Self.tokenizerFile) ? file(Self.tokenizerFile) : nil

        var files: [String: MappedSafeTensors] = [:], fileOfTensor: [String: String] = [:]
        if exists(Self.indexFile) {
            let index = try Self.readJSON(file(Self.indexFile))
            guard let weightMap = try index.object("weight_map") else {
                throw ModelDirectoryError.malformedIndex(file(Self.indexFile), "it has no 'weight_map' object")
            }
            for (tensor, value) in weightMap.keys.sorted(by: { $0.key < $1.key }) {
                guard case let .string(shard) = value else {
                    throw ModelDirectoryError.malformedIndex(file(Self.indexFile), "the entry for '\(tensor)' is not a file name")
                }
                guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                    throw ModelDirectoryError.malformedIndex(file(Self.indexFile), "'\(shard)' (for '\(tensor)') is not a file name inside the directory")
                }
                if files[shard] == nil {
                    guard exists(shard) else { throw ModelDirectoryError.missingShard(file(shard), tensor: tensor, index: file(Self.indexFile)) }
                    files[shard] = try MappedSafeTensors(path: file(shard))
                }
                guard files[shard]!.describe(tensor) != nil else {
                    throw ModelDirectoryError.tensorNotInShard(tensor: tensor, shard: file(shard), index: file(Self.indexFile))
                }
                fileOfTensor[tensor] = shard
            }
        } else if exists(Self.weightsFile) {
            let weights = try MappedSafeTensors(path: file(Self.weightsFile))
            files[Self.weightsFile] = weights
            for name in weights.names { fileOfTensor[name] = Self.weightsFile }
        } else {
            throw ModelDirectoryError.noWeights(path, hasPyTorchWeights: exists("pytorch_model.bin") || exists("pytorch_model.bin.index.json"))
        }
        (self.files, self.fileOfTensor) = (files, fileOfTensor)
    }

    private static func readJSON(_ path: String) throws -> KeyReader {
        let bytes: [UInt8]
        do { bytes = try readFile(path) } catch { throw ConfigFileError.unreadable(path: path, reason: "\(error)") }
        return try KeyReader(jsonBytes: bytes, source: path)
    }

    /// Every tensor name of the checkpoint, sorted.
    public var tensorNames: [String] { fileOfTensor.keys.sorted() }

    /// Whether the checkpoint has a tensor called `name`.
    public func contains(_ name: String) -> Bool { fileOfTensor[name] != nil }

    /// The dtype and shape of tensor `name` as stored, or nil when the checkpoint has none.
    public func describe(_ name: String) -> (dtype: SafeTensorsDType, shape: [Int])? {
        fileOfTensor[name].flatMap { files[$0]!.describe(name) }
    }

    /// Number of weight files.
    public var fileCount: Int { files.count }

    /// The path of the weight file holding tensor `name`.
    public func filePath(of name: String) -> String? {
        fileOfTensor[name].map { files[$0]!.path }
    }

    /// Tensor `name`, which must have `shape` and a float dtype (F32, F16, BF16 or F64).
    /// - Throws: ``ModelDirectoryError`` naming the tensor and its file.
    public func tensor(_ name: String, shape: [Int]) throws -> StoredTensor {
        guard let fileName = fileOfTensor[name], let weights = files[fileName], let (dtype, actual) = weights.describe(name) else {
            throw ModelDirectoryError.missingTensor(name, directory: path)
        }
        guard dtype.isFloat else { throw ModelDirectoryError.wrongDType(tensor: name, file: weights.path, dtype: dtype.rawValue) }
        guard actual == shape else {
            throw ModelDirectoryError.wrongShape(tensor: name, file: weights.path, expected: shape, actual: actual)
        }
        return weights[name]!
    }
}

/// A model directory that cannot be loaded, naming the file (and tensor) at fault.
public enum ModelDirectoryError: Error, CustomStringConvertible, Equatable {
    case notADirectory(String)
    case missingFile(String)
    case noWeights(String, hasPyTorchWeights: Bool)
    case malformedIndex(String, String)
    case missingShard(String, tensor: String, index: String)
    case tensorNotInShard(tensor: String, shard: String, index: String)
    case missingTensor(String, directory: String)
    case wrongDType(tensor: String, file: String, dtype: String)
    case wrongShape(tensor: String, file: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .notADirectory(path): return "\(path) is not a directory; give the model directory (the one holding config.json)"
        case let .missingFile(path): return "\(path) is missing; a model directory needs it"
        case let .noWeights(path, hasPyTorchWeights):
            return "\(path) has neither \(ModelDirectory.weightsFile) nor \(ModelDirectory.indexFile)"
                + (hasPyTorchWeights ? "; it holds PyTorch .bin weights, which are not read: save the model with safetensors (save_pretrained(..., safe_serialization=True))" : "")
        case let .malformedIndex(path, problem): return "\(path) is malformed: \(problem)"
        case let .missingShard(shard, tensor, index):
            return "\(shard) is missing: \(index) says it holds '\(tensor)'; download the whole model directory again"
        case let .tensorNotInShard(tensor, shard, index):
            return "tensor '\(tensor)' is not in \(shard), where \(index) says it is; the shard or the index is damaged"
        case let .missingTensor(tensor, directory):
            return "tensor '\(tensor)' is missing from the weights in \(directory); the checkpoint does not match its config.json"
        case let .wrongDType(tensor, file, dtype):
            return "tensor '\(tensor)' in \(file) is stored as \(dtype); weights must be F32, F16, BF16 or F64"
        case let .wrongShape(tensor, file, expected, actual):
            return "tensor '\(tensor)' in \(file) has shape \(actual) but config.json implies \(expected)"
        }
    }
}

extension ModelDirectory {
    /// Tensor `name` converted to `Float` (a copy: for the small weights); checked as ``tensor(_:shape:)`` checks it.
    public func floats(_ name: String, shape: [Int]) throws -> Tensor<Float> {
        try tensor(name, shape: shape).tensor()
    }
}
