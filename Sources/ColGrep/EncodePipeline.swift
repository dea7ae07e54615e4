import CodeUnits
import CXXHash
import Foundation
import Plaid
import Store
import Tensor

/// The tokenize → encode → pool → write part of indexing, streamed over every checkpoint batch of a
/// run as one bounded pipeline of chunks:
///
/// - a row thread cuts each batch into chunks, prepares their metadata rows (keyword texts and JSON
///   columns, on every core: `PreparedRecords`) and queues them on the store writer, which inserts them
///   into SQLite — rows need no model and no vectors, so this lane starts at once, while the model is
///   still loading, and runs up to `rowsAhead` chunks ahead of the tokenizer (up to
///   `rowsAheadWhileTheModelLoads` before the first chunk is tokenized); with keyword shards the store
///   starts on a queued chunk's keyword rows at once, behind the write in progress (`queueAhead`);
/// - a preparing thread builds each chunk's embedding texts (on every core) and tokenizes them,
///   running up to `preparedAhead` chunks ahead of the encoder, across batch boundaries;
/// - the calling thread submits chunks to the encoder, up to `encodesInFlight` at once (the first on
///   itself), and a hand-off queue passes them on in order;
/// - a pooling queue pools each encoded chunk (on every core) and hands it to a serial writer queue that
///   compresses it into the vector index — in a new index, encoding a group there while the streamed
///   build's own queue writes and merges the group before (the two files are independent, and
///   `reconcile` drops ids a crash left on one side only);
/// - once both writers hold every chunk of a batch, its checkpoint (the state file naming its files as
///   indexed) is saved on a checkpoint queue, in batch order.
///
/// No stage waits for a batch to drain before the next starts (the session 3 pipeline did, at each
/// of the ~8 checkpoints of a 30k-unit build, which left its stages mostly taking turns). Memory stays
/// flat: at most `rowsAhead` chunks of rows, `preparedAhead` tokenized chunks, two encoded chunks for the
/// pooler and 256 MiB of pooled vectors for the vector writer (`WriterBacklog`) are held, whatever the
/// run's size.
final class EncodePipeline: @unchecked Sendable {
    /// One checkpoint batch: whole files, their units in order and the ids they get.
    struct Batch {
        var units: [CodeUnit]
        var ids: [Int64]
    }

    private let options: IndexOptions
    private let model: ModelRuntime
    private let progress: Progress
    private let store: MetadataStore
    private let vectorDirectory: URL
    private(set) var plaid: PlaidIndex?
    private let writer = DispatchQueue(label: "colgrep.index.writer")
    private let storeWriter = DispatchQueue(label: "colgrep.index.store-writer")
    private let checkpoints = DispatchQueue(label: "colgrep.index.checkpoint")
    /// Counts each batch's checkpoint as it is queued (in batch order) before passing it to `checkpoints`,
    /// so that a checkpoint knows whether a later one is already waiting behind it.
    private let checkpointGate = DispatchQueue(label: "colgrep.index.checkpoint-gate")
    /// Checkpoints queued on `checkpoints` and not yet started.
    private let checkpointsWaiting = LockedValue(0)
    /// `run`'s two checkpoint closures: each batch's record, and the write of what was recorded.
    private struct Checkpointing: Sendable {
        let record: @Sendable (Int) throws -> Void
        let persist: @Sendable () throws -> Void
    }
    private let pooler = DispatchQueue(label: "colgrep.index.pool")
    private let poolSlots = DispatchSemaphore(value: 2)
    /// Chunks between the start of their encode and their hand-off to the pooler, in order.
    private let handoff = DispatchQueue(label: "colgrep.index.handoff")
    private let encodeSlots = DispatchSemaphore(value: EncodePipeline.encodesInFlight)
    /// Pooled chunks waiting for the vector writer (`WriterBacklog.forPooledVectors`).
    private let vectorBacklog = WriterBacklog.forPooledVectors()
    private let storeSlots = DispatchSemaphore(value: EncodePipeline.rowsAhead)
    /// Chunks of rows queued for the store writer, oldest first, with whether each closes its batch.
    private let waitingRows = LockedValue<[(rows: PreparedRecords, closesBatch: Bool)]>([])
    private let errorLock = NSLock()
    private var firstError: Error?
    /// Store rows only, no encoding and no vectors (`IndexOptions.keywordOnly`).
    private let keywordOnly: Bool
    /// Encodes one chunk's token ids; once the stop closure says so it starts no further batch and throws
    /// `ColGrepError.interrupted`. The model's router, unless a test gives an encoder it can watch.
    typealias ChunkEncoder = (_ tokens: [[Int32]], _ shouldStop: @escaping @Sendable () -> Bool) throws -> [HostMatrix]
    private let encodeChunk: ChunkEncoder
    /// A chunk's encode was cancelled by a stop: it and every chunk after it are dropped, so no batch they
    /// belong to is checkpointed (read and set on the hand-off queue only).
    private var droppingAfterStop = false
    /// Prepared chunks waiting for the encoder at most (each holds one chunk's token ids).
    /// `COLGREP_PREPARED_AHEAD` overrides it, for measuring.
    static let preparedAhead = tuning("COLGREP_PREPARED_AHEAD", default: 2, maximum: 64)
    /// Chunks encoding at once: the encode scheduler works them oldest first, so a lane with no batch
    /// left in one chunk takes the next one's instead of idling until the chunk's slowest batch ends
    /// (a ~1,000-unit chunk is ~4 batches of a GPU's budget: on four GPUs with two lanes each, one chunk
    /// at a time kept two GPUs nearly idle; docs/PERFORMANCE.md, session 14). `COLGREP_ENCODES_IN_FLIGHT`
    /// overrides it, for measuring (1: one chunk at a time, as before).
    static let encodesInFlight = tuning("COLGREP_ENCODES_IN_FLIGHT", default: 2, maximum: 8)
    /// Chunks whose rows may be queued on the store writer ahead of the tokenizer (and ahead of the
    /// model load, which takes ~0.5 s next to a GPU: several chunks of store work). With keyword shards
    /// the store starts on each queued chunk's keyword rows at once (`MetadataStore.queueAhead`), so room
    /// for more lets its shard threads work further ahead: on 2 × H200 with 32 cores a user's init of a
    /// 113k-unit corpus took a median 4.84 s with 16 against 5.13 s with 8 (six rounds each;
    /// docs/PERFORMANCE.md, session 21; without that lookahead, 32 had gained nothing in session 19).
    /// `COLGREP_ROWS_AHEAD` overrides it, for measuring.
    static let rowsAhead = tuning("COLGREP_ROWS_AHEAD", default: 16, maximum: 256)

    /// A queue bound from the environment variable `name` (1…`maximum`), else `value`.
    private static func tuning(_ name: String, default value: Int, maximum: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }.map { min(max(1, $0), maximum) } ?? value
    }
    /// Chunks the row thread may hand the tokenizer ahead while the model loads. A user's cold index on the
    /// four-GPU machine spent 0.65–0.9 s probing the GPUs before its first tokenized chunk; with `rowsAhead`
    /// chunks of room the row thread, and so the store lane, stood still after eight chunks until then
    /// (docs/PERFORMANCE.md, session 18). The chunks only hold units that are in memory already.
    static let rowsAheadWhileTheModelLoads = 64
    /// Fewest units per chunk when a run is split finer than `IndexOptions.chunkSize` (below this the
    /// encoder's batches get ragged).
    static let minimumChunk = 128
    /// Chunks a run of at most one chunk is split into at least, so that tokenizing the first is short,
    /// pooling and the codec overlap the encoding of the next, and the codec trains mid-run.
    static let chunksPerSmallRun = 4
    /// The new index of a run that started without one: its codec trained on the first part of the run
    /// while the rest encodes, the rest appended through it (nil for an update of an existing index).
    private var builder: StreamedIndexBuilder?
    /// Units the run will encode in all (0: unknown), for the size of the chunks and of the codec.
    var plannedUnits = 0

    init(options: IndexOptions, model: ModelRuntime, progress: Progress, store: MetadataStore, vectorDirectory: URL,
         plaid: PlaidIndex?, keywordOnly: Bool = false, encodeChunk: ChunkEncoder? = nil) {
        self.options = options
        self.model = model
        self.encodeChunk = encodeChunk ?? { [model] tokens, shouldStop in try model.encodeDocuments(prepared: tokens, shouldStop: shouldStop) }
        self.progress = progress
        self.store = store
        self.vectorDirectory = vectorDirectory
        self.plaid = plaid
        self.keywordOnly = keywordOnly
    }

    convenience init(indexer: ProjectIndexer, store: MetadataStore, plaid: PlaidIndex?, keywordOnly: Bool = false) {
        self.init(options: indexer.options, model: indexer.model, progress: indexer.progress, store: store,
                  vectorDirectory: indexer.layout.vectorDirectory, plaid: plaid, keywordOnly: keywordOnly)
    }

    /// A chunk ready for the encoder: its units, ids, the token ids of its distinct embedding texts,
    /// for each unit the index of its text among them, and whether it closes batch `batch`.
    private struct PreparedChunk {
        var batch: Int
        var closesBatch: Bool
        var units: [CodeUnit]
        var ids: [Int64]
        var tokens: [[Int32]]
        var mapping: [Int]
    }

    /// Streams batches `0..<batchCount` (each built by `batch(i)` when the preparer reaches it) through
    /// the pipeline; `checkpoint(i)` runs once batch `i` and every earlier one is on disk (in order, on
    /// one queue). Every stage asks `shouldStop()` before its next chunk, and the chunks already encoding
    /// (at most `encodesInFlight`) before each of their encoder batches: a stop lets only the encoder batches
    /// already on a device finish, and drops every chunk not yet encoded, so the batches they belong to are
    /// not checkpointed and the next run redoes them, as after a kill. (Letting every started batch finish
    /// kept a Ctrl-C waiting 4–6 minutes on a 2-core CPU: up to ~20 queued chunks still to encode; letting
    /// the chunks in the encoder finish, ~30 s; session 18.)
    /// `persist()` then writes what the checkpoints recorded, after a checkpoint that no later one is waiting
    /// behind: when the store lane bounds a run, the last ~20 batches' checkpoints queue up at its end, and
    /// each had rewritten and synced the whole state file (5–45 ms each: 0.21 s at the end of a 113k-unit
    /// build, docs/PERFORMANCE.md, session 20); the last of them writes the same state once.
    /// Returns when everything handed on is on disk and checkpointed, and throws the first error of any
    /// stage (no checkpoint runs after an error).
    /// `plannedUnits` (the units of every batch together, 0 if unknown) sizes the chunks of a small run
    /// and the codec of a new index (K for the whole run, trained on its first part).
    func run(batchCount: Int, plannedUnits: Int = 0, batch: @escaping @Sendable (Int) -> Batch,
             checkpoint: @escaping @Sendable (Int) throws -> Void, persist: @escaping @Sendable () throws -> Void = {},
             shouldStop: @escaping @Sendable () -> Bool) throws {
        guard batchCount > 0 else { return }
        let checkpointing = Checkpointing(record: checkpoint, persist: persist)
        self.plannedUnits = max(0, plannedUnits)
        // The model loads on the tokenizing thread (its first `tokenizeDocuments` waits for it), while the
        // row thread already feeds the store writer.
        // Until the model is loaded the row thread may run far ahead of the tokenizer, so that the store
        // lane goes on writing meanwhile; then the usual bound holds (it bounds what a stop must still encode).
        let rowChannel = BoundedChannel<RowChunk>(capacity: max(Self.rowsAheadWhileTheModelLoads, Self.rowsAhead))
        let channel = BoundedChannel<Result<PreparedChunk, Error>>(capacity: Self.preparedAhead)
        let rowsDone = DispatchSemaphore(value: 0)
        let producerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            defer {
                rowChannel.close()
                rowsDone.signal()
            }
            let chunk = Self.chunkSize(configured: options.chunkSize, plannedUnits: plannedUnits)
            for b in 0..<batchCount {
                if shouldStop() || failed { return }
                let work = batch(b)
                let parts = Self.chunkPositions(count: work.units.count, chunkSize: chunk)
                let idsOfPart = Self.chunkIDs(batchIDs: work.ids, chunkSizes: parts.map(\.count))
                if parts.isEmpty {
                    // A batch of files without units still needs its checkpoint.
                    if !rowChannel.push(RowChunk(batch: b, closesBatch: true, units: [], ids: [])) { return }
                }
                for (n, positions) in parts.enumerated() {
                    if failed || shouldStop() { return }
                    let rows = RowChunk(batch: b, closesBatch: n == parts.count - 1, units: positions.map { work.units[$0] },
                                        ids: idsOfPart[n])
                    queueRecords(Self.storeRows(units: rows.units, ids: rows.ids), closesBatch: rows.closesBatch)
                    if !rowChannel.push(rows) { return }
                }
            }
        }
        Thread.detachNewThread { [self] in
            defer {
                channel.close()
                // Unblocks the row thread if this one stopped early.
                rowChannel.close()
                producerDone.signal()
            }
            while let rows = rowChannel.pop() {
                if failed || shouldStop() { return }
                let prepared = Result { try prepare(rows) }
                // The first tokenized chunk waited for the model load.
                rowChannel.setCapacity(Self.rowsAhead)
                if !channel.push(prepared) { return }
                if case .failure = prepared { return }
            }
        }
        do {
            var first = true
            while let next = channel.pop() {
                let prepared = try next.get()
                if shouldStop() { break }
                // The first chunk encodes on this thread (it waits for the model load and plans the run);
                // later ones overlap (`encodesInFlight`).
                submit(prepared, concurrently: !first, checkpointing: checkpointing, shouldStop: shouldStop)
                first = false
                if failed { break }
            }
        } catch {
            fail(error)
        }
        channel.close()
        rowChannel.close()
        Profiler.shared.measure("pipeline: wait for the last chunks") {
            producerDone.wait()
            rowsDone.wait()
            handoff.sync {}
            // Every row and every batch's hand-off to the checkpoints is queued on the store writer: the store's
            // final WAL checkpoint (0.15–0.3 s on the 113k-unit corpus) follows them there, beside the vector
            // writes and checkpoints still to come, instead of after them (the indexer then runs none of its own).
            // Queued before the hand-offs, it held the last checkpoint back.
            storeWriter.async { [store] in
                let times = Profiler.shared.measure("store: final WAL checkpoint") { store.finishCheckpoints() }
                if let times {
                    Profiler.shared.add(stage: "store: final WAL checkpoint: waiting for the running one", seconds: times.waitingForTheRunningOne)
                    Profiler.shared.add(stage: "store: final WAL checkpoint: copy, sync and truncate", seconds: times.own)
                }
            }
            pooler.sync {}
            writer.sync {}
        }
        do {
            try Profiler.shared.measure("pipeline: finish vector writes") { try finishVectorWrites() }
        } catch {
            fail(error)
        }
        Profiler.shared.measure("pipeline: wait for the store and checkpoints") {
            storeWriter.sync {}
            checkpointGate.sync {}
            checkpoints.sync {}
        }
        if let error = errorLock.withLock({ firstError }) { throw error }
    }

    /// Encodes one prepared chunk — on the calling thread, or `concurrently` on a thread of its own while
    /// the caller goes on to the next (at most `encodesInFlight` chunks between here and the hand-off) —
    /// then hands it to the writers on the hand-off queue, in submission order. An encode cancelled by a
    /// stop is no failure: that chunk and every later one are dropped (`droppingAfterStop`).
    private func submit(_ prepared: PreparedChunk, concurrently: Bool, checkpointing: Checkpointing,
                        shouldStop: @escaping @Sendable () -> Bool) {
        let encodes = !prepared.units.isEmpty && !keywordOnly
        let result = EncodedChunk()
        encodeSlots.wait()
        if encodes && concurrently {
            Thread.detachNewThread { [self] in
                result.set(failed ? .success([]) : Result { try encodeChunk(prepared.tokens, shouldStop) })
            }
        } else {
            result.set(encodes ? Result { try encodeChunk(prepared.tokens, shouldStop) } : .success([]))
        }
        handoff.async { [self] in
            // The slot is freed once the chunk is handed on, so finished chunks never pile up here.
            defer { encodeSlots.signal() }
            switch result.wait() {
            case .failure(ColGrepError.interrupted):
                droppingAfterStop = true
            case .failure(let error):
                fail(error)
            case .success(let encoded):
                if !failed && !droppingAfterStop { handOff(prepared, encoded: encoded, checkpointing: checkpointing) }
            }
        }
    }

    /// Hands one encoded chunk to the writers (pooling, then the vector writer); after a batch's last
    /// chunk, queues its checkpoint behind both writers.
    private func handOff(_ prepared: PreparedChunk, encoded: [HostMatrix], checkpointing: Checkpointing) {
        if !prepared.units.isEmpty {
            // The rows were queued on the store writer by the row thread, before this chunk was tokenized.
            if !keywordOnly {
                progress.advance(units: prepared.units.count, tokens: encoded.reduce(0) { $0 + $1.rows })
                poolSlots.wait()
                pooler.async { [self] in
                    defer { poolSlots.signal() }
                    if failed { return }
                    let pooled = pool(encoded)
                    let vectors = prepared.mapping.map { pooled[$0] }
                    // Handed on from this queue, so the vector writer sees chunks in order.
                    let bytes = pooled.reduce(0) { $0 + $1.values.count * MemoryLayout<Float>.stride }
                    vectorBacklog.enter(bytes: bytes)
                    writer.async { [self] in
                        defer { vectorBacklog.leave(bytes: bytes) }
                        if failed { return }
                        do {
                            try writeVectors(ids: prepared.ids, vectors: vectors, mustPersist: prepared.closesBatch)
                        } catch {
                            fail(error)
                        }
                    }
                }
            } else {
                progress.advance(units: prepared.units.count, tokens: 0)
            }
        }
        guard prepared.closesBatch else { return }
        let written = DispatchGroup()
        written.enter()
        // Through the pooler: every earlier chunk's vector write is queued on the writer by then; and behind
        // the streamed build's own write queue, which may still be writing the last group handed to it.
        pooler.async { [self] in
            writer.async { [self] in
                if let builder { builder.afterWrites { written.leave() } } else { written.leave() }
            }
        }
        written.enter()
        storeWriter.async { written.leave() }
        let batch = prepared.batch
        written.notify(queue: checkpointGate) { [self] in
            checkpointsWaiting.withLock { $0 += 1 }
            checkpoints.async { [self] in
                let laterWaiting = checkpointsWaiting.withLock { waiting in
                    waiting -= 1
                    return waiting > 0
                }
                if failed { return }
                do {
                    try Profiler.shared.measure("checkpoint") { try checkpointing.record(batch) }
                    // A later batch's checkpoint already waits behind this one and writes everything it would.
                    if !laterWaiting { try Profiler.shared.measure("checkpoint: save") { try checkpointing.persist() } }
                } catch {
                    fail(error)
                }
            }
        }
    }

    private var failed: Bool {
        errorLock.lock()
        defer { errorLock.unlock() }
        return firstError != nil
    }

    private func fail(_ error: Error) {
        errorLock.lock()
        if firstError == nil { firstError = error }
        errorLock.unlock()
    }

    /// One chunk as the row thread cuts it: its units and ids, and whether it closes batch `batch`.
    private struct RowChunk {
        var batch: Int
        var closesBatch: Bool
        var units: [CodeUnit]
        var ids: [Int64]
    }

    private func prepare(_ rows: RowChunk) throws -> PreparedChunk {
        guard !keywordOnly, !rows.units.isEmpty else {
            return PreparedChunk(batch: rows.batch, closesBatch: rows.closesBatch, units: rows.units, ids: rows.ids, tokens: [], mapping: [])
        }
        let (texts, mapping) = Self.embeddingTexts(rows.units)
        return PreparedChunk(batch: rows.batch, closesBatch: rows.closesBatch, units: rows.units, ids: rows.ids,
                             tokens: try model.tokenizeDocuments(texts), mapping: mapping)
    }

    /// Queues a chunk's rows on the store writer (waiting while `rowsAhead` chunks are queued there).
    /// When the writer falls behind, it inserts every chunk waiting up to the end of the oldest batch in
    /// one transaction: fewer commits, each flushing a larger keyword segment (a batch is never split
    /// from the next, so a failure in one batch cannot hold back the checkpoint of an earlier one).
    private func queueRecords(_ rows: PreparedRecords, closesBatch: Bool) {
        guard !rows.records.isEmpty else { return }
        storeSlots.wait()
        // With keyword shards the store starts on the chunk's keyword rows now, behind the write in progress.
        store.queueAhead(rows) { waitingRows.withLock { $0.append((rows, closesBatch)) } }
        storeWriter.async { [self] in writeNextGroup() }
    }

    /// On the store writer: takes the waiting chunks' next group (`takeGroup`, at least the chunks the store
    /// queued ahead since its last write) and inserts it in one transaction.
    private func writeNextGroup() {
        var taken = 0
        defer { for _ in 0..<taken { storeSlots.signal() } }
        if failed {
            taken = Self.takeGroup(waitingRows).count
            return
        }
        do {
            let begin = ProfileClock.now()
            let group = try store.insert(takingGroup: { queuedAhead in
                let group = Self.takeGroup(waitingRows, atLeast: queuedAhead)
                taken = group.count
                return group
            })
            // A block whose chunk an earlier block took finds nothing: no write to profile.
            guard !group.isEmpty else { return }
            Profiler.shared.add(stage: "store", seconds: ProfileClock.seconds(since: begin))
            for (stage, seconds) in store.insertStages { Profiler.shared.add(stage: "store: \(stage)", seconds: seconds) }
            // Freed beside the lane: freeing a batch's rows here held the next write back (`BackgroundRelease`).
            BackgroundRelease.release(consume group)
        } catch {
            fail(error)
        }
    }

    /// Removes and returns the waiting chunks up to and including the first that closes a batch (all of
    /// them when none does). Each queued chunk has its own writer block, which finds nothing left when an
    /// earlier block took its chunk — so by the time a block behind all of a batch's runs, every chunk of
    /// that batch is in SQLite.
    ///
    /// With `atLeast` n, the group holds at least the first n chunks (those the store queued ahead), even
    /// past a batch's end.
    static func takeGroup(_ waiting: LockedValue<[(rows: PreparedRecords, closesBatch: Bool)]>, atLeast: Int = 0) -> [PreparedRecords] {
        waiting.withLock { queue in
            guard !queue.isEmpty else { return [] }
            let end = max(queue.firstIndex(where: \.closesBatch) ?? queue.count - 1, min(atLeast, queue.count) - 1)
            let taken = queue[...end].map(\.rows)
            queue.removeFirst(end + 1)
            return taken
        }
    }

    /// The chunk's embedding texts, built on every core and deduplicated (identical texts are encoded
    /// once), with for each unit the index of its text.
    ///
    /// Each text's xxh3 is taken beside its build, on every core, and the dedup on this thread compares
    /// those 8-byte keys, whole texts only where two keys agree. Keying a dictionary by the texts themselves
    /// hashed every text again here, on one thread: 0.24 s of a 2-core run's 0.58 s, and the part that kept
    /// the stage at ~0.8 s from 8 cores to 64 on a 113k-unit corpus (docs/PERFORMANCE.md, session 20).
    static func embeddingTexts(_ units: [CodeUnit]) -> (texts: [String], mapping: [Int]) {
        Profiler.shared.measure("embedding text") {
            let built = Profiler.shared.measure("embedding text: build") {
                units.parallelMap { unit -> (text: String, hash: UInt64) in
                    var text = EmbeddingText.build(for: unit)
                    let hash = text.withUTF8 { XXH3_64bits($0.baseAddress, $0.count) }
                    return (text, hash)
                }
            }
            let dedupBegin = ProfileClock.now()
            defer { Profiler.shared.add(stage: "embedding text: unique", seconds: ProfileClock.seconds(since: dedupBegin)) }
            return uniqueTexts(built)
        }
    }

    /// The distinct texts of `built` in first-seen order and, for each entry, the index of its text among
    /// them; `hash` must be a function of the text alone. A text whose hash another, different text has
    /// already taken (a 64-bit collision) is keyed by itself instead, so equal texts always meet.
    static func uniqueTexts(_ built: [(text: String, hash: UInt64)]) -> (texts: [String], mapping: [Int]) {
        var byHash: [UInt64: Int] = [:]
        byHash.reserveCapacity(built.count)
        var collided: [String: Int] = [:]
        var texts: [String] = []
        var mapping: [Int] = []
        mapping.reserveCapacity(built.count)
        for (text, hash) in built {
            if let first = byHash[hash] {
                if texts[first] == text {
                    mapping.append(first)
                    continue
                }
                if let other = collided[text] {
                    mapping.append(other)
                    continue
                }
                collided[text] = texts.count
            } else {
                byHash[hash] = texts.count
            }
            mapping.append(texts.count)
            texts.append(text)
        }
        return (texts, mapping)
    }

    func pool(_ encoded: [HostMatrix]) -> [HostMatrix] {
        let factor = options.poolFactor
        guard factor > 1 else { return encoded }
        return Profiler.shared.measure("pool") { encoded.parallelMap { TokenPooler.pool($0, factor: factor) } }
    }

    /// The store rows of a chunk with their text work done (keyword texts, JSON columns), on every core,
    /// so that the store writer only binds and steps.
    static func storeRows(units: [CodeUnit], ids: [Int64]) -> PreparedRecords {
        Profiler.shared.measure("store rows") {
            let records = Profiler.shared.measure("store rows: records") { zip(ids, units).map { record($0.0, $0.1) } }
            return Profiler.shared.measure("store rows: prepared") { PreparedRecords(records, workers: UsableCores.count) }
        }
    }

    /// Writes prepared chunks of rows through the store lane as a run does (this thread files them as the
    /// row thread does, waiting for room; the store writer takes the groups) and returns once every one is
    /// in SQLite: the store lane's own speed, for `IndexStageBenchmark`.
    func writeRowsThroughTheStoreLane(_ chunks: [(rows: PreparedRecords, closesBatch: Bool)]) throws {
        for chunk in chunks { queueRecords(chunk.rows, closesBatch: chunk.closesBatch) }
        storeWriter.sync {}
        if let error = errorLock.withLock({ firstError }) { throw error }
    }

    /// Units per chunk: the configured size, or for a run of few units a quarter of it (at least
    /// `minimumChunk`), so that even a one-chunk project streams.
    static func chunkSize(configured: Int, plannedUnits: Int) -> Int {
        let configured = max(1, configured)
        guard plannedUnits > 0 else { return configured }
        let share = (plannedUnits + chunksPerSmallRun - 1) / chunksPerSmallRun
        return min(configured, max(minimumChunk, share))
    }

    /// The positions of a batch's units in each of its chunks: at most `chunkSize` each, dealt out in
    /// turn (chunk n of C takes units n, n + C, …), so that every chunk — the first ones the codec trains
    /// on above all — samples the whole batch rather than its first files.
    static func chunkPositions(count: Int, chunkSize: Int) -> [[Int]] {
        guard count > 0 else { return [] }
        let chunks = (count + max(1, chunkSize) - 1) / max(1, chunkSize)
        return (0..<chunks).map { Array(stride(from: $0, to: count, by: chunks)) }
    }

    /// The ids of a batch's chunks: each chunk takes the next run of the batch's ids, in order, so that ids
    /// rise within every chunk and from one chunk to the next. A chunk's units come from across its batch
    /// (`chunkPositions`); had each unit kept the id of its place in the batch, the chunks' ids would
    /// interleave, and every transaction of several chunks would go back down the doc ids at each chunk:
    /// FTS5 flushes its pending terms into a new segment whenever a rowid is not above the last one, and
    /// the tables' B-trees split pages in the middle instead of appending. On the GPU machine that made the
    /// store lane of a cold index 1.6–1.9× its cost alone (the stage alone was measured with rising ids).
    static func chunkIDs(batchIDs: [Int64], chunkSizes: [Int]) -> [[Int64]] {
        var next = 0
        return chunkSizes.map { size in
            defer { next += size }
            return Array(batchIDs[next..<next + size])
        }
    }

    /// Appends a chunk's vectors to the index; without one yet, hands them to the streamed build, which
    /// trains the codec once it holds enough of the run (`StreamedIndexBuilder`). `mustPersist`: the
    /// chunk closes a checkpoint batch, so everything up to it must be on disk.
    func writeVectors(ids: [Int64], vectors: [HostMatrix], mustPersist: Bool = true) throws {
        let documents = zip(ids, vectors).map { (id: $0.0, vectors: $0.1) }
        let backend = try model.computeBackend()
        if builder == nil, let plaid {
            // An update of an existing index.
            try Profiler.shared.measure("codec + index append") { try plaid.append(documents, backend: backend) }
            for (stage, seconds) in plaid.writeStages { Profiler.shared.add(stage: "codec append: \(stage)", seconds: seconds) }
            return
        }
        let building: StreamedIndexBuilder
        if let builder {
            building = builder
        } else {
            let nbits = options.residualBits ?? PlaidConfig.defaultBits(dimension: documents.first?.vectors.cols ?? 0)
            building = StreamedIndexBuilder(directory: vectorDirectory, config: PlaidConfig(nbits: nbits), plannedDocuments: plannedUnits,
                                            asynchronousWrites: true)
            // Each group encodes here while the one before is written on the builder's queue.
            building.onWritten = { stages in
                // The write queue's own busy time: the stages after the encode (those name the group's encode
                // on the vector writer, and its parts).
                Profiler.shared.add(stage: "codec + index write", seconds: stages.filter { !$0.stage.hasPrefix("encode") }.reduce(0) { $0 + $1.seconds })
                for (stage, seconds) in stages { Profiler.shared.add(stage: "codec append: \(stage)", seconds: seconds) }
            }
            building.onWriteFailure = { [self] error in fail(error) }
            builder = building
        }
        let begin = ProfileClock.now()
        let step = try building.add(documents, mustPersist: mustPersist, backend: backend)
        guard let index = building.index else { return }
        switch step {
        case .created:
            Profiler.shared.add(stage: "k-means + codec + index create", seconds: ProfileClock.seconds(since: begin))
            for (stage, seconds) in index.buildStages { Profiler.shared.add(stage: "codec create: \(stage)", seconds: seconds) }
            plaid = index
        case .appended:
            // Validate + encode, and any wait for the write before (the write's own stages: `onWritten`).
            Profiler.shared.add(stage: "codec + index append", seconds: ProfileClock.seconds(since: begin))
        case .held:
            break
        }
    }

    /// Waits until the streamed build has written every group handed to it; throws its first write error.
    func finishVectorWrites() throws {
        try builder?.finishWrites()
    }

    static func record(_ id: Int64, _ u: CodeUnit) -> UnitRecord {
        UnitRecord(docID: id, file: u.file, name: u.name, qualifiedName: u.qualifiedName, line: u.line, endLine: u.endLine,
                   language: u.language, unitType: u.unitType.rawValue, signature: u.signature, docstring: u.docstring,
                   parameters: u.parameters, returnType: u.returnType, extends: u.extends, parentClass: u.parentClass,
                   calls: u.calls, calledBy: u.calledBy, complexity: u.complexity, hasLoops: u.hasLoops,
                   hasBranches: u.hasBranches, hasErrorHandling: u.hasErrorHandling, variables: u.variables,
                   imports: u.imports, code: u.code)
    }
}

/// A first-in first-out hand-over between one producer and one consumer thread, holding at most
/// `capacity` items: `push` blocks while it is full, `pop` while it is empty. After `close()`, `push`
/// refuses (returns false) and `pop` returns what is left, then nil.
final class BoundedChannel<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element?] = []
    private var head = 0
    private var closed = false
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Waits for room, then appends; false (and nothing appended) once the channel is closed.
    func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !closed { condition.wait() }
        guard !closed else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Waits for an item; nil once the channel is closed and empty.
    func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.count == head && !closed { condition.wait() }
        guard items.count > head, let item = items[head] else { return nil }
        // The slot lets go of its item at once: compaction waits for 64 popped slots, and a run of fewer
        // chunks held every chunk (its units, its token ids) until the channel itself went, then freed them
        // all on the critical path (~95 ms at the end of a cold index on the GPU machine).
        items[head] = nil
        head += 1
        if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// Changes how many items the channel holds at most; pushes waiting for room see the new bound.
    func setCapacity(_ newCapacity: Int) {
        condition.lock()
        capacity = max(1, newCapacity)
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// One chunk's encode result, set once by whichever thread encoded it and waited for by the hand-off.
private final class EncodedChunk: @unchecked Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private var result: Result<[HostMatrix], Error> = .success([])

    func set(_ value: Result<[HostMatrix], Error>) {
        result = value
        ready.signal()
    }

    func wait() -> Result<[HostMatrix], Error> {
        ready.wait()
        return result
    }
}
