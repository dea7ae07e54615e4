import Foundation
import Testing
@testable import Store

@Suite struct KeywordWriteSettingsTests {
    /// `key`'s value in the FTS5 configuration of every keyword table of `store` (nil where it is unset).
    private func settings(_ key: String, of store: MetadataStore) throws -> [Int64?] {
        try store.shards.indexes.map { shard in
            let table = KeywordShards.tableName(shard)
            let statement = try store.shards.connection(shard, main: store.connection)
                .statement("SELECT v FROM \(table)_config WHERE k = ?")
            defer { statement.reset() }
            statement.bind(1, key)
            return try statement.step() ? statement.int64(0) : nil
        }
    }

    @Test(arguments: [1, 3])
    func bulkWritesStopMergingAndSmallWritesMergeAgain(shardCount: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: shardCount)
        let tables = store.shards.indexes.count
        try store.insert(syntheticCorpus(count: KeywordWriteSettings.bulkRows))
        #expect(try settings("automerge", of: store) == Array(repeating: KeywordWriteSettings.bulkAutomerge, count: tables))
        #expect(try settings("hashsize", of: store) == Array(repeating: KeywordWriteSettings.hashBytes, count: tables))
        try store.insert(syntheticCorpus(count: 5, startID: 10_000))
        #expect(try settings("automerge", of: store) == Array(repeating: KeywordWriteSettings.trickleAutomerge, count: tables))
        try store.verifyIntegrity()
    }

    @Test func aSmallFirstWriteLeavesMergingAtFTS5sDefault() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        try store.insert(syntheticCorpus(count: 10))
        // FTS5's default (4) is not written: an absent row.
        #expect(try settings("automerge", of: store) == [nil, nil])
        #expect(try settings("hashsize", of: store) == [KeywordWriteSettings.hashBytes, KeywordWriteSettings.hashBytes])
    }

    /// BM25 depends on the rows, not on how FTS5 laid them out in segments: bulk writes (unmerged segments)
    /// and a trickle of small writes (merged as they go) rank every query the same.
    @Test func bulkAndTrickleWritesRankAlike() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let corpus = syntheticCorpus(count: 1_500)
        let bulk = try MetadataStore(path: dir.url.appendingPathComponent("bulk.db"), readOnly: false, keywordShards: 2)
        let trickle = try MetadataStore(path: dir.url.appendingPathComponent("trickle.db"), readOnly: false, keywordShards: 2)
        for start in stride(from: 0, to: corpus.count, by: 750) {
            try bulk.insert(Array(corpus[start..<min(corpus.count, start + 750)]))
        }
        for start in stride(from: 0, to: corpus.count, by: 50) {
            try trickle.insert(Array(corpus[start..<min(corpus.count, start + 50)]))
        }
        #expect(try settings("automerge", of: bulk) == [0, 0])
        for query in ["parse config", "render session token", "helper3 input", "flushGraph", "validate_cache", "absentword"] {
            let a = try bulk.bm25(query: query, limit: 40, within: nil)
            let b = try trickle.bm25(query: query, limit: 40, within: nil)
            #expect(a.map(\.docID) == b.map(\.docID), "\(query)")
            for (x, y) in zip(a, b) { #expect(abs(x.score - y.score) <= 1e-9 * max(1, abs(x.score)), "\(query)") }
        }
        #expect(try bulk.bm25(query: "parse config", limit: 40, within: nil).count == 40)
    }
}
