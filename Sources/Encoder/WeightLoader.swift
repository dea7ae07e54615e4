import Foundation
import Tensor

/// Uploads a checkpoint's tensors to a backend by their names relative to the backbone, whatever prefix
/// the checkpoint uses (`model.` for *ForMaskedLM, `bert.`, none for a bare *Model).
struct WeightLoader {
    let file: SafeTensorsFile
    let backend: any Backend
    let prefix: String
    /// Where matrices built at load time (`concatenated`) are kept for the next process; nil: none.
    let cache: FusedWeightCache?

    /// `anchor` is a tensor every checkpoint of the architecture has (e.g. the token embeddings).
    init(file: SafeTensorsFile, backend: any Backend, anchor: String, cache: FusedWeightCache? = nil) throws {
        self.file = file
        self.backend = backend
        self.cache = cache
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

    /// Tensors laid end to end in one matrix: BERT's Q, K and V weights (`[h, h]` each) fused into one
    /// `3h × h` projection, or their biases (`[h]` each) into one `1 × 3h` row (`asRow`). `addRow`, when
    /// given, is added to every row (a bias row folded into a table). On the CPU the values are copied once,
    /// from the mapped file straight into the backend's matrix, and (without `addRow`) kept in `cache`:
    /// a later load maps that file instead of copying. Other backends get an uploaded copy.
    func concatenated(_ parts: [(name: String, shape: [Int])], cols: Int, asRow: Bool = false, addRow: [Float]? = nil) throws -> any DeviceMatrix {
        let total = parts.reduce(0) { $0 + $1.shape.reduce(1, *) }
        guard total % cols == 0, addRow.map({ $0.count == cols }) ?? true else {
            throw EncoderError.invalidFile(file.url, reason: "\(parts.map(\.name)) do not make rows of \(cols) values")
        }
        let fill = { (destination: UnsafeMutablePointer<Float>) throws in
            var next = destination
            for part in parts {
                let count = part.shape.reduce(1, *)
                if let mapped = try file.mappedFloats(prefix + part.name, shape: part.shape) {
                    next.update(from: mapped.values, count: count)
                } else {
                    try host(part.name, part.shape).values.withUnsafeBufferPointer { next.update(from: $0.baseAddress!, count: count) }
                }
                next += count
            }
            if let addRow {
                for start in stride(from: 0, to: total, by: cols) {
                    for column in 0..<cols { destination[start + column] += addRow[column] }
                }
            }
        }
        let rows = asRow ? 1 : total / cols, width = asRow ? total : cols
        if let borrowing = backend as? any HostBorrowingBackend {
            let key = addRow == nil ? cache.flatMap { _ in FusedWeightCache.Key(model: file.url, names: parts.map { prefix + $0.name }, count: total) } : nil
            if let key, let mapped = cache?.load(key) {
                return try borrowing.uploadBorrowing(mapped.values, rows: rows, cols: width, owner: mapped)
            }
            if backend is CPUBackend {
                let matrix = CPUMatrix(rows: rows, cols: width)
                try fill(matrix.pointer)
                if let key { cache?.store(UnsafeBufferPointer(start: matrix.pointer, count: total), for: key) }
                return matrix
            }
        }
        let values = try [Float](unsafeUninitializedCapacity: total) { buffer, initialized in
            try fill(buffer.baseAddress!)
            initialized = total
        }
        return try backend.upload(HostMatrix(rows: rows, cols: width, values: values))
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
