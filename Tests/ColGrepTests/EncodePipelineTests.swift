import CodeUnits
import Foundation
import Plaid
@testable import Store
import Tensor
import Testing
@testable import ColGrep

/// The streamed indexing pipeline: hand-over between its threads, checkpoints only after both
/// writers hold a batch, in order, and stops and errors that leave no checkpoint ahead of the data.
@Suite struct EncodePipelineTests {
    @Test func channelHandsOverEveryItemInOrderThroughABoundedBuffer() {
        let channel = BoundedChannel<Int>(capacity: 2)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for i in 0..<500 { _ = channel.push(i) }
            channel.close()
            done.signal()
        }
        var received: [Int] = []
        while let item = channel.pop() { received.append(item) }
        done.wait()
        #expect(received == Array(0..<500))
    }

    /// A popped item belongs to its taker alone: the channel keeps no reference to it (it used to keep
    /// every item of a run shorter than 64 chunks until the channel went, units and token ids included).
    @Test func aPoppedItemIsNoLongerHeldByTheChannel() {
        final class Chunk: Sendable {}
        let channel = BoundedChannel<Chunk>(capacity: 4)
        weak var first: Chunk?
        do {
            let chunk = Chunk()
            first = chunk
            #expect(channel.push(chunk) && channel.push(Chunk()))
        }
        #expect(first != nil)
        _ = channel.pop()
        #expect(first == nil)
        #expect(channel.pop() != nil)
    }

    @Test func aLowerCapacityHoldsPushesUntilTheChannelDrainsBelowIt() {
        let channel = BoundedChannel<Int>(capacity: 4)
        #expect(channel.push(1) && channel.push(2) && channel.push(3))
        channel.setCapacity(2)
        let pushed = ColGrep.LockedValue(false)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = channel.push(4)
            pushed.withLock { $0 = true }
            done.signal()
        }
        // Three held, room for two: the push waits through one pop and goes in after the second.
        #expect(done.wait(timeout: .now() + 0.1) == .timedOut)
        #expect(channel.pop() == 1)
        #expect(done.wait(timeout: .now() + 0.1) == .timedOut)
        #expect(channel.pop() == 2)
        done.wait()
        #expect(pushed.withLock { $0 })
        #expect(channel.pop() == 3 && channel.pop() == 4)
    }

    @Test func closedChannelRefusesPushesAndDrainsWhatItHolds() {
        let channel = BoundedChannel<String>(capacity: 3)
        #expect(channel.push("a") && channel.push("b"))
        channel.close()
        #expect(!channel.push("c"))
        #expect(channel.pop() == "a" && channel.pop() == "b" && channel.pop() == nil)
    }

    @Test func producerBlockedOnAFullChannelIsReleasedByClose() {
        let channel = BoundedChannel<Int>(capacity: 1)
        #expect(channel.push(1))
        let refused = ColGrep.LockedValue(false)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let accepted = channel.push(2)
            refused.withLock { $0 = !accepted }
            done.signal()
        }
        channel.close()
        done.wait()
        #expect(refused.withLock { $0 })
    }

    @Test func writerBacklogAdmitsSmallItemsUpToItsBytesAndLargeOnesUpToItsMinimumCount() {
        let backlog = WriterBacklog(minimumItems: 2, byteLimit: 100)
        // Two items over the limit still pass (the minimum count), as the old two-slot queue let them.
        backlog.enter(bytes: 500)
        backlog.enter(bytes: 500)
        #expect(backlog.waiting == (2, 1_000))
        backlog.leave(bytes: 500)
        backlog.leave(bytes: 500)
        // Small items: as many as fit in the bytes, beyond the minimum count.
        for _ in 0..<5 { backlog.enter(bytes: 20) }
        #expect(backlog.waiting == (5, 100))
        let admitted = ColGrep.LockedValue(false)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            backlog.enter(bytes: 20)
            admitted.withLock { $0 = true }
            done.signal()
        }
        // The sixth waits (no room) until one leaves.
        #expect(done.wait(timeout: .now() + 0.2) == .timedOut)
        #expect(!admitted.withLock { $0 })
        backlog.leave(bytes: 20)
        done.wait()
        #expect(admitted.withLock { $0 })
        #expect(backlog.waiting == (5, 100))
    }

    @Test func pooledVectorBacklogIsAtMostAQuarterGibibyteAndASixteenthOfMemory() {
        #expect(WriterBacklog.forPooledVectors(physicalMemory: 512 << 30).byteLimit == 256 << 20)
        #expect(WriterBacklog.forPooledVectors(physicalMemory: 1 << 30).byteLimit == 64 << 20)
        #expect(WriterBacklog.forPooledVectors(physicalMemory: 1 << 30).minimumItems == 2)
    }

    /// A chunk of one row with id `id`, for the store writer's grouping.
    private static func oneRow(_ id: Int64) -> PreparedRecords {
        PreparedRecords([UnitRecord(docID: id, file: "f.py", name: "n", qualifiedName: "n", line: 1, endLine: 1,
                                    language: "python", unitType: "function", code: "pass")])
    }

    @Test func storeWriterTakesWaitingChunksUpToTheEndOfTheOldestBatch() {
        let rows = Self.oneRow
        let waiting = ColGrep.LockedValue<[(rows: PreparedRecords, closesBatch: Bool)]>([
            (rows(1), false), (rows(2), true), (rows(3), false), (rows(4), false),
        ])
        #expect(EncodePipeline.takeGroup(waiting).map { $0.records[0].docID } == [1, 2])
        #expect(EncodePipeline.takeGroup(waiting).map { $0.records[0].docID } == [3, 4])
        #expect(EncodePipeline.takeGroup(waiting).isEmpty)
        waiting.withLock { $0.append((rows(5), true)) }
        #expect(EncodePipeline.takeGroup(waiting).map { $0.records[0].docID } == [5])
    }

    @Test func storeWriterTakesAtLeastTheChunksQueuedAhead() {
        let rows = Self.oneRow
        let waiting = ColGrep.LockedValue<[(rows: PreparedRecords, closesBatch: Bool)]>([
            (rows(1), true), (rows(2), false), (rows(3), true), (rows(4), false),
        ])
        // Three chunks queued ahead: the group runs past the first batch's end to hold them.
        #expect(EncodePipeline.takeGroup(waiting, atLeast: 3).map { $0.records[0].docID } == [1, 2, 3])
        #expect(EncodePipeline.takeGroup(waiting, atLeast: 0).map { $0.records[0].docID } == [4])
        #expect(EncodePipeline.takeGroup(waiting, atLeast: 2).isEmpty)
        // Everything waiting (the store had nothing queued ahead).
        waiting.withLock { $0 = [(rows(5), true), (rows(6), true), (rows(7), false)] }
        #expect(EncodePipeline.takeGroup(waiting, atLeast: Int.max).map { $0.records[0].docID } == [5, 6, 7])
    }

    /// Keyword-only pipeline (no model): store rows and checkpoints, nothing else. With `model`, a whole
    /// pipeline that tokenizes with that model and encodes with `encodeChunk`.
    struct Fixture {
        let directory: URL
        let store: MetadataStore
        let pipeline: EncodePipeline

        init(chunkSize: Int = 3, model: URL? = nil, encodeChunk: EncodePipeline.ChunkEncoder? = nil, keywordShards: Int? = nil) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-pipeline-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            store = try MetadataStore(path: directory.appendingPathComponent("metadata.db"), readOnly: false, keywordShards: keywordShards)
            var options = IndexOptions(model: model?.path ?? "unused", poolFactor: 1)
            options.chunkSize = chunkSize
            pipeline = EncodePipeline(options: options, model: ModelRuntime(modelID: model?.path ?? "unused", acceleration: .forceCPU),
                                      progress: .silent, store: store, vectorDirectory: directory.appendingPathComponent("index"), plaid: nil,
                                      keywordOnly: model == nil, encodeChunk: encodeChunk)
        }

        var vectorDirectory: URL { directory.appendingPathComponent("index") }

        static func batch(_ b: Int, units count: Int) -> EncodePipeline.Batch {
            let units = (0..<count).map { i in
                CodeUnit(name: "f\(i)", qualifiedName: "file\(b).py::f\(i)", file: "file\(b).py", line: i + 1, endLine: i + 1,
                         language: "python", unitType: .function, signature: "def f\(i)():", code: "def f\(i)(): return \(b)")
            }
            return EncodePipeline.Batch(units: units, ids: (0..<count).map { Int64(b * 100 + $0) })
        }
    }

    @Test func checkpointsRunInOrderOnceTheirBatchIsStored() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let sizes = [7, 0, 3, 10, 1]
        let seen = ColGrep.LockedValue<[(Int, Set<Int64>)]>([])
        let store = f.store
        try f.pipeline.run(batchCount: sizes.count, batch: { Fixture.batch($0, units: sizes[$0]) }, checkpoint: { b in
            seen.withLock { $0.append((b, try! store.allDocIDs())) }
        }, shouldStop: { false })
        let checkpoints = seen.withLock { $0 }
        #expect(checkpoints.map(\.0) == Array(sizes.indices))
        for (b, stored) in checkpoints {
            // Every unit of this batch and the earlier ones is in the store when its checkpoint runs.
            for earlier in 0...b {
                for i in 0..<sizes[earlier] { #expect(stored.contains(Int64(earlier * 100 + i)), "batch \(b) checkpoint, unit \(earlier)/\(i)") }
            }
        }
        #expect(try f.store.allDocIDs().count == sizes.reduce(0, +))
    }

    /// Checkpoints that queue up behind a slow one are each recorded but written once: `persist` runs after
    /// a checkpoint only when no later one is waiting, and always after the last.
    @Test func queuedCheckpointsAreWrittenOnceByTheLast() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let events = ColGrep.LockedValue<[String]>([])
        try f.pipeline.run(batchCount: 12, batch: { Fixture.batch($0, units: 2) }, checkpoint: { b in
            // The first checkpoint is slow: the store writer meanwhile finishes every later batch.
            if b == 0 { usleep(300_000) }
            events.withLock { $0.append("checkpoint \(b)") }
        }, persist: {
            events.withLock { $0.append("persist") }
        }, shouldStop: { false })
        let seen = events.withLock { $0 }
        #expect(seen.filter { $0.hasPrefix("checkpoint") } == (0..<12).map { "checkpoint \($0)" })
        #expect(seen.last == "persist")
        // Batches 1…11 were waiting behind batch 0's checkpoint: one write after the last of them.
        #expect(seen.filter { $0 == "persist" }.count < 4, "\(seen)")
    }

    /// The pipeline ends with the store's WAL copied into its database and emptied (its final checkpoint runs on
    /// the store writer behind the last write), and the last checkpoint still follows every batch.
    /// With keyword shards the store starts on each chunk's keyword rows as it is queued, behind the write
    /// in progress (`KeywordLookahead`); a batch's checkpoint still finds every row of it committed, and the
    /// store ends with every unit once.
    @Test func rowsInsertedAheadAreCommittedBeforeTheirBatchsCheckpoint() throws {
        let f = try Fixture(keywordShards: 3)
        defer { try? FileManager.default.removeItem(at: f.directory) }
        // A slow row writer lets whole batches wait behind it, as in a store-bound build.
        f.store.faultHook = { point, _ in if point == .insertedRow { usleep(300) } }
        let sizes = [10, 7, 0, 12, 9, 10, 4, 30, 25, 11, 40, 12]
        let seen = ColGrep.LockedValue<[(Int, Set<Int64>)]>([])
        let store = f.store
        try f.pipeline.run(batchCount: sizes.count, batch: { Fixture.batch($0, units: sizes[$0]) }, checkpoint: { b in
            seen.withLock { $0.append((b, try! store.allDocIDs())) }
        }, shouldStop: { false })
        for (b, stored) in seen.withLock({ $0 }) {
            for earlier in 0...b {
                let ids = Set((0..<sizes[earlier]).map { Int64(earlier * 100 + $0) })
                #expect(ids.isSubset(of: stored), "batch \(earlier) not stored at checkpoint \(b)")
            }
        }
        #expect(seen.withLock { $0.map(\.0) } == Array(sizes.indices))
        #expect(f.store.writesInsertedAhead > 0)
        #expect(try f.store.count == sizes.reduce(0, +))
        try f.store.verifyIntegrity()
        // The same keyword index as the batches written one by one (the pipeline deals a batch's units over
        // its chunks, so ids differ: units are compared by name, with their scores).
        let reference = try Fixture(keywordShards: 3)
        defer { try? FileManager.default.removeItem(at: reference.directory) }
        for (b, size) in sizes.enumerated() where size > 0 {
            let batch = Fixture.batch(b, units: size)
            try reference.store.insert(EncodePipeline.storeRows(units: batch.units, ids: batch.ids))
        }
        func scored(_ store: MetadataStore, _ query: String) throws -> [String] {
            // Every match (a cut at a limit would fall among equal scores, ordered by id).
            let hits = try store.bm25(query: query, limit: 10_000, within: nil)
            let names = Dictionary(uniqueKeysWithValues: try store.records(docIDs: hits.map(\.docID)).map { ($0.docID, $0.qualifiedName) })
            return hits.map { "\(names[$0.docID]!) \(String(format: "%.6f", $0.score))" }.sorted()
        }
        for query in ["f3", "def f7", "return 4", "file5 py"] {
            let hits = try scored(f.store, query)
            #expect(!hits.isEmpty)
            #expect(hits == (try scored(reference.store, query)))
        }
    }

    @Test func theStoresWALIsEmptyWhenThePipelineReturns() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let last = ColGrep.LockedValue(-1)
        try f.pipeline.run(batchCount: 6, batch: { Fixture.batch($0, units: 40) }, checkpoint: { b in
            last.withLock { $0 = b }
        }, shouldStop: { false })
        #expect(last.withLock { $0 } == 5)
        let wal = f.directory.appendingPathComponent("metadata.db-wal").path
        let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        #expect(size == 0, "WAL \(size) bytes")
        #expect(try f.store.count == 240)
    }

    /// Each chunk takes the next run of its batch's ids, so ids rise within a chunk and from chunk to chunk:
    /// the store appends instead of going back down at every chunk (FTS5 would flush a segment there).
    @Test func chunksTakeRisingRunsOfTheirBatchsIDs() throws {
        let ids = EncodePipeline.chunkIDs(batchIDs: Array(100..<110), chunkSizes: [4, 3, 3])
        #expect(ids == [[100, 101, 102, 103], [104, 105, 106], [107, 108, 109]])
        #expect(EncodePipeline.chunkIDs(batchIDs: [], chunkSizes: []).isEmpty)

        // Through the pipeline: a batch of 10 units in chunks of at most 4 is dealt as units {0,3,6,9},
        // {1,4,7}, {2,5,8}; they must get ids 0…3, 4…6 and 7…9, each chunk's in its units' order.
        let f = try Fixture(chunkSize: 4)
        defer { try? FileManager.default.removeItem(at: f.directory) }
        try f.pipeline.run(batchCount: 1, batch: { Fixture.batch($0, units: 10) }, checkpoint: { _ in }, shouldStop: { false })
        let records = try f.store.records(docIDs: (0..<10).map { Int64($0) })
        let idOfUnit = Dictionary(uniqueKeysWithValues: records.map { ($0.name, $0.docID) })
        let dealt = EncodePipeline.chunkPositions(count: 10, chunkSize: 4).flatMap { $0 }
        #expect(dealt.map { idOfUnit["f\($0)"] } == (0..<10).map { Int64($0) })
    }

    /// A stop drops what has not started encoding: the batch being cut when it came is never stored or
    /// checkpointed, no later batch starts, and what is checkpointed is whole and in order.
    @Test func stopDropsChunksNotYetEncodingAndCheckpointsOnlyWholeBatches() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let started = ColGrep.LockedValue(0)
        let stop = ColGrep.LockedValue(false)
        let checkpointed = ColGrep.LockedValue<[Int]>([])
        try f.pipeline.run(batchCount: 6, batch: { b in
            started.withLock { $0 += 1 }
            // Ctrl-C while batch 2 is being cut.
            if b == 2 { stop.withLock { $0 = true } }
            return Fixture.batch(b, units: 4)
        }, checkpoint: { b in checkpointed.withLock { $0.append(b) } }, shouldStop: { stop.withLock { $0 } })
        #expect(started.withLock { $0 } == 3)
        let done = checkpointed.withLock { $0 }
        #expect(done == Array(0..<done.count) && done.count <= 2)
        let stored = try f.store.allDocIDs()
        #expect(!stored.contains { $0 >= 200 })
        for batch in done { #expect(Set((0..<4).map { Int64(batch * 100 + $0) }).isSubset(of: stored)) }
    }

    /// A stop raised while a chunk is encoding ends that chunk's encode after the batch on the device:
    /// no further encoder batch runs, the chunk and its batch are neither written to the vector index nor
    /// checkpointed, and what was checkpointed before is whole.
    @Test func stopWhileAChunkEncodesCancelsItsRemainingBatchesAndCheckpointsNothingOfIt() throws {
        let model = StreamedIndexBuildTests.packageRoot.appendingPathComponent("Tests/EncoderTests/Fixtures/tiny-modernbert")
        let stop = ColGrep.LockedValue(false)
        // One sequence per encoder batch, so a chunk of 4 units is 4 batches. Batch 0 is one chunk, encoded
        // first and alone (device batches 1–4); batch 1's two chunks encode next, side by side (5–12, in either
        // order). The stop comes while device batch 6 is on the device.
        let sizes = [4, 8, 8, 8]
        let device = StopRaisingDevice(model: model, stopDuring: 6, stop: stop)
        let scheduler = EncodeScheduler(lanes: [EncodeLane(device: device, end: .shortest, tokenBudget: 1)], policy: .requeue,
                                        profiler: Profiler(enabled: false))
        defer { scheduler.stop() }
        let f = try Fixture(chunkSize: 4, model: model) { tokens, shouldStop in
            try scheduler.encode(tokens, length: \.count, shouldStop: shouldStop).outputs
        }
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let checkpointed = ColGrep.LockedValue<[Int]>([])
        try f.pipeline.run(batchCount: sizes.count, batch: { Fixture.batch($0, units: sizes[$0]) },
                           checkpoint: { b in checkpointed.withLock { $0.append(b) } }, shouldStop: { stop.withLock { $0 } })
        // Without cancelling, both chunks of batch 1 would finish (device batches 7–12) and batch 1 be checkpointed.
        #expect(device.batches.withLock { $0 } == 6)
        #expect(checkpointed.withLock { $0 } == [0])
        #expect(Set(try PlaidIndex.open(at: f.vectorDirectory).documentIDs) == Set((0..<4).map { Int64($0) }))
    }

    struct CheckpointFailure: Error {}

    @Test func aFailedCheckpointStopsLaterCheckpointsAndIsThrown() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let checkpointed = ColGrep.LockedValue<[Int]>([])
        #expect(throws: CheckpointFailure.self) {
            try f.pipeline.run(batchCount: 5, batch: { Fixture.batch($0, units: 5) }, checkpoint: { b in
                if b == 1 { throw CheckpointFailure() }
                checkpointed.withLock { $0.append(b) }
            }, shouldStop: { false })
        }
        #expect(checkpointed.withLock { $0 } == [0])
    }

    @Test func duplicateIdsFailTheRunWithoutCheckpointingThatBatch() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let checkpointed = ColGrep.LockedValue<[Int]>([])
        #expect(throws: (any Error).self) {
            try f.pipeline.run(batchCount: 3, batch: { b in
                var batch = Fixture.batch(b, units: 2)
                if b == 1 { batch.ids = [150, 150] }
                return batch
            }, checkpoint: { b in checkpointed.withLock { $0.append(b) } }, shouldStop: { false })
        }
        #expect(!checkpointed.withLock { $0 }.contains(1))
        #expect(!checkpointed.withLock { $0 }.contains(2))
    }
}

/// The tiny model on the CPU, counting its batches and raising a stop while it encodes batch `stopDuring`.
final class StopRaisingDevice: EncodeDevice, @unchecked Sendable {
    private let model: BackendEncodeDevice
    private let stopDuring: Int
    private let stop: ColGrep.LockedValue<Bool>
    let batches = ColGrep.LockedValue(0)

    init(model directory: URL, stopDuring: Int, stop: ColGrep.LockedValue<Bool>) {
        model = BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: directory, skipIDs: [], kernelCache: nil)
        self.stopDuring = stopDuring
        self.stop = stop
    }

    var info: DeviceInfo { model.info }

    func prepare() throws { try model.prepare() }

    func encode(_ items: [[Int32]]) throws -> [HostMatrix] {
        let batch = batches.withLock { count -> Int in
            count += 1
            return count
        }
        if batch == stopDuring { stop.withLock { $0 = true } }
        return try model.encode(items)
    }
}

/// A whole build streamed over many checkpoint batches and chunks (tiny random ModernBERT from the
/// encoder fixtures): every unit lands once in the store and once in the vector index, with the
/// same ids, and the state names every file.
@Suite struct StreamedIndexBuildTests {
    static let packageRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir = dir.deletingLastPathComponent() }
        return dir
    }()

    @Test func everyUnitIsOnBothSidesOnceAfterAManyBatchBuild() throws {
        let model = Self.packageRoot.appendingPathComponent("Tests/EncoderTests/Fixtures/tiny-modernbert")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-streamed-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: base) }
        let project = base.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        for f in 0..<15 {
            let body = (0..<3).map { "def fn_\(f)_\($0)(x):\n    return x + \(f * 10 + $0)\n" }.joined(separator: "\n")
            try body.write(to: project.appendingPathComponent("m\(f).py"), atomically: true, encoding: .utf8)
        }
        let engine = try Engine(paths: DataPaths(root: base.appendingPathComponent("data")))
        var options = IndexOptions(model: model.path, poolFactor: 2)
        options.assumeYes = true
        options.acceleration = .forceCPU
        options.checkpointUnits = 7
        options.chunkSize = 4
        let summary = try engine.index(root: project.path, options: options, progress: .silent)
        #expect(summary.added == 15)
        let layout = IndexLayout(directory: engine.paths.indexDirectory(projectPath: project.path, model: model.path))
        let state = try #require(try IndexState.load(layout))
        let storeIDs = try MetadataStore(path: layout.metadataFile, readOnly: true).allDocIDs()
        let vectorIDs = Set(try PlaidIndex.open(at: layout.vectorDirectory).documentIDs)
        #expect(state.files.count == 15 && !state.dirty)
        #expect(storeIDs.count == state.unitCount && summary.unitsEncoded == state.unitCount && state.unitCount >= 45)
        #expect(vectorIDs == storeIDs)
        #expect(storeIDs == Set((0..<Int64(state.unitCount)).map { $0 }) && state.nextDocID == Int64(state.unitCount))
    }
}

/// How a run is cut into chunks: small runs into several (so the codec can train mid-run), each chunk
/// dealt from across the whole batch (so the first ones are a sample of it), every unit exactly once.
@Suite struct ChunkingTests {
    @Test func smallRunsAreSplitLargeRunsKeepTheConfiguredSize() {
        #expect(EncodePipeline.chunkSize(configured: 1024, plannedUnits: 0) == 1024)
        #expect(EncodePipeline.chunkSize(configured: 1024, plannedUnits: 635) == 159)
        #expect(EncodePipeline.chunkSize(configured: 1024, plannedUnits: 100) == EncodePipeline.minimumChunk)
        #expect(EncodePipeline.chunkSize(configured: 1024, plannedUnits: 70_000) == 1024)
        #expect(EncodePipeline.chunkSize(configured: 4, plannedUnits: 635) == 4)
    }

    @Test func chunksAreDealtFromAcrossTheBatchAndCoverItOnce() {
        let parts = EncodePipeline.chunkPositions(count: 10, chunkSize: 4)
        #expect(parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]])
        for (count, size) in [(1, 1), (7, 7), (635, 159), (1000, 3)] {
            let positions = EncodePipeline.chunkPositions(count: count, chunkSize: size)
            #expect(positions.allSatisfy { $0.count <= size })
            #expect(positions.flatMap { $0 }.sorted() == Array(0..<count))
        }
        #expect(EncodePipeline.chunkPositions(count: 0, chunkSize: 4).isEmpty)
    }
}
