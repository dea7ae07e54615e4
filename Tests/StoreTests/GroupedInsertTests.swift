import Foundation
import Testing
@testable import Store

/// Rows inserted as several prepared parts in one transaction (the indexing pipeline's writer when it is
/// behind) are stored and scored exactly as rows inserted one call per record, and a bad part fails the
/// whole group with nothing written.
@Suite struct GroupedInsertTests {
    @Test func groupedPartsStoreAndScoreLikeSeparateInserts() throws {
        let records = syntheticCorpus(count: 120) + [fullRecord(500)]
        let grouped = try TemporaryDirectory(), single = try TemporaryDirectory()
        defer { grouped.cleanup(); single.cleanup() }
        // One keyword shard (whatever COLGREP_KEYWORD_SHARDS says): its stages are the unsharded writer's.
        let a = try MetadataStore(path: grouped.database, readOnly: false, keywordShards: 1)
        try a.insert([PreparedRecords(Array(records[..<50])), PreparedRecords([]), PreparedRecords(Array(records[50...]), workers: 3)])
        #expect(a.insertStages.map(\.stage) == ["replace check", "rows", "rows: unit_content", "keyword index", "commit",
                                                "rows + keyword index, thread cpu", "rows + keyword index, thread system cpu",
                                                "rows + keyword index, waiting for a core", "commit, thread cpu",
                                                "commit, waiting for a core"])
        // The CPU figures are the writer thread's own time over the same spans, so never above their wall
        // time (an absolute thread clock, or the whole process's CPU, would break this).
        let seconds = Dictionary(uniqueKeysWithValues: a.insertStages.map { ($0.stage, $0.seconds) })
        let loopCPU = seconds["rows + keyword index, thread cpu"] ?? -1, commitCPU = seconds["commit, thread cpu"] ?? -1
        #expect(loopCPU > 0 && loopCPU <= (seconds["rows"] ?? 0) + (seconds["keyword index"] ?? 0) + 0.01)
        #expect(commitCPU >= 0 && commitCPU <= (seconds["commit"] ?? 0) + 0.01)
        // The content table's inserts are part of the rows' time.
        let content = seconds["rows: unit_content"] ?? -1
        #expect(content > 0 && content <= seconds["rows"] ?? 0)
        // The kernel's share is part of the thread's CPU; waiting for a core happens inside the wall span.
        let systemCPU = seconds["rows + keyword index, thread system cpu"] ?? -1
        #expect(systemCPU >= 0 && systemCPU <= loopCPU + 0.01)
        let waiting = seconds["rows + keyword index, waiting for a core"] ?? -1
        #expect(waiting >= 0 && waiting <= (seconds["rows"] ?? 0) + (seconds["keyword index"] ?? 0) + 0.01)
        let b = try MetadataStore(path: single.database, readOnly: false)
        for record in records { try b.insert([record]) }
        let ids = records.map(\.docID)
        #expect(try a.records(docIDs: ids) == b.records(docIDs: ids))
        for query in ["handler options", "finish input", "result", "parse_config"] {
            let left = try a.bm25(query: query, limit: 50, within: nil), right = try b.bm25(query: query, limit: 50, within: nil)
            #expect(left.map(\.docID) == right.map(\.docID), "\(query)")
            #expect(left.map(\.score) == right.map(\.score), "\(query)")
        }
        try a.verifyIntegrity()
    }

    @Test func aDuplicateIdAcrossPartsFailsTheWholeGroup() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        let records = syntheticCorpus(count: 10)
        #expect(throws: StoreError.self) {
            try store.insert([PreparedRecords(Array(records[..<6])), PreparedRecords([records[5]] + Array(records[6...]))])
        }
        #expect(try store.count == 0)
        try store.insert([PreparedRecords(Array(records[..<6])), PreparedRecords(Array(records[6...]))])
        #expect(try store.count == 10)
    }
}
