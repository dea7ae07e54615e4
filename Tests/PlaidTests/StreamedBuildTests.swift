import Foundation
import Plaid
import Tensor
import Testing

/// A cold build whose codec trains on the first part of the run while the rest still encodes
/// (`StreamedIndexBuilder`): same K as training on everything, no retrain as it grows, and search
/// results and quantisation error within tolerance of the one-shot build over the same documents.
@Suite struct StreamedBuildTests {
    /// Documents in shuffled order (a strided-looking first half, as the product's first batch is).
    static func corpus() -> (SyntheticCorpus, [(id: Int64, vectors: HostMatrix)]) {
        let corpus = SyntheticCorpus(documents: 400, dim: 64, centres: 256, medianLength: 32, queries: 20, queryLength: 16, seed: 7)
        return (corpus, documents(corpus))
    }

    static func allVectors(_ docs: [(id: Int64, vectors: HostMatrix)]) -> HostMatrix {
        let values = docs.flatMap(\.vectors.values)
        return HostMatrix(rows: values.count / docs[0].vectors.cols, cols: docs[0].vectors.cols, values: values)
    }

    @Test func trainingOnTheFirstHalfStaysWithinToleranceOfTrainingOnEverything() throws {
        let (corpus, all) = Self.corpus()
        let serialDirectory = temporaryDirectory("serial"), streamedDirectory = temporaryDirectory("streamed")
        defer { cleanUp(serialDirectory); cleanUp(streamedDirectory) }
        let config = testConfig()
        let serial = try PlaidIndex.create(at: serialDirectory, documents: all, config: config, backend: nil)

        let builder = StreamedIndexBuilder(directory: streamedDirectory, config: config, plannedDocuments: all.count)
        var steps: [StreamedIndexBuilder.Step] = []
        for start in stride(from: 0, to: all.count, by: 50) {
            let end = min(all.count, start + 50)
            steps.append(try builder.add(Array(all[start..<end]), mustPersist: end == all.count, backend: nil))
        }
        let streamed = try #require(builder.index)
        // Trained once, before the end, on at most the training share; appended from there on.
        let created = try #require(steps.firstIndex(of: .created))
        #expect(created < steps.count - 1 && created >= 1)
        #expect(steps[..<created].allSatisfy { $0 == .held } && steps[(created + 1)...].allSatisfy { $0 == .appended })
        #expect(streamed.documentCount == all.count)
        // K for the whole run, and no retrain as the rest came in.
        #expect(streamed.centroidCount == serial.centroidCount)
        let tokens = all.reduce(0) { $0 + $1.vectors.rows }
        #expect(streamed.tokensAtTraining >= tokens * 9 / 10)
        // No merges above an eighth of the planned build: the training segment and one per later chunk.
        let ceiling = try #require(streamed.mergeCeiling)
        #expect(ceiling >= tokens / 10 && ceiling <= tokens / 6)
        #expect(streamed.segmentCount == 1 + (steps.count - 1 - created))
        #expect(try PlaidIndex.open(at: streamedDirectory).mergeCeiling == nil)

        let serialRecall = recall(index: serial, corpus: corpus), streamedRecall = recall(index: streamed, corpus: corpus)
        #expect(streamedRecall >= serialRecall - 0.05, "streamed \(streamedRecall) vs serial \(serialRecall)")
        #expect(streamedRecall >= 0.9)
        let vectors = Self.allVectors(all)
        let serialCosine = try serial.reconstructionCosine(vectors), streamedCosine = try streamed.reconstructionCosine(vectors)
        #expect(streamedCosine >= serialCosine - 0.01, "streamed \(streamedCosine) vs serial \(serialCosine)")
        #expect(streamedCosine > 0.9)
    }

    /// Asynchronous writes (each group encoded while the one before is written): the same segments, ids,
    /// codes and search results as writing in `add`; a body queued with `afterWrites` after a persisting add
    /// sees every document on disk.
    @Test func asynchronousWritesBuildTheSameIndexAndPersistBeforeAfterWrites() throws {
        let (corpus, all) = Self.corpus()
        let syncDirectory = temporaryDirectory("sync"), asyncDirectory = temporaryDirectory("async")
        defer { cleanUp(syncDirectory); cleanUp(asyncDirectory) }
        let sync = StreamedIndexBuilder(directory: syncDirectory, config: testConfig(), plannedDocuments: all.count)
        let async = StreamedIndexBuilder(directory: asyncDirectory, config: testConfig(), plannedDocuments: all.count, asynchronousWrites: true)
        let written = LockedCounter()
        async.onWritten = { stages in
            written.add(1)
            #expect(stages.contains { $0.stage.hasPrefix("encode") } && stages.contains { $0.stage == "segment write" })
        }
        var onDisk: [Int] = []
        let seen = LockedCounter()
        for start in stride(from: 0, to: all.count, by: 20) {
            let end = min(all.count, start + 20)
            let persist = end % 100 == 0 || end == all.count
            let a = try sync.add(Array(all[start..<end]), mustPersist: persist, backend: nil)
            let b = try async.add(Array(all[start..<end]), mustPersist: persist, backend: nil)
            #expect(a == b)
            if persist {
                onDisk.append(end)
                async.afterWrites { seen.check(expected: end, found: (try? PlaidIndex.open(at: asyncDirectory).documentCount) ?? -1) }
            }
        }
        try async.finishWrites()
        #expect(seen.recorded == onDisk)
        #expect(seen.mismatches == 0)
        #expect(written.value >= 2)
        let left = try #require(sync.index), right = try PlaidIndex.open(at: asyncDirectory)
        #expect(right.documentCount == all.count && right.segmentCount == left.segmentCount)
        #expect(Set(right.documentIDs) == Set(left.documentIDs))
        for query in corpus.queries.prefix(8) {
            #expect(right.search(query: query, topK: 10).map(\.id) == left.search(query: query, topK: 10).map(\.id))
        }
    }

    /// Checkpoint groups (every few chunks persist, as the product's checkpoints do) stay unmerged up to
    /// `mergeFreeSegments`, and searches return exactly what the same build with merges returns: the
    /// same ids with the same scores, and the same ids in every segment order.
    @Test func checkpointGroupsStayUnmergedWithTheSameSearchResults() throws {
        let (corpus, all) = Self.corpus()
        let unmergedDirectory = temporaryDirectory("unmerged"), mergedDirectory = temporaryDirectory("merged")
        defer { cleanUp(unmergedDirectory); cleanUp(mergedDirectory) }
        let unmerged = StreamedIndexBuilder(directory: unmergedDirectory, config: testConfig(), plannedDocuments: all.count)
        let merged = StreamedIndexBuilder(directory: mergedDirectory, config: testConfig(), plannedDocuments: all.count)
        var appends = 0
        for start in stride(from: 0, to: all.count, by: 20) {
            let end = min(all.count, start + 20)
            let persist = end >= 200
            let step = try unmerged.add(Array(all[start..<end]), mustPersist: persist, backend: nil)
            #expect(try merged.add(Array(all[start..<end]), mustPersist: persist, backend: nil) == step)
            // The peer merges as every write did before (the log-structured rule under the same ceiling).
            if step == .created { merged.index?.mergeFreeSegments = nil }
            if step == .appended { appends += 1 }
        }
        let left = try #require(unmerged.index), right = try #require(merged.index)
        #expect(appends >= 4 && 1 + appends <= StreamedIndexBuilder.mergeFreeSegments)
        #expect(left.segmentCount == 1 + appends)
        #expect(right.segmentCount < left.segmentCount)
        #expect(left.documentCount == all.count && right.documentCount == all.count)
        let reopened = try PlaidIndex.open(at: unmergedDirectory)
        #expect(reopened.segmentCount == left.segmentCount && reopened.mergeFreeSegments == nil)
        for query in corpus.queries {
            let a = reopened.search(query: query, topK: 10), b = right.search(query: query, topK: 10)
            #expect(a.map(\.id) == b.map(\.id))
            #expect(a.map(\.score) == b.map(\.score))
        }
    }

    @Test func persistingCreatesTheIndexFromWhatIsHeld() throws {
        let (_, all) = Self.corpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let builder = StreamedIndexBuilder(directory: directory, config: testConfig(), plannedDocuments: all.count)
        #expect(try builder.add(Array(all[0..<10]), mustPersist: false, backend: nil) == .held)
        #expect(builder.index == nil && !FileManager.default.fileExists(atPath: directory.path))
        // A checkpoint is due: the ten held documents must be on disk now, trained or not.
        #expect(try builder.add(Array(all[10..<20]), mustPersist: true, backend: nil) == .created)
        #expect(try PlaidIndex.open(at: directory).documentCount == 20)
        // Too few to append alone (well under half the merge ceiling): held, until the next checkpoint.
        #expect(try builder.add(Array(all[20..<30]), mustPersist: false, backend: nil) == .held)
        #expect(try PlaidIndex.open(at: directory).documentCount == 20)
        #expect(try builder.add(Array(all[30..<40]), mustPersist: true, backend: nil) == .appended)
        #expect(try PlaidIndex.open(at: directory).documentCount == 40)
    }

    @Test func smallChunksAreAppendedInGroupsOfHalfTheMergeCeiling() throws {
        let (corpus, all) = Self.corpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let builder = StreamedIndexBuilder(directory: directory, config: testConfig(), plannedDocuments: all.count)
        var steps: [StreamedIndexBuilder.Step] = []
        for start in stride(from: 0, to: all.count, by: 5) {
            let end = min(all.count, start + 5)
            steps.append(try builder.add(Array(all[start..<end]), mustPersist: end == all.count, backend: nil))
        }
        let index = try #require(builder.index)
        let created = try #require(steps.firstIndex(of: .created))
        let appends = steps[(created + 1)...].filter { $0 == .appended }.count
        // 5-document chunks (~160 vectors) against a ceiling of ~1,600: about five chunks per append.
        let later = steps.count - 1 - created
        #expect(appends >= 2 && appends <= later / 3 && steps.last == .appended)
        #expect(index.documentCount == all.count && index.segmentCount <= appends + 1)
        #expect(try PlaidIndex.open(at: directory).documentCount == all.count)
        #expect(recall(index: index, corpus: corpus) >= 0.9)
    }

    @Test func theTrainingTargetIsAShareOfTheProjectedRunOrEnoughPointsForK() throws {
        let (_, all) = Self.corpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        var config = testConfig()
        config.maxCentroids = 16
        config.maxPointsPerCentroid = 4
        let builder = StreamedIndexBuilder(directory: directory, config: config, plannedDocuments: 4 * 100, trainingShare: 0.5)
        let first = Array(all[0..<1])
        #expect(try builder.add(first, mustPersist: false, backend: nil) == .held || builder.index != nil)
        // Projection: 400 documents at the first one's length.
        #expect(builder.projectedPlan == CodecPlan(tokens: first[0].vectors.rows * 400, documents: 400))
        // K capped at 16 with 4 points each: 64 vectors suffice, far below half the projected run.
        #expect(builder.trainingTarget == 64)
        let loose = StreamedIndexBuilder(directory: directory, config: testConfig(), plannedDocuments: 0, trainingShare: 0.5)
        #expect(loose.trainingTarget == 1)
    }
}

/// A counter and a log shared with the builder's write queue in tests.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var log: [Int] = []
    private var bad = 0

    var value: Int { lock.withLock { count } }
    var recorded: [Int] { lock.withLock { log } }
    var mismatches: Int { lock.withLock { bad } }

    func add(_ n: Int) { lock.withLock { count += n } }
    /// Logs `expected`, counting a mismatch when `found` (documents on disk then) differs.
    func check(expected: Int, found: Int) {
        lock.withLock {
            log.append(expected)
            if found != expected { bad += 1 }
        }
    }
}
