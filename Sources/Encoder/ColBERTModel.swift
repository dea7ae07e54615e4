import Foundation
import Tensor

/// A ColBERT model without its tokenizer: backbone, Dense head, L2 normalisation, over a backend.
/// Token ids of packed sequences in, one unit vector per token out.
public final class ColBERTModel {
    public let backbone: any TransformerBackbone
    public let head: [DenseLayer]
    public let settings: ColBERTSettings
    public let backend: any Backend

    /// The width of the output vectors (the last Dense layer's, else the backbone's hidden size).
    public var dimension: Int { head.last?.outFeatures ?? backbone.config.hiddenSize }

    /// Loads `config.json`, `model.safetensors`, `modules.json` and the Dense folders it lists
    /// (without `modules.json`, any `N_Dense/` folders in numeric order).
    public init(modelDirectory: URL, backend: any Backend) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EncoderError.missingFile(modelDirectory, hint: "no such model folder")
        }
        self.backend = backend
        let config = try TransformerConfig(contentsOf: modelDirectory.appending(path: "config.json"))
        let weights = try SafeTensorsFile(url: modelDirectory.appending(path: "model.safetensors"))
        switch config.architecture {
        case .bert: backbone = try BERT(config: config, weights: weights, backend: backend)
        case .modernbert: backbone = try ModernBERT(config: config, weights: weights, backend: backend)
        }
        settings = try ColBERTSettings(modelDirectory: modelDirectory)
        head = try Self.denseFolders(in: modelDirectory).map { try DenseLayer(directory: $0, backend: backend) }
        var width = config.hiddenSize
        for (layer, folder) in zip(head, try Self.denseFolders(in: modelDirectory)) {
            guard layer.inFeatures == width else {
                throw EncoderError.invalidFile(folder.appending(path: "config.json"),
                                               reason: "in_features \(layer.inFeatures) does not follow the previous width \(width)")
            }
            width = layer.outFeatures
        }
    }

    static func denseFolders(in directory: URL) throws -> [URL] {
        let modulesURL = directory.appending(path: "modules.json")
        if let modules = try JSONFile.array(at: modulesURL) {
            return try modules.compactMap { entry -> URL? in
                guard let module = entry as? [String: Any], let type = module["type"] as? String else {
                    throw EncoderError.invalidFile(modulesURL, reason: "every entry needs a \"type\"")
                }
                guard type.hasSuffix("Dense") || type.hasSuffix("Dense.Dense") else { return nil }
                guard let path = module["path"] as? String, !path.isEmpty else {
                    throw EncoderError.invalidFile(modulesURL, reason: "Dense module without a \"path\"")
                }
                return directory.appending(path: path)
            }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix("_Dense") && Int($0.prefix(while: \.isNumber)) != nil }
            .sorted { Int($0.prefix(while: \.isNumber))! < Int($1.prefix(while: \.isNumber))! }
            .map { directory.appending(path: $0) }
    }

    /// One matrix of unit vectors per sequence, in input order, computed in packed batches planned by
    /// `batcher`. Rows whose token id is in `dropping` are removed (ColBERT's document skiplist).
    /// On a backend that bounds its activations, a batch larger than its budget runs in several passes.
    public func encode(_ sequences: [[Int32]], dropping skipIDs: Set<Int32> = [],
                       batcher: TokenBudgetBatcher = TokenBudgetBatcher()) throws -> [HostMatrix] {
        var results = [HostMatrix?](repeating: nil, count: sequences.count)
        let width = dimension
        for plan in batcher.plan(lengths: sequences.map(\.count)) {
            for pass in passes(lengths: plan.map { sequences[$0].count }) {
                let members = Array(plan[pass])
                let batch = PackedBatch(sequences: members.map { sequences[$0] })
                let groups = members.indices.map { position in batch.range(of: position).filter { !skipIDs.contains(batch.tokenIDs[$0]) } }
                let vectors = batch.tokenCount > 0
                    ? try backend.download(try embedOnDevice(batch), rowGroups: groups)
                    : groups.map { _ in HostMatrix(rows: 0, cols: width, values: []) }
                for (position, index) in members.enumerated() { results[index] = vectors[position] }
            }
        }
        return results.map { $0! }
    }

    /// Unit vectors for every token of `batch` (`tokenCount × dimension`).
    public func embed(_ batch: PackedBatch) throws -> HostMatrix {
        guard batch.tokenCount > 0 else { return HostMatrix(rows: 0, cols: dimension, values: []) }
        let passes = passes(lengths: (0..<batch.sequenceCount).map { batch.range(of: $0).count })
        if passes.count == 1 { return try backend.download(embedOnDevice(batch)) }
        var values: [Float] = []
        values.reserveCapacity(batch.tokenCount * dimension)
        for pass in passes {
            let part = PackedBatch(sequences: pass.map { Array(batch.tokenIDs[batch.range(of: $0)]) })
            values += try backend.download(embedOnDevice(part)).values
        }
        return HostMatrix(rows: batch.tokenCount, cols: dimension, values: values)
    }

    /// The unit vectors of every sequence of `batch`, in order, without the rows whose token id is in
    /// `dropping`, as one host block (group `s` is sequence `s`): the same values as `encode` returns per
    /// sequence, with no allocation per sequence; on a GPU backend the block is reused pinned memory that
    /// goes back when the block is freed, so drop blocks once read.
    public func embedRows(_ batch: PackedBatch, dropping skipIDs: Set<Int32> = []) throws -> HostRowBlock {
        let groups = (0..<batch.sequenceCount).map { s -> [Int] in
            let range = batch.range(of: s)
            return skipIDs.isEmpty ? Array(range) : range.filter { !skipIDs.contains(batch.tokenIDs[$0]) }
        }
        let width = dimension
        guard batch.tokenCount > 0 else { return HostRowBlock(cols: width, offsets: HostRowBlock.offsets(sizes: groups.map(\.count))) { _ in } }
        let passes = passes(lengths: (0..<batch.sequenceCount).map { batch.range(of: $0).count })
        if passes.count == 1 { return try backend.downloadBlock(embedOnDevice(batch), rowGroups: groups) }
        // A backend that bounds its activations: each pass's block copied into one.
        var parts: [HostRowBlock] = []
        for pass in passes {
            let part = PackedBatch(sequences: pass.map { Array(batch.tokenIDs[batch.range(of: $0)]) })
            let base = batch.range(of: pass.lowerBound).lowerBound
            let partGroups = pass.map { groups[$0].map { $0 - base } }
            parts.append(part.tokenCount == 0
                ? HostRowBlock(cols: width, offsets: HostRowBlock.offsets(sizes: partGroups.map(\.count))) { _ in }
                : try backend.downloadBlock(embedOnDevice(part), rowGroups: partGroups))
        }
        return HostRowBlock(cols: width, offsets: HostRowBlock.offsets(sizes: groups.map(\.count))) { destination in
            var next = destination
            for part in parts {
                next.update(from: part.pointer, count: part.rows * width)
                next += part.rows * width
            }
        }
    }

    /// The most activation bytes per token that one pass holds: the backbone's widest moment, or the head's
    /// (a Dense layer's input and output, then the normalised copy).
    public var activationBytesPerToken: Int {
        var widest = 0, width = backbone.config.hiddenSize
        for layer in head {
            widest = max(widest, width + layer.outFeatures)
            width = layer.outFeatures
        }
        return max(backbone.activationBytesPerToken, MemoryLayout<Float>.stride * max(widest, 2 * width))
    }

    /// Consecutive sequence ranges run as one forward pass each. A backend that bounds its activations
    /// (`BoundedActivationMemory`) gets passes of whole sequences, each within its budget where one sequence
    /// fits it, of even size; other backends (a GPU's memory is sized for the batch) get one pass.
    func passes(lengths: [Int]) -> [Range<Int>] {
        let total = lengths.reduce(0, +)
        guard let bounded = backend as? any BoundedActivationMemory, !lengths.isEmpty else { return [0..<lengths.count] }
        let limit = max(1, bounded.activationBudgetBytes / activationBytesPerToken)
        guard total > limit else { return [0..<lengths.count] }
        let count = (total + limit - 1) / limit, target = (total + count - 1) / count
        var result: [Range<Int>] = [], start = 0, tokens = 0
        for (index, length) in lengths.enumerated() {
            if index > start, tokens + length > target {
                result.append(start..<index)
                start = index
                tokens = 0
            }
            tokens += length
        }
        result.append(start..<lengths.count)
        return result
    }

    /// The unit vectors of a non-empty batch, left on the device.
    func embedOnDevice(_ batch: PackedBatch) throws -> any DeviceMatrix {
        let vocabulary = backbone.config.vocabSize
        if let bad = batch.tokenIDs.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw EncoderError.invalidInput("token id \(bad) is outside the model's vocabulary of \(vocabulary)")
        }
        var x = try backbone.forward(batch)
        for layer in head { x = try layer.apply(x, backend: backend) }
        return try backend.l2Normalize(x)
    }
}
