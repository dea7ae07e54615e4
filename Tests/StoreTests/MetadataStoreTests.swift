import Foundation
import Testing
@testable import Store

@Suite struct MetadataStoreTests {
    @Test func everyFieldRoundTrips() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var sparse = unit(9, file: "a.swift", name: "", code: "")
        sparse.docstring = nil
        let records = [fullRecord(3), fullRecord(1), sparse]
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false)
            try store.insert(records)
        }
        // Reopened read-only: what was committed is what comes back, in the requested order.
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.records(docIDs: [9, 3, 1]) == [sparse, fullRecord(3), fullRecord(1)])
        #expect(try reader.records(docIDs: [1, 77, 3]).map(\.docID) == [1, 3])
        #expect(try reader.count == 3)
        #expect(try reader.maxDocID() == 9)
        #expect(try reader.allFiles() == ["a.swift", "src/net/client_1.rs", "src/net/client_3.rs"])
        #expect(throws: StoreError.readOnly(path: dir.database.path)) { try reader.insert([fullRecord(5)]) }
    }

    /// Writers get the measured 4 MiB page cache (unless `COLGREP_STORE_CACHE_MIB` is set) in WAL mode;
    /// readers map the file and refuse writes.
    @Test func writerAndReaderConnectionsGetTheirPragmas() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let writer = try SQLiteConnection(path: dir.database.path, readOnly: false)
        try MetadataStore.applyPragmas(writer, readOnly: false)
        if ProcessInfo.processInfo.environment["COLGREP_STORE_CACHE_MIB"] == nil {
            #expect(MetadataStore.writerCacheKiB == 4096)
        }
        #expect(try writer.scalarInt("PRAGMA cache_size") == Int64(-MetadataStore.writerCacheKiB))
        #expect(try writer.scalarInt("PRAGMA synchronous") == 1)  // NORMAL
        try writer.execute("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
        let reader = try SQLiteConnection(path: dir.database.path, readOnly: true)
        try MetadataStore.applyPragmas(reader, readOnly: true)
        #expect(try reader.scalarInt("PRAGMA query_only") == 1)
        #expect(try reader.scalarInt("PRAGMA cache_size") != Int64(-MetadataStore.writerCacheKiB))
    }

    @Test func insertingAnExistingIdReplacesIt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        try store.insert([unit(1, file: "a.swift", name: "oldName", code: "legacyWidget()")])
        try store.insert([unit(1, file: "b.swift", name: "newName", code: "freshGadget()")])
        #expect(try store.count == 1)
        #expect(try store.records(docIDs: [1]).first?.name == "newName")
        #expect(try store.bm25(query: "legacyWidget", limit: 10, within: nil).isEmpty)
        #expect(try store.bm25(query: "freshGadget", limit: 10, within: nil).map(\.docID) == [1])
        try store.verifyIntegrity()
    }

    /// Which ids are stored: an empty store and ids above every stored one answer without the per-id
    /// probe; ids within the stored range still find exactly the stored ones, gaps included.
    @Test func storedIdsAreFoundWhereverTheyLie() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        #expect(try store.storedDocIDs([0, 5, 9]).isEmpty)
        try store.insert(syntheticCorpus(count: 10, startID: 10) + syntheticCorpus(count: 10, startID: 30))
        #expect(try store.storedDocIDs([]).isEmpty)
        #expect(try store.storedDocIDs([40, 41, 1000]).isEmpty)
        #expect(try store.storedDocIDs([39, 40]) == [39])
        #expect(try store.storedDocIDs([9, 20, 25]).isEmpty)
        #expect(try Set(store.storedDocIDs([1000, 10, 29, 30, 19])) == [10, 30, 19])
        // A replacing group still replaces, and a group above the stored ids is added.
        try store.insert(syntheticCorpus(count: 2, startID: 39) + syntheticCorpus(count: 1, startID: 50))
        #expect(try store.count == 22)
        try store.verifyIntegrity()
    }

    @Test func bm25RanksTheDocumentWithTheIdentifierFirst() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        try store.insert([
            unit(10, file: "x.swift", name: "render", code: "func render() { draw(frame) }"),
            unit(11, file: "y.swift", name: "parseHandlerStack", code: "func parseHandlerStack() { handler_stack.push(parse(x)) }"),
            unit(12, file: "z.swift", name: "handle", code: "func handle() { stack.pop() }"),
            unit(13, file: "w.swift", name: "unrelated", code: "let a = b + c"),
        ])
        let hits = try store.bm25(query: "handler stack", limit: 10, within: nil)
        #expect(hits.first?.docID == 11)
        #expect(Set(hits.map(\.docID)) == [11, 12])
        #expect(hits.allSatisfy { $0.score > 0 })
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
        // The bigram is its own term: only the unit with `handler_stack` / `HandlerStack` has it.
        #expect(try store.bm25(query: "handler_stack", limit: 10, within: nil).first?.docID == 11)
        // Subset restriction and limit.
        #expect(try store.bm25(query: "handler stack", limit: 10, within: [12, 13]).map(\.docID) == [12])
        #expect(try store.bm25(query: "handler stack", limit: 1, within: nil).map(\.docID) == [11])
        #expect(try store.bm25(query: "handler stack", limit: 10, within: []).isEmpty)
        #expect(try store.bm25(query: "+++ 42", limit: 10, within: nil).isEmpty)
        // FTS5 syntax in the query text is never interpreted (tokens are quoted).
        #expect(try store.bm25(query: "render\" OR NEAR(", limit: 10, within: nil).first?.docID == 10)
    }

    @Test func deletesKeepTheKeywordIndexConsistentWithoutRebuilding() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        let corpus = syntheticCorpus(count: 300)
        try store.insert(corpus)
        // Delete ids from the middle (not a suffix): the reference had to rebuild FTS here.
        let deleted = Set(stride(from: Int64(5), to: 300, by: 3))
        try store.delete(docIDs: Array(deleted) + [99_999])
        #expect(try store.count == 300 - deleted.count)
        for query in ["parseConfig", "helper3", "render token", "validate session result"] {
            let hits = try store.bm25(query: query, limit: 1000, within: nil).map(\.docID)
            #expect(!hits.isEmpty)
            #expect(deleted.isDisjoint(with: hits))
        }
        // Surviving ids keep their numbers (no re-sequencing) and their keyword rows.
        let survivor = corpus[7]
        #expect(try store.records(docIDs: [7]) == [survivor])
        #expect(try store.bm25(query: survivor.name, limit: 1, within: nil).first?.docID == 7)
        try store.verifyIntegrity()
        // Re-adding under fresh ids works after deletes.
        try store.insert(syntheticCorpus(count: 5, startID: 1000))
        #expect(try store.count == 300 - deleted.count + 5)
        try store.verifyIntegrity()
    }

    @Test func subsetFiltersByFilePrefixRegexAndFileList() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        try store.insert([
            unit(1, file: "src/a.swift", name: "a", code: "a"),
            unit(2, file: "src/sub/b.swift", name: "b", code: "b"),
            unit(3, file: "src2/c.rs", name: "c", code: "c"),
            unit(4, file: "tests/d_test.swift", name: "d", code: "d"),
            unit(5, file: "src/a.swift", name: "e", code: "e"),
            unit(6, file: "src%_x/f.swift", name: "f", code: "f"),
        ])
        #expect(try store.docIDs(filePrefix: "src/") == [1, 2, 5])
        #expect(try store.docIDs(filePrefix: "src") == [1, 2, 3, 5, 6])
        #expect(try store.docIDs(filePrefix: "src%_") == [6])
        #expect(try store.docIDs(filePrefix: "") == [1, 2, 3, 4, 5, 6])
        #expect(try store.docIDs(fileMatchingRegex: #"\.swift$"#) == [1, 2, 4, 5, 6])
        #expect(try store.docIDs(fileMatchingRegex: #"(^|/)sub/"#) == [2])
        #expect(try store.docIDs(fileMatchingRegex: #"\.SWIFT$"#) == [])
        #expect(try store.docIDs(inFiles: ["src/a.swift", "src2/c.rs", "nope"]) == [1, 3, 5])
        #expect(try store.allDocIDs() == [1, 2, 3, 4, 5, 6])
    }

    @Test func calledByRefreshUpdatesRecordAndKeywordIndex() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        var a = unit(1, file: "a.swift", name: "alpha", code: "func alpha() { beta() }")
        a.calls = ["beta"]
        let b = unit(2, file: "b.swift", name: "beta", code: "func beta() {}")
        try store.insert([a, b])
        let rows = try store.namesAndCalls()
        #expect(rows.map(\.docID) == [1, 2])
        #expect(rows.map(\.name) == ["alpha", "beta"])
        #expect(rows.map(\.calls) == [["beta"], []])
        // The filtered forms an update uses: callers of given names, documents of given names.
        #expect(try store.namesAndCalls(callingAnyOf: ["beta", "nobody"]).map(\.docID) == [1])
        #expect(try store.namesAndCalls(callingAnyOf: ["alpha"]).isEmpty)
        #expect(try store.namesAndCalls(callingAnyOf: []).isEmpty)
        #expect(try store.docIDs(namedAnyOf: ["beta", "gamma"]).map(\.docID) == [2])
        #expect(try store.docIDs(namedAnyOf: []).isEmpty)
        #expect(try store.bm25(query: "gammaCaller", limit: 5, within: nil).isEmpty)
        try store.updateCalledBy([2: ["alpha", "gammaCaller"], 404: ["ghost"]])
        #expect(try store.records(docIDs: [2]).first?.calledBy == ["alpha", "gammaCaller"])
        #expect(try store.bm25(query: "gammaCaller", limit: 5, within: nil).map(\.docID) == [2])
        try store.updateCalledBy([2: []])
        #expect(try store.bm25(query: "gammaCaller", limit: 5, within: nil).isEmpty)
        try store.verifyIntegrity()
    }

    @Test func productValuesPersist() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        do {
            let store = try MetadataStore(path: dir.database, readOnly: false)
            try store.setValue("42", forKey: "next_doc_id")
            try store.setValue("x", forKey: "gone")
            try store.setValue(nil, forKey: "gone")
        }
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.value(forKey: "next_doc_id") == "42")
        #expect(try reader.value(forKey: "gone") == nil)
    }

    @Test func readOnlyOpenOfAMissingStoreSaysSo() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(throws: StoreError.missing(path: dir.database.path)) {
            _ = try MetadataStore(path: dir.database, readOnly: true)
        }
    }
}
