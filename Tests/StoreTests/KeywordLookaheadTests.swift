import Foundation
import Testing
@testable import Store

/// The next write's keyword rows inserted ahead on the shard threads (`KeywordLookahead`): the same index
/// as writes without them, and nothing left behind when the write they were for does not come.
@Suite struct KeywordLookaheadTests {
    private let queries = ["parse config", "helper7", "render session result", "decode token", "flush graph"]

    private func groups(_ sizes: [Int]) -> [PreparedRecords] {
        var start: Int64 = 0
        return sizes.map { size in
            defer { start += Int64(size) }
            return PreparedRecords(syntheticCorpus(count: size, startID: start))
        }
    }

    private func hits(_ store: MetadataStore) throws -> [[Int64]] {
        try queries.map { try store.bm25(query: $0, limit: 2000, within: nil).map(\.docID) }
    }

    @Test func writesWithRowsInsertedAheadGiveTheSameIndex() throws {
        let parts = groups([300, 250, 400, 50])
        let ahead = try TemporaryDirectory(), plain = try TemporaryDirectory()
        defer { ahead.cleanup(); plain.cleanup() }
        let withLookahead = try MetadataStore(path: ahead.database, readOnly: false, keywordShards: 3)
        let without = try MetadataStore(path: plain.database, readOnly: false, keywordShards: 3)
        for (n, part) in parts.enumerated() {
            try withLookahead.insert([part], lookahead: n + 1 < parts.count ? [parts[n + 1]] : [])
            try without.insert([part])
        }
        #expect(withLookahead.writesInsertedAhead == 3)
        #expect(without.writesInsertedAhead == 0)
        #expect(try withLookahead.count == 1000)
        #expect(try hits(withLookahead) == hits(without))
        #expect(try hits(withLookahead).allSatisfy { !$0.isEmpty })
        try withLookahead.verifyIntegrity()
        // A reader of the finished store agrees.
        #expect(try hits(MetadataStore(path: ahead.database, readOnly: true)) == hits(without))
    }

    @Test func rowsAheadOfAWriteThatDoesNotComeLeaveNothing() throws {
        let parts = groups([300, 300])
        let dir = try TemporaryDirectory(), reference = try TemporaryDirectory()
        defer { dir.cleanup(); reference.cleanup() }
        let expected = try MetadataStore(path: reference.database, readOnly: false, keywordShards: 2)
        try expected.insert([parts[0]])
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
            try store.insert([parts[0]], lookahead: [parts[1]])
            // While the rows ahead are open, a reader sees the committed state, shards in step.
            let reader = try MetadataStore(path: dir.database, readOnly: true)
            #expect(try hits(reader) == hits(expected))
        }
        // The store closed with the rows ahead open: they were rolled back.
        let reopened = try MetadataStore(path: dir.database, readOnly: false)
        #expect(try reopened.count == 300)
        #expect(try hits(reopened) == hits(expected))
        try reopened.verifyIntegrity()
        try reopened.insert([parts[1]])
        #expect(try reopened.count == 600)
    }

    @Test func anotherWriteOrReadFirstDropsTheRowsAhead() throws {
        let parts = groups([200, 200, 200])
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        // A write of other rows than the ones inserted ahead.
        try store.insert([parts[0]], lookahead: [parts[1]])
        try store.insert([parts[2]])
        #expect(store.writesInsertedAhead == 0)
        #expect(try !store.bm25(query: "parse config", limit: 2000, within: nil).contains { (200..<400).contains($0.docID) })
        // A delete, then the rows that had been inserted ahead, written after all.
        try store.insert([PreparedRecords(syntheticCorpus(count: 10, startID: 5_000))], lookahead: [parts[1]])
        try store.delete(docIDs: [5_000, 5_001])
        try store.insert([parts[1]])
        #expect(store.writesInsertedAhead == 0)
        #expect(try store.count == 608)
        // A keyword read on the writer's own store while rows are ahead: it sees the committed rows only.
        try store.insert([PreparedRecords(syntheticCorpus(count: 10, startID: 6_000))],
                         lookahead: [PreparedRecords(syntheticCorpus(count: 10, startID: 7_000))])
        #expect(try !store.bm25(query: "parse config", limit: 2000, within: nil).contains { $0.docID >= 7_000 })
        try store.verifyIntegrity()
        let reference = try TemporaryDirectory()
        defer { reference.cleanup() }
        let expected = try MetadataStore(path: reference.database, readOnly: false, keywordShards: 2)
        for part in [parts[0], parts[2], parts[1]] { try expected.insert([part]) }
        try expected.insert([PreparedRecords(syntheticCorpus(count: 10, startID: 5_000).filter { $0.docID > 5_001 })])
        try expected.insert([PreparedRecords(syntheticCorpus(count: 10, startID: 6_000))])
        #expect(try hits(store) == hits(expected))
    }

    @Test func storedDocumentsAreNeverInsertedAhead() throws {
        let parts = groups([200, 200])
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        try store.insert([parts[0]])
        // The next write replaces stored documents: it takes the general path, which deletes them first.
        let replacement = PreparedRecords(syntheticCorpus(count: 200, startID: 0).map { record in
            var changed = record
            changed.code += "\n// replaced_marker"
            return changed
        })
        try store.insert([parts[1]], lookahead: [replacement])
        try store.insert([replacement])
        #expect(store.writesInsertedAhead == 0)
        #expect(try store.count == 400)
        #expect(try store.bm25(query: "replaced_marker", limit: 1000, within: nil).count == 200)
        try store.verifyIntegrity()
    }
}
