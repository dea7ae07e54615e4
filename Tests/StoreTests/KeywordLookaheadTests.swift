import Foundation
import Testing
@testable import Store

/// Keyword rows queued ahead on the shard threads (`KeywordLookahead`): the same index as writes without
/// them, and nothing left behind when no write takes them.
@Suite struct KeywordLookaheadTests {
    private let queries = ["parse config", "helper7", "render session result", "decode token", "flush graph"]

    private func parts(_ sizes: [Int]) -> [PreparedRecords] {
        var start: Int64 = 0
        return sizes.map { size in
            defer { start += Int64(size) }
            return PreparedRecords(syntheticCorpus(count: size, startID: start))
        }
    }

    private func hits(_ store: MetadataStore) throws -> [[Int64]] {
        try queries.map { try store.bm25(query: $0, limit: 2000, within: nil).map(\.docID) }
    }

    @Test func writesOfPartsQueuedAheadGiveTheSameIndex() throws {
        let p = parts([300, 250, 120, 80, 50, 40])
        let ahead = try TemporaryDirectory(), plain = try TemporaryDirectory()
        defer { ahead.cleanup(); plain.cleanup() }
        let store = try MetadataStore(path: ahead.database, readOnly: false, keywordShards: 3)
        let reference = try MetadataStore(path: plain.database, readOnly: false, keywordShards: 3)
        for part in p { try reference.insert([part]) }
        // Before any write nothing is queued ahead (the write takes whatever waits); it opens the lookahead.
        store.queueAhead(p[0]) {}
        let first = try store.insert(takingGroup: { queued in #expect(queued == Int.max); return [p[0]] })
        #expect(first.count == 1)
        // One part queued ahead, written alone.
        store.queueAhead(p[1]) {}
        _ = try store.insert(takingGroup: { queued in #expect(queued == 1); return [p[1]] })
        // Two parts queued ahead, written with a third that was not.
        store.queueAhead(p[2]) {}
        store.queueAhead(p[3]) {}
        _ = try store.insert(takingGroup: { queued in #expect(queued == 2); return [p[2], p[3], p[4]] })
        _ = try store.insert(takingGroup: { queued in #expect(queued == Int.max); return [p[5]] })
        #expect(store.writesInsertedAhead == 2)
        #expect(try store.count == 840)
        #expect(try hits(store) == hits(reference))
        #expect(try hits(store).allSatisfy { !$0.isEmpty })
        try store.verifyIntegrity()
        #expect(try hits(MetadataStore(path: ahead.database, readOnly: true)) == hits(reference))
    }

    @Test func partsQueuedAheadOfAWriteThatDoesNotComeLeaveNothing() throws {
        // The part queued ahead is large, so that its rows are still going in when the store is released
        // (its `deinit` must wait for them and roll them back; it must not run on the shard thread itself,
        // which left the shard file locked when the queued part held the store).
        let p = parts([300, 4000])
        let dir = try TemporaryDirectory(), reference = try TemporaryDirectory()
        defer { dir.cleanup(); reference.cleanup() }
        let expected = try MetadataStore(path: reference.database, readOnly: false, keywordShards: 2)
        try expected.insert([p[0]])
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
            try store.insert([p[0]])
            store.queueAhead(p[1]) {}
            // While the rows ahead are open, a reader sees the committed state, shards in step.
            #expect(try hits(MetadataStore(path: dir.database, readOnly: true)) == hits(expected))
            store.queueAhead(PreparedRecords(syntheticCorpus(count: 4000, startID: 50_000))) {}
        }
        // The store was released with rows ahead open or still going in: they were rolled back.
        let reopened = try MetadataStore(path: dir.database, readOnly: false)
        #expect(try reopened.count == 300)
        #expect(try hits(reopened) == hits(expected))
        try reopened.verifyIntegrity()
        try reopened.insert([p[1]])
        #expect(try reopened.count == 4300)
    }

    @Test func aWriteOfOtherPartsOrAnyOtherUseDropsThePartsQueuedAhead() throws {
        let p = parts([200, 200, 200, 10, 10])
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        try store.insert([p[0]])
        // A group that does not start with the part queued ahead: that part's rows are rolled back.
        store.queueAhead(p[1]) {}
        _ = try store.insert(takingGroup: { _ in [p[2]] })
        #expect(try !store.bm25(query: "parse config", limit: 2000, within: nil).contains { (200..<400).contains($0.docID) })
        // A delete drops what is queued ahead and closes the lookahead until the next write of new parts.
        store.queueAhead(p[1]) {}
        try store.delete(docIDs: [0, 1])
        store.queueAhead(p[3]) {}
        _ = try store.insert(takingGroup: { queued in #expect(queued == Int.max); return [p[1], p[3]] })
        // A keyword read on the writer's store with rows ahead: it sees the committed rows only.
        store.queueAhead(p[4]) {}
        #expect(try !store.bm25(query: "parse config", limit: 2000, within: nil).contains { $0.docID >= 610 })
        _ = try store.insert(takingGroup: { queued in #expect(queued == Int.max); return [p[4]] })
        #expect(store.writesInsertedAhead == 0)
        #expect(try store.count == 618)
        try store.verifyIntegrity()
        let reference = try TemporaryDirectory()
        defer { reference.cleanup() }
        let expected = try MetadataStore(path: reference.database, readOnly: false, keywordShards: 2)
        for part in [p[0], p[2], p[1], p[3], p[4]] { try expected.insert([part]) }
        try expected.delete(docIDs: [0, 1])
        #expect(try hits(store) == hits(expected))
    }

    @Test func partsReplacingStoredDocumentsTakeTheGeneralPath() throws {
        let p = parts([200])
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        try store.insert([p[0]])
        let replacement = PreparedRecords(syntheticCorpus(count: 200, startID: 0).map { record in
            var changed = record
            changed.code += "\n// replaced_marker"
            return changed
        })
        // Queued ahead like any part; the write finds its documents stored and replaces them instead.
        store.queueAhead(replacement) {}
        _ = try store.insert(takingGroup: { queued in #expect(queued == 1); return [replacement] })
        #expect(store.writesInsertedAhead == 0)
        #expect(try store.count == 200)
        #expect(try store.bm25(query: "replaced_marker", limit: 1000, within: nil).count == 200)
        try store.verifyIntegrity()
    }

    @Test func anUnshardedStoreOnlyFilesTheParts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 1)
        let part = PreparedRecords(syntheticCorpus(count: 20))
        var filed = 0
        store.queueAhead(part) { filed += 1 }
        #expect(filed == 1)
        _ = try store.insert(takingGroup: { queued in #expect(queued == 0); return [part] })
        #expect(try store.count == 20 && store.writesInsertedAhead == 0)
    }
}
