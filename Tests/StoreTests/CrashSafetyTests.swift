import Foundation
import Testing
@testable import Store

/// Environment variable that turns the re-launched test binary into a writer that kills itself.
private let childVariable = "COLGREP_STORE_CRASH_CHILD"

/// The committed state a crashed writer must leave intact.
private struct Snapshot: Equatable {
    var count: Int
    var records: [UnitRecord]
    var keywordHits: [[Int64]]
    var regexHits: Set<Int64>

    init(_ store: MetadataStore) throws {
        count = try store.count
        records = try store.records(docIDs: Array(0..<220))
        keywordHits = try ["parse config", "helper7", "render session result", "called_by_marker"].map { query in
            try store.bm25(query: query, limit: 500, within: nil).map(\.docID)
        }
        regexHits = try store.docIDs(whereCodeMatches: "^    let render_", caseSensitive: true)
    }
}

@Suite struct CrashSafetyTests {
    /// Not a test of its own: the body of the child process the tests below launch. It opens the
    /// store named in the environment, starts the write named there and SIGKILLs itself inside it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childVariable] != nil))
    func crashingWriterChild() throws {
        let parts = ProcessInfo.processInfo.environment[childVariable]!.split(separator: "|").map(String.init)
        let store = try MetadataStore(path: URL(fileURLWithPath: parts[0]), readOnly: false)
        // A small page cache makes the open transaction spill pages to the WAL before the kill.
        try store.connection.execute("PRAGMA cache_size=-1000")
        let killAt: (MetadataStore.FaultPoint, Int)
        switch parts[1] {
        case "insert": killAt = (.insertedRow, 2500)
        case "delete": killAt = (.deletedBatch, 100)
        case "shardsCommitted": killAt = (.shardsCommitted, 0)
        default: killAt = (.updatedCalledBy, 150)
        }
        // "insertShardsAhead": the row writer is killed mid-insert once every shard file has committed beside
        // it (`EarlyShardCommits`); it waits for those commits, which the shard writers make without it.
        let shardsCommitted = LockedValue(0), counting = NSLock()
        let shardFiles = store.shards.fileIndexes.count
        // "lookahead": killed once keyword rows queued ahead are in a shard file, uncommitted, after the
        // write before them returned (committed everywhere).
        let returned = LockedValue(false)
        store.faultHook = { point, index in
            if parts[1] == "lookahead" {
                guard point == .keywordRowsInsertedAhead else { return }
                for _ in 0..<1000 where !returned.value { usleep(10_000) }
                if returned.value { kill(getpid(), SIGKILL) }
                return
            }
            if parts[1] == "insertShardsAhead" {
                if point == .shardCommittedBesideRows { counting.withLock { shardsCommitted.set(shardsCommitted.value + 1) } }
                guard point == .insertedRow && index == 2500 else { return }
                for _ in 0..<1000 where shardsCommitted.value < shardFiles { usleep(10_000) }
                if shardsCommitted.value == shardFiles { kill(getpid(), SIGKILL) }
                return
            }
            if point == killAt.0 && index == killAt.1 { kill(getpid(), SIGKILL) }
        }
        switch parts[1] {
        case "insert", "shardsCommitted", "insertShardsAhead": try store.insert(syntheticCorpus(count: 3000, startID: 10_000))
        case "lookahead":
            try store.insert(syntheticCorpus(count: 10, startID: 10_000))
            returned.set(true)
            store.queueAhead(PreparedRecords(syntheticCorpus(count: 3000, startID: 20_000))) {}
            Thread.sleep(forTimeInterval: 10)
        case "delete": try store.delete(docIDs: Array(0..<100))
        default:
            try store.updateCalledBy(Dictionary(uniqueKeysWithValues: (0..<200).map { (Int64($0), ["new_caller_\($0)"]) }))
        }
        Issue.record("the fault hook did not fire")
    }

    /// A kill while the shard files hold keyword rows queued ahead, not committed (`KeywordLookahead`): the
    /// last write stays whole, the rows ahead leave nothing, and readers never find the shards out of step
    /// (no repair is needed).
    @Test func writerKilledWithRowsInsertedAheadLeavesTheLastWrite() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
            try store.insert(syntheticCorpus(count: 200))
        }
        try runCrashingChild(database: dir.database, operation: "lookahead")
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.count == 210)
        // Keyword reads work at once (the shards are in step) and know the last write, not the rows ahead.
        #expect(try reader.bm25(query: "parse config", limit: 1000, within: nil).contains { $0.docID >= 10_000 && $0.docID < 10_010 })
        #expect(try !reader.bm25(query: "parse config", limit: 1000, within: nil).contains { $0.docID >= 20_000 })
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        try writer.verifyIntegrity()
        try writer.insert(syntheticCorpus(count: 3000, startID: 20_000))
        #expect(try writer.count == 3210)
        #expect(try writer.bm25(query: "parse config", limit: 5000, within: nil).contains { $0.docID >= 20_000 })
    }

    /// A kill inside the write transaction (one keyword shard, or two written by two threads; the insert
    /// with its shard files committing after the rows, so that nothing of it is committed), and with two
    /// shards a kill after the shard files committed but before the main database did: once after the rows
    /// (`shardsCommitted`), once mid-rows, the shard files having committed beside them (`insertShardsAhead`).
    @Test(arguments: [("insert", 1), ("delete", 1), ("calledBy", 1), ("insert", 2), ("delete", 2), ("calledBy", 2),
                      ("shardsCommitted", 2), ("insertShardsAhead", 2)])
    func writerKilledMidTransactionLeavesTheCommittedStateReadable(operation: String, shardCount: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let before: Snapshot
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: shardCount)
            try store.insert(syntheticCorpus(count: 200))
            try store.updateCalledBy([3: ["called_by_marker"]])
            before = try Snapshot(store)
        }
        #expect(before.count == 200)
        #expect(before.keywordHits.allSatisfy { !$0.isEmpty })

        try runCrashingChild(database: dir.database, operation: operation,
                             environment: operation == "insert" ? ["COLGREP_SHARD_COMMITS_BESIDE_ROWS": "0"] : [:])
        // The killed writer left its uncommitted pages in the WAL (or nothing at all).
        let wal = dir.database.path + "-wal"
        if operation.hasPrefix("insert") {
            let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
            #expect(walSize > 1_000_000, "the insert never reached the disk before the kill (WAL \(walSize) bytes)")
        }

        // Readers and the next writer see exactly the last committed state, and it is sound. A shard file
        // committed ahead of the main database: readers refuse keyword reads (never a mismatched answer)
        // until a writer's open rebuilds the shard from the rows.
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        if operation == "shardsCommitted" || operation == "insertShardsAhead" {
            #expect(throws: StoreError.self) { _ = try reader.bm25(query: "parse config", limit: 10, within: nil) }
            #expect(try reader.count == before.count)
        } else {
            #expect(try Snapshot(reader) == before)
        }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        #expect(writer.shards.count == shardCount)
        #expect(try Snapshot(MetadataStore(path: dir.database, readOnly: true)) == before)
        #expect(try Snapshot(writer) == before)
        try writer.verifyIntegrity()
        // And it accepts writes again.
        try writer.insert(syntheticCorpus(count: 10, startID: 50_000))
        #expect(try writer.count == 210)
    }

    /// Runs `crashingWriterChild` in a child process on `database` for `operation` and expects it killed mid-write.
    private func runCrashingChild(database: URL, operation: String, environment: [String: String] = [:]) throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "CrashSafetyTests/crashingWriterChild"]
        child.environment = ProcessInfo.processInfo.environment
            .merging(environment.merging([childVariable: "\(database.path)|\(operation)"]) { $1 }) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal && child.terminationStatus == SIGKILL,
                "the child exited with \(child.terminationStatus) instead of being killed mid-write (\(operation))")
    }
}
