import CodeUnits
import Foundation
import Plaid
import Store
import Tensor

/// One indexing stage run alone over a whole corpus (`colgrep bench index-stages`).
public struct IndexStageTiming: Sendable, Equatable {
    /// The stage's name, as the profile (`COLGREP_PROFILE`) names it.
    public var stage: String
    /// The pipeline lane that runs the stage (`before`: ahead of the streamed part; `rows`, `prepare`,
    /// `encode`, `pool`, `vectors`, `store`: the streamed part's threads, which run side by side).
    public var lane: String
    public var seconds: Double
    /// User + system CPU seconds of the whole process while the stage ran.
    public var cpuSeconds: Double
    public var units: Int
    /// Tokens it handled (0 for stages that see units, not tokens).
    public var tokens: Int
}

/// Every CPU stage of a cold index measured alone, in the order the pipeline runs them and with the
/// same code (the indexer's walk and parse, `EncodePipeline`'s embedding texts, pooling and writers,
/// the model's tokenizer and encoder with the same routing), so that each stage's in-pipeline rate can
/// be set against its own. Nothing is written outside `scratch`.
public enum IndexStageBenchmark {
    /// The streamed lanes: they run side by side, so a cold index should take about the time of the
    /// stages before them plus that of the slowest lane.
    public static let streamedLanes = ["rows", "prepare", "encode", "pool", "vectors", "store"]

    /// The fallback model's `tokenizer.json` (a BERT WordPiece tokenizer), for synthetic models.
    public static func fallbackTokenizer() -> URL? {
        ModelRuntime.fallbackModelDirectory().map { $0.appendingPathComponent("tokenizer.json") }
            .flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }
    }

    /// Runs each stage of indexing `root` alone with `options` (model, pool factor, chunk size,
    /// acceleration); index files go to `scratch`, which is removed afterwards.
    public static func measureStages(root: String, options: IndexOptions, config: ColGrepConfig, scratch: URL) throws -> [IndexStageTiming] {
        let fm = FileManager.default
        try? fm.removeItem(at: scratch)
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }
        let layout = IndexLayout(directory: scratch)
        let model = ModelRuntime(modelID: options.model, acceleration: options.acceleration)
        let indexer = ProjectIndexer(root: root, layout: layout, options: options, config: config, model: model, progress: .silent)
        var timings: [IndexStageTiming] = []
        func timed<T>(_ stage: String, lane: String, _ body: () throws -> (T, units: Int, tokens: Int)) rethrows -> T {
            let cpu0 = ProcessCPU.seconds(), t0 = ProfileClock.now()
            let (value, units, tokens) = try body()
            timings.append(IndexStageTiming(stage: stage, lane: lane, seconds: ProfileClock.seconds(since: t0),
                                            cpuSeconds: ProcessCPU.seconds() - cpu0, units: units, tokens: tokens))
            return value
        }

        let walked = try timed("walk", lane: "before") { let w = try indexer.walk(); return (w, w.count, 0) }
        let paths = walked.map(\.relativePath).sorted()
        // Reading every file once first keeps the page cache out of the parse figure, as in a real
        // index build, where hashing the new files has read them just before.
        for path in paths { _ = fm.contents(atPath: (root as NSString).appendingPathComponent(path)) }
        var unitsByFile = try timed("parse", lane: "before") {
            let parsed = try indexer.parse(paths)
            return (parsed, parsed.values.reduce(0) { $0 + $1.count }, 0)
        }
        let store = try MetadataStore(path: layout.metadataFile, readOnly: false)
        try timed("call graph", lane: "before") {
            try indexer.resolveCallGraph(&unitsByFile, store: store)
            return ((), unitsByFile.values.reduce(0) { $0 + $1.count }, 0)
        }

        // Chunks in the pipeline's order and sizes: checkpoint batches, then chunks within each.
        let plannedUnits = unitsByFile.values.reduce(0) { $0 + $1.count }
        let chunkSize = EncodePipeline.chunkSize(configured: options.chunkSize, plannedUnits: plannedUnits)
        var chunks: [[CodeUnit]] = []
        var closesBatch: [Bool] = []
        for batch in indexer.checkpointBatches(paths, unitsByFile: unitsByFile) {
            let units = batch.flatMap { unitsByFile[$0] ?? [] }
            let parts = EncodePipeline.chunkPositions(count: units.count, chunkSize: chunkSize)
            for (n, positions) in parts.enumerated() {
                chunks.append(positions.map { units[$0] })
                closesBatch.append(n == parts.count - 1)
            }
        }
        unitsByFile = [:]
        let unitCount = chunks.reduce(0) { $0 + $1.count }
        let sizes = walked.map { Int($0.size) }
        model.prepareIndexing(fileBytes: sizes)
        defer { model.finishIndexing() }
        _ = try model.load()

        let texts = timed("embedding text", lane: "prepare") {
            (chunks.map { EncodePipeline.embeddingTexts($0) }, unitCount, 0)
        }
        let tokens = try timed("tokenize", lane: "prepare") {
            let ids = try texts.map { try model.tokenizeDocuments($0.texts) }
            return (ids, unitCount, ids.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } })
        }
        let tokenCount = tokens.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
        // Encode and pool alternate chunk by chunk (only pooled vectors are kept), each timed alone.
        let pipeline = EncodePipeline(options: options, model: model, progress: .silent, store: store,
                                      vectorDirectory: layout.vectorDirectory, plaid: nil)
        var encodeSeconds = 0.0, encodeCPU = 0.0, poolSeconds = 0.0, poolCPU = 0.0, pooledRows = 0
        var pooled: [[HostMatrix]] = []
        // A GPU's first batch in a process waits for its cold start, which a cold init hides behind the parse:
        // one untimed pass first, so that "encode alone" is the encoder's own speed. (Without it, GPUs 1–3's
        // cold starts of 0.24–0.31 s each made "encode" the slowest lane on 2 and 4 GPUs of the 4 × H200 host,
        // where the store lane bounds the init; docs/PERFORMANCE.md, session 17.)
        if options.acceleration != .forceCPU && GPUInventory.current().count > 0 {
            for ids in tokens { _ = try model.encodeDocuments(prepared: ids) }
        }
        for (n, ids) in tokens.enumerated() {
            var cpu0 = ProcessCPU.seconds(), t0 = ProfileClock.now()
            let encoded = try model.encodeDocuments(prepared: ids)
            encodeSeconds += ProfileClock.seconds(since: t0)
            encodeCPU += ProcessCPU.seconds() - cpu0
            cpu0 = ProcessCPU.seconds()
            t0 = ProfileClock.now()
            let vectors = pipeline.pool(encoded)
            poolSeconds += ProfileClock.seconds(since: t0)
            poolCPU += ProcessCPU.seconds() - cpu0
            pooledRows += vectors.reduce(0) { $0 + $1.rows }
            pooled.append(texts[n].mapping.map { vectors[$0] })
        }
        timings.append(IndexStageTiming(stage: "encode", lane: "encode", seconds: encodeSeconds, cpuSeconds: encodeCPU,
                                        units: unitCount, tokens: tokenCount))
        timings.append(IndexStageTiming(stage: "pool", lane: "pool", seconds: poolSeconds, cpuSeconds: poolCPU,
                                        units: unitCount, tokens: tokenCount))

        var nextID: Int64 = 0
        var idsOfChunk: [[Int64]] = []
        for chunk in chunks {
            idsOfChunk.append((0..<chunk.count).map { nextID + Int64($0) })
            nextID += Int64(chunk.count)
        }
        let pooledOfChunk = { (n: Int) in pooled[n].reduce(0) { $0 + $1.rows } }
        // As in the pipeline: the chunks the codec trains on (held until enough are there), then appends.
        pipeline.plannedUnits = unitCount
        var trained = 0
        try timed("k-means + codec + index create", lane: "vectors") {
            while pipeline.plaid == nil && trained < chunks.count {
                try pipeline.writeVectors(ids: idsOfChunk[trained], vectors: pooled[trained], mustPersist: closesBatch[trained])
                trained += 1
            }
            let units = chunks[..<trained].reduce(0) { $0 + $1.count }
            return ((), units, (0..<trained).reduce(0) { $0 + pooledOfChunk($1) })
        }
        try timed("codec + index append", lane: "vectors") {
            for n in chunks.indices.dropFirst(trained) {
                try pipeline.writeVectors(ids: idsOfChunk[n], vectors: pooled[n], mustPersist: closesBatch[n])
            }
            try pipeline.finishVectorWrites()
            let units = chunks[..<trained].reduce(0) { $0 + $1.count }
            return ((), unitCount - units, pooledRows - (0..<trained).reduce(0) { $0 + pooledOfChunk($1) })
        }
        let rows = timed("store rows", lane: "rows") {
            (chunks.indices.map { EncodePipeline.storeRows(units: chunks[$0], ids: idsOfChunk[$0]) }, unitCount, 0)
        }
        try timed("store", lane: "store") {
            // Through the pipeline's own store lane (its queue bound, groups and keyword rows queued ahead),
            // fed as fast as it takes them.
            try pipeline.writeRowsThroughTheStoreLane(chunks.indices.map { (rows[$0], closesBatch[$0] || $0 == chunks.count - 1) })
            return ((), unitCount, 0)
        }
        // The store's background checkpoints end before the scratch folder goes (untimed, as a build's last checkpoint
        // is not part of the store lane alone): a passive one still running reopens its files while `removeItem` empties
        // the folder, which then stays (a test saw it once, session 28).
        store.finishCheckpoints()
        return timings
    }

    /// What a cold `colgrep init` of `root` cost: wall and CPU seconds, and the busy seconds of every
    /// profiled stage during it (the profile must be enabled: `Profiler.shared.isEnabled`).
    public struct ColdIndex: Sendable {
        public var seconds: Double
        public var cpuSeconds: Double
        public var summary: IndexSummary
        /// Stage name (with `[device]` where the stage runs per device) → busy seconds and tokens.
        public var stages: [ProfileStage]
    }

    /// A cold `colgrep init` of `root` into the empty data folder `dataDirectory` (removed afterwards).
    public static func coldIndex(root: String, options: IndexOptions, dataDirectory: URL) throws -> ColdIndex {
        let fm = FileManager.default
        try? fm.removeItem(at: dataDirectory)
        defer { try? fm.removeItem(at: dataDirectory) }
        let engine = try Engine(paths: DataPaths(root: dataDirectory))
        let before = Profiler.shared.snapshot()
        let cpu0 = ProcessCPU.seconds(), t0 = ProfileClock.now()
        let summary = try engine.index(root: root, options: options, progress: .silent)
        let seconds = ProfileClock.seconds(since: t0), cpu = ProcessCPU.seconds() - cpu0
        let after = Profiler.shared.snapshot()
        let earlier = Dictionary(before.map { ($0.label, $0) }, uniquingKeysWith: { a, _ in a })
        let stages = after.compactMap { stage -> ProfileStage? in
            var delta = stage
            if let old = earlier[stage.label] {
                delta.calls -= old.calls
                delta.seconds -= old.seconds
                delta.tokens -= old.tokens
                delta.batches -= old.batches
            }
            return delta.calls > 0 ? delta : nil
        }
        return ColdIndex(seconds: seconds, cpuSeconds: cpu, summary: summary, stages: stages)
    }
}
