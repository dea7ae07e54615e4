import Foundation
import Tensor

/// Uploads a checkpoint's tensors to a backend by their names relative to the backbone, whatever prefix
/// the checkpoint uses (`model.` for *ForMaskedLM, `bert.`, none for a bare *Model).
struct WeightLoader {
    let file: SafeTensorsFile
    let backend: any Backend
    let prefix: String

    /// `anchor` is a tensor every checkpoint of the architecture has (e.g. the token embeddings).
    init(file: SafeTensorsFile, backend: any Backend, anchor: String) throws {
        self.file = file
        self.backend = backend
        guard let name = file.names.first(where: { $0 == anchor || $0.hasSuffix("." + anchor) }) else {
            throw EncoderError.invalidFile(file.url, reason: "no tensor named \(anchor): these weights do not belong to config.json's architecture")
        }
        prefix = String(name.dropLast(anchor.count))
    }

    func has(_ name: String) -> Bool { file.entries[prefix + name] != nil }

    func host(_ name: String, _ shape: [Int]) throws -> HostMatrix { try file.matrix(prefix + name, shape: shape) }

    /// The tensor on the backend. On a backend that computes in host memory (the CPU), F32 tensors
    /// are used where they lie in the memory-mapped file: no copy at load time, pages read on first
    /// use (a query touches only the embedding rows it gathers). Other dtypes are converted.
    func load(_ name: String, _ shape: [Int]) throws -> any DeviceMatrix {
        if let borrowing = backend as? any HostBorrowingBackend, let mapped = try file.mappedFloats(prefix + name, shape: shape) {
            return try borrowing.uploadBorrowing(mapped.values, rows: mapped.rows, cols: mapped.cols, owner: file)
        }
        return try backend.upload(host(name, shape))
    }

    /// A bias that exists only when the config says so.
    func optional(_ name: String, _ shape: [Int], present: Bool) throws -> (any DeviceMatrix)? {
        present ? try load(name, shape) : nil
    }
}

/// A transformer backbone over a backend: token ids of a packed batch in, one hidden row per token out.
public protocol TransformerBackbone: AnyObject {
    var config: TransformerConfig { get }
    func forward(_ batch: PackedBatch) throws -> any DeviceMatrix
    /// The most activation bytes `forward` holds at once per token of the batch (its widest moment), so a
    /// caller can size passes to a memory budget. Attention's per-thread scratch (bounded by the longest
    /// sequence, not the batch) is not included.
    var activationBytesPerToken: Int { get }
}
