import Foundation
import Tensor

/// What a build expects to hold once every document is in: the codec trained on its first part is
/// sized for this (K by the reference formula over the planned totals) and the retraining growth rule
/// counts from it, so the build does not retrain (and re-encode everything) as it grows.
public struct CodecPlan: Sendable, Equatable {
    /// Vectors (tokens after pooling) planned in all.
    public var tokens: Int
    /// Documents planned in all.
    public var documents: Int

    public init(tokens: Int, documents: Int) {
        self.tokens = max(0, tokens)
        self.documents = max(0, documents)
    }
}

/// A new index built from documents that arrive in chunks while later ones are still being encoded
/// (a cold build): chunks are held until enough vectors are there to train the codec — a share of the
/// planned vectors, or K × `maxPointsPerCentroid` when that is fewer —, then the index is created from
/// them with K sized for the planned totals (`CodecPlan`), and every later chunk is appended as it comes.
/// Training on the first part lets k-means run while the rest encodes; the quantisation error and the
/// search results stay within what training on everything gives (tests: `StreamedIndexBuildTests`).
///
/// Once the index exists, chunks are appended in groups of at least half the merge ceiling (a sixteenth
/// of the planned build): a 75-chunk build then commits ~20 segments instead of 75. The first
/// `mergeFreeSegments` segments are never merged (a merge rewrites vectors for no change in results);
/// past them, merges rewrite each vector about twice instead of four times. The caller says when the documents added so far must be
/// on disk (`add(_:mustPersist:)`): the product's checkpoints name files as indexed only once their
/// vectors are written.
///
/// With `asynchronousWrites` an append is split in two: `add` validates and encodes a group (assignment and
/// quantisation, the larger half) on the caller's thread with a copy of the codec, then hands it to a
/// write queue of its own (segment write, merges, commit) and returns — so the next group encodes while
/// this one is written. At most one group is being written. Such a caller runs whatever needs the vectors
/// on disk (a checkpoint) through `afterWrites`, and ends with `finishWrites()`.
/// Thread-safety: `add`, `finishWrites` and `index` from one thread at a time (the caller's); the write
/// queue touches the index only while no `add` reads it (the codec copy is taken when no write runs).
public final class StreamedIndexBuilder: @unchecked Sendable {
    public let directory: URL
    public let config: PlaidConfig
    /// Documents the build expects in all (0: unknown, the codec trains when the caller persists).
    public let plannedDocuments: Int
    /// Segments of about equal size a planned build ends with at least (`PlaidIndex.mergeCeiling`).
    public static let segmentsPerBuild = 8
    /// Segments (the training one and one per checkpoint group after it) the build writes before any is
    /// merged (`PlaidIndex.mergeFreeSegments`): a build of up to ~30 checkpoints (~120k units) merges none.
    /// At 16, the large MiniLM set (74,847 units, 22 segments) still spent 1.7 s merging (route-2).
    public static let mergeFreeSegments = 4 * segmentsPerBuild
    /// Share of the planned vectors the codec waits for at most.
    public let trainingShare: Double
    /// The index, once created.
    public private(set) var index: PlaidIndex?
    private var held: [(id: Int64, vectors: HostMatrix)] = []
    private var heldVectors = 0
    /// Documents waiting to be appended together, once the index exists.
    private var pending: [(id: Int64, vectors: HostMatrix)] = []
    private var pendingVectors = 0
    /// Documents and vectors seen so far (held or written), for the projection of the totals.
    private var seenDocuments = 0
    private var seenVectors = 0

    /// Appends are encoded on the caller's thread and written on a queue of their own (see above).
    public let asynchronousWrites: Bool
    /// Called on the write queue after each asynchronous append, with its stages: the encode's on the caller's
    /// thread (named `encode…`; `CodecEncodeTimes.laps`, `encode: gather rows / assign / quantize`, or `… / assign +
    /// pack (device) / norms` where a GPU packs, are parts of the encode lap), then
    /// the write's (`PlaidIndex.writeStages`).
    public var onWritten: (@Sendable ([(stage: String, seconds: Double)]) -> Void)?
    /// Called on the write queue when an asynchronous append fails, before any later `afterWrites` body.
    public var onWriteFailure: (@Sendable (Error) -> Void)?
    private let writes = DispatchQueue(label: "plaid.streamed-build.writes")
    private let writeSlot = DispatchSemaphore(value: 1)
    private let lock = NSLock()
    private var writeError: Error?
    /// The codec groups are encoded with, and its file name (refreshed after a write that retrained).
    private var encodingCodec: (codec: ResidualCodec, name: String)?
    /// The assigner of `encodingCodec` (its packed centroid panels), made once per codec rather than per group.
    private var encodingAssigner: (name: String, assigner: CentroidAssigner)?
    /// The codec encode's staging buffer, reused by every group (the caller's thread only).
    private let encodeStaging = PlaidIndex.EncodeStaging()

    public init(directory: URL, config: PlaidConfig, plannedDocuments: Int, trainingShare: Double = 0.5,
                asynchronousWrites: Bool = false) {
        self.directory = directory
        self.config = config
        self.plannedDocuments = max(0, plannedDocuments)
        self.trainingShare = min(1, max(0, trainingShare))
        self.asynchronousWrites = asynchronousWrites
    }

    /// Runs `body` on the write queue once every append handed over so far is written (at once in order
    /// behind them; right away without asynchronous writes).
    public func afterWrites(_ body: @escaping @Sendable () -> Void) {
        if asynchronousWrites { writes.async(execute: body) } else { body() }
    }

    /// Waits for every append handed over; throws the first write error.
    public func finishWrites() throws {
        writes.sync {}
        try rethrowWriteError()
    }

    private func rethrowWriteError() throws {
        lock.lock()
        defer { lock.unlock() }
        if let writeError { throw writeError }
    }

    /// Encodes `group` on this thread and hands it to the write queue (waiting while the group before is
    /// still being written).
    private func appendAsynchronously(_ group: [(id: Int64, vectors: HostMatrix)], to index: PlaidIndex, backend: (any Backend)?) throws {
        try rethrowWriteError()
        var stages = StageClock()
        guard let codec = lock.withLock({ encodingCodec }) else { throw PlaidError.invalidInput("no codec to encode with") }
        // The codec's width, not the index's manifest: a write may be updating that one now.
        try PlaidIndex.validate(group, dim: codec.codec.dim, existing: nil)
        stages.lap("encode: validate")
        var times = CodecEncodeTimes()
        if encodingAssigner?.name != codec.name { encodingAssigner = (codec.name, codec.codec.makeAssigner()) }
        let encoded = PlaidIndex.EncodedAppend(codecName: codec.name, encoded: PlaidIndex.encode(group, codec: codec.codec, backend: backend,
                                                                                                assigner: encodingAssigner?.assigner,
                                                                                                staging: encodeStaging, times: &times))
        stages.lap("encode (assign + quantize, beside the previous write)")
        // The encode's parts (what bounds this lane when it bounds the build): rows gathered into one buffer,
        // bulk assignment on the backend (and packing, where the device packs), quantisation or norms on the CPU.
        let encodeLaps = stages.laps + times.laps
        writeSlot.wait()
        // The write uses the backend only to retrain or re-encode (a codec changed in between); backends
        // already serve the encoder and the codec from several threads at once.
        let backend = UncheckedBackend(backend: backend)
        writes.async { [self] in
            defer { writeSlot.signal() }
            if lock.withLock({ writeError != nil }) { return }
            var stages = StageClock()
            do {
                try index.write(group, encoded: encoded, backend: backend.backend, stages: &stages)
                if index.codecForEncoding.name != codec.name { lock.withLock { encodingCodec = index.codecForEncoding } }
                onWritten?(encodeLaps + index.writeStages)
            } catch {
                lock.withLock { writeError = error }
                onWriteFailure?(error)
            }
        }
    }

    /// The totals projected from what has been seen: the planned documents at the vectors per document
    /// seen so far.
    public var projectedPlan: CodecPlan {
        let documents = max(plannedDocuments, seenDocuments)
        guard seenDocuments > 0 else { return CodecPlan(tokens: 0, documents: documents) }
        let tokens = Int((Double(seenVectors) * Double(documents) / Double(seenDocuments)).rounded())
        return CodecPlan(tokens: max(tokens, seenVectors), documents: documents)
    }

    /// Vectors the codec trains on once they are held: a `trainingShare` of the projected vectors, or
    /// fewer when K × `maxPointsPerCentroid` is reached first (more would not change the centroids).
    public var trainingTarget: Int {
        let plan = projectedPlan
        let k = min(PlaidConfig.centroidCount(trainingTokens: plan.tokens, trainingDocuments: max(1, plan.documents)),
                    max(1, config.maxCentroids))
        let enough = k * max(1, config.maxPointsPerCentroid)
        return max(1, min(enough, Int((Double(plan.tokens) * trainingShare).rounded(.up))))
    }

    /// Adds documents: held until the codec can train, appended once the index exists. With
    /// `mustPersist` everything added so far is on disk when this returns — with asynchronous writes, when
    /// the writes it handed over end (`afterWrites`) — and the codec trains on what is held if it has not
    /// yet. Returns what was done, for the caller's profile.
    @discardableResult
    public func add(_ documents: [(id: Int64, vectors: HostMatrix)], mustPersist: Bool, backend: (any Backend)?) throws -> Step {
        seenDocuments += documents.count
        seenVectors += documents.reduce(0) { $0 + $1.vectors.rows }
        if let index {
            pending.append(contentsOf: documents)
            pendingVectors += documents.reduce(0) { $0 + $1.vectors.rows }
            guard !pending.isEmpty, mustPersist || pendingVectors >= (index.mergeCeiling ?? 0) / 2 else { return .held }
            let group = pending
            pending = []
            pendingVectors = 0
            if asynchronousWrites {
                try appendAsynchronously(group, to: index, backend: backend)
            } else {
                try index.append(group, backend: backend)
            }
            return .appended
        }
        held.append(contentsOf: documents)
        heldVectors += documents.reduce(0) { $0 + $1.vectors.rows }
        guard !held.isEmpty, mustPersist || heldVectors >= trainingTarget else { return .held }
        let plan = plannedDocuments > 0 ? projectedPlan : nil
        let created = try PlaidIndex.create(at: directory, documents: held, config: config, backend: backend, plan: plan)
        if let plan { created.mergeCeiling = max(created.tokensAtTraining, plan.tokens) / Self.segmentsPerBuild }
        created.mergeFreeSegments = Self.mergeFreeSegments
        lock.withLock { encodingCodec = created.codecForEncoding }
        index = created
        held = []
        heldVectors = 0
        return .created
    }

    /// What one `add` did.
    public enum Step: Sendable, Equatable {
        /// Kept in memory until the codec trains, or until enough are there to append together.
        case held
        /// The codec trained and the index was created with every held document.
        case created
        /// Appended to the existing index (with any held since the last append).
        case appended
    }
}

/// A backend handed to the streamed build's write queue.
private struct UncheckedBackend: @unchecked Sendable {
    let backend: (any Backend)?
}

extension PlaidIndex {
    /// Mean cosine between each of `vectors` and its reconstruction through this index's codec
    /// (nearest centroid + quantised residual, as a write stores it): the quantisation error of the
    /// codec on those vectors (1 = lossless).
    public func reconstructionCosine(_ vectors: HostMatrix) throws -> Double {
        guard vectors.cols == dimension, vectors.rows > 0 else {
            throw PlaidError.invalidInput("reconstructionCosine needs \(dimension)-d vectors, got \(vectors.rows) × \(vectors.cols)")
        }
        let n = vectors.rows, dim = vectors.cols, bytes = codec.bytesPerToken
        let (codes, packed) = vectors.values.withUnsafeBufferPointer { codec.encode($0.baseAddress!, count: n, backend: nil) }
        var total = 0.0
        packed.withUnsafeBufferPointer { p in
            vectors.values.withUnsafeBufferPointer { v in
                for i in 0..<n {
                    let decoded = codec.decode(code: Int(codes[i]), packed: p.baseAddress! + i * bytes)
                    let x = v.baseAddress! + i * dim
                    let norm = LinearAlgebra.dot(x, x, count: dim).squareRoot()
                    let dot = decoded.withUnsafeBufferPointer { LinearAlgebra.dot(x, $0.baseAddress!, count: dim) }
                    total += norm > 0 ? Double(dot / norm) : 0
                }
            }
        }
        return total / Double(n)
    }
}
