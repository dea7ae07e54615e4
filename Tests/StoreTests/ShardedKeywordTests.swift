import Foundation
import Testing
@testable import Store

/// A deterministic generator (SplitMix64) so every corpus and query set is reproducible.
private struct SeededRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// Words of a random corpus: a Zipf-like mix (a few very common, many rare), plus `onlyinshardzero`
/// that appears only in documents of one shard (doc id divisible by the shard count).
private let vocabulary = (0..<60).map { "word\($0)" } + ["parse", "config", "render", "session", "helper", "token_stream"]

private func randomCorpus(seed: UInt64, count: Int, shardCount: Int) -> [UnitRecord] {
    var random = SeededRandom(state: seed)
    return (0..<count).map { i in
        let docID = Int64(i * 3 + random.below(3))  // gaps, so shards are not a plain stripe
        var words: [String] = []
        for _ in 0..<(1 + random.below(40)) {
            // Squaring skews toward the front of the vocabulary: common and rare words, repeats within a row.
            let pick = random.below(vocabulary.count)
            words.append(vocabulary[pick * pick / vocabulary.count])
        }
        if docID % Int64(shardCount) == 0 && random.below(4) == 0 { words.append("onlyinshardzero") }
        return unit(docID, file: "src/f\(i % 7).swift", name: "unit\(i)", code: words.joined(separator: " "))
    }
}

/// The MATCH expressions the comparison runs: single terms, several terms, a repeated term, AND, a
/// phrase, a term in one shard only, a term in no row.
private func rawQueries() -> [String] {
    ["\"word0\"", "\"word3\" OR \"word17\"", "\"parse\" OR \"config\" OR \"render\" OR \"word59\"",
     "\"word1\" OR \"word1\"", "\"word2\" AND \"word5\"", "\"word0 word1\"", "\"onlyinshardzero\"",
     "\"onlyinshardzero\" OR \"word40\"", "\"token_stream\"", "\"absentword\"", "\"absentword\" OR \"word9\""]
}

/// Product-form queries (`KeywordQuery.match`): natural language, identifiers, stop words.
private let productQueries = ["parse config", "how does the render session work", "helper token_stream word4",
                              "word12 word12 word33", "the", "renderSession word7"]

@Suite struct ShardedKeywordTests {
    private func expectSameRanking(_ single: [(docID: Int64, score: Double)], _ sharded: [(docID: Int64, score: Double)],
                                   _ what: String) {
        #expect(single.map(\.docID) == sharded.map(\.docID), "order differs for \(what)")
        for (a, b) in zip(single, sharded) {
            #expect(abs(a.score - b.score) <= 1e-9 * max(abs(a.score), 1e-12), "score of \(a.docID) for \(what): \(a.score) vs \(b.score)")
        }
    }

    private func compareAll(_ single: MetadataStore, _ sharded: MetadataStore, seed: UInt64) throws {
        for match in rawQueries() {
            for limit in [1, 5, 10_000] {
                expectSameRanking(try single.bm25(match: match, limit: limit, within: nil),
                                  try sharded.bm25(match: match, limit: limit, within: nil), "\(match) limit \(limit) seed \(seed)")
            }
            let subset = Set(try single.allDocIDs().filter { $0 % 5 != 1 })
            expectSameRanking(try single.bm25(match: match, limit: 7, within: subset),
                              try sharded.bm25(match: match, limit: 7, within: subset), "\(match) in a subset seed \(seed)")
        }
        for query in productQueries {
            expectSameRanking(try single.bm25(query: query, limit: 50, within: nil),
                              try sharded.bm25(query: query, limit: 50, within: nil), "\(query) seed \(seed)")
        }
    }

    @Test(arguments: [(UInt64(1), 2), (UInt64(2), 3), (UInt64(3), 4), (UInt64(4), 2), (UInt64(5), 16)])
    func shardedScoresEqualOneTablesBM25(seed: UInt64, shardCount: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let corpus = randomCorpus(seed: seed, count: 400, shardCount: shardCount)
        let single = try MetadataStore(path: dir.url.appendingPathComponent("single.db"), readOnly: false, keywordShards: 1)
        let sharded = try MetadataStore(path: dir.url.appendingPathComponent("sharded.db"), readOnly: false, keywordShards: shardCount)
        #expect(sharded.shards.count == shardCount)
        // Two inserts, so a shard holds several FTS5 segments.
        for store in [single, sharded] {
            try store.insert(Array(corpus.prefix(250)))
            try store.insert(Array(corpus.dropFirst(250)))
        }
        #expect(try single.bm25(match: "\"onlyinshardzero\"", limit: 1000, within: nil).allSatisfy { $0.docID % Int64(shardCount) == 0 })
        try compareAll(single, sharded, seed: seed)

        // Deletes, replacements and called-by updates go to the right shards and keep the scores equal.
        let doomed = corpus.map(\.docID).filter { $0 % 7 == 3 }
        let replaced = randomCorpus(seed: seed + 100, count: 60, shardCount: shardCount).enumerated().map { index, record in
            var copy = record
            copy.docID = corpus[index * 5].docID
            return copy
        }
        for store in [single, sharded] {
            try store.delete(docIDs: doomed)
            try store.insert(replaced)
            try store.updateCalledBy([corpus[1].docID: ["word3", "render"], corpus[2].docID: ["onlyinshardzero"]])
        }
        try compareAll(single, sharded, seed: seed)

        // Readers see the same as the writer.
        let reader = try MetadataStore(path: dir.url.appendingPathComponent("sharded.db"), readOnly: true)
        #expect(reader.shards.count == shardCount)
        try compareAll(single, reader, seed: seed)
        #expect(try reader.docIDs(whereCodeContains: "word1 word2") == single.docIDs(whereCodeContains: "word1 word2"))
        try sharded.verifyIntegrity()
    }

    @Test func shardCountComesFromTheEnvironmentOrTheCores() {
        #expect(KeywordShards.defaultCount(cores: 2, environment: [:]) == 1)
        #expect(KeywordShards.defaultCount(cores: 4, environment: [:]) == 1)
        #expect(KeywordShards.defaultCount(cores: 8, environment: [:]) == 2)
        #expect(KeywordShards.defaultCount(cores: 16, environment: [:]) == 4)
        #expect(KeywordShards.defaultCount(cores: 32, environment: [:]) == 8)
        #expect(KeywordShards.defaultCount(cores: 64, environment: [:]) == 16)
        #expect(KeywordShards.defaultCount(cores: 192, environment: [:]) == KeywordShards.maximum)
        #expect(KeywordShards.defaultCount(cores: 2, environment: ["COLGREP_KEYWORD_SHARDS": "3"]) == 3)
        #expect(KeywordShards.defaultCount(cores: 2, environment: ["COLGREP_KEYWORD_SHARDS": "99"]) == KeywordShards.maximum)
    }

    @Test func anExistingStoreKeepsItsShardCount() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 3)
            try store.insert(syntheticCorpus(count: 30))
        }
        let reopened = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 1)
        #expect(reopened.shards.count == 3)
        #expect(try reopened.bm25(query: "parse config", limit: 5, within: nil).count == 5)
    }

    @Test func aMissingOrForeignShardFileIsRebuiltByAWriterAndRefusedByAReader() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let corpus = syntheticCorpus(count: 120)
        let expected: [Int64]
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
            try store.insert(corpus)
            expected = try store.bm25(query: "render session", limit: 200, within: nil).map(\.docID)
        }
        let shardFile = KeywordShards.fileURL(main: dir.database, shard: 1)
        // A shard file of another store put in its place.
        let other = try TemporaryDirectory()
        defer { other.cleanup() }
        do {
            let foreign = try MetadataStore(path: other.database, readOnly: false, keywordShards: 2)
            try foreign.insert(syntheticCorpus(count: 5))
        }
        try FileManager.default.removeItem(at: shardFile)
        try FileManager.default.copyItem(at: KeywordShards.fileURL(main: other.database, shard: 1), to: shardFile)
        #expect(throws: StoreError.self) { _ = try MetadataStore(path: dir.database, readOnly: true) }
        do {
            let writer = try MetadataStore(path: dir.database, readOnly: false)
            #expect(try writer.bm25(query: "render session", limit: 200, within: nil).map(\.docID) == expected)
        }
        // A missing one.
        try FileManager.default.removeItem(at: shardFile)
        do {
            _ = try MetadataStore(path: dir.database, readOnly: true)
            Issue.record("a store without its shard file opened for reading")
        } catch let error as StoreError {
            guard case .needsMigration = error else { Issue.record("got \(error)"); return }
        }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        #expect(try writer.bm25(query: "render session", limit: 200, within: nil).map(\.docID) == expected)
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.bm25(query: "render session", limit: 200, within: nil).map(\.docID) == expected)
    }

    @Test func aNewStoreRemovesShardFilesOfAnEarlierOne() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 4)
            try store.insert(syntheticCorpus(count: 40))
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.database.path + suffix) }
        let fresh = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        #expect(try fresh.bm25(query: "parse config", limit: 10, within: nil).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: KeywordShards.fileURL(main: dir.database, shard: 3).path))
        try fresh.insert(syntheticCorpus(count: 10))
        #expect(!(try fresh.bm25(query: "parse", limit: 50, within: nil)).isEmpty)
    }

    @Test func aStoreOfTheUnshardedLayoutIsMigratedInPlace() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let expected: [Int64]
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 1)
            try store.insert(syntheticCorpus(count: 50))
            expected = try store.bm25(query: "parse config", limit: 100, within: nil).map(\.docID)
            // Back to the session-8 layout: version 1, no shard facts.
            try store.connection.execute("DELETE FROM meta WHERE key IN ('keyword_shards', 'store_id'); PRAGMA user_version=1")
        }
        do {
            _ = try MetadataStore(path: dir.database, readOnly: true)
            Issue.record("a version-1 store opened for reading")
        } catch let error as StoreError {
            guard case .needsMigration = error else { Issue.record("got \(error)"); return }
        }
        let writer = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 4)
        #expect(writer.shards.count == 1)
        #expect(try writer.connection.scalarInt("PRAGMA user_version") == Int64(Schema.version))
        #expect(try writer.bm25(query: "parse config", limit: 100, within: nil).map(\.docID) == expected)
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.bm25(query: "parse config", limit: 100, within: nil).map(\.docID) == expected)
    }
}
