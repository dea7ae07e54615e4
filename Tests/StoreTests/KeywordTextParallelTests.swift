import Testing
@testable import Store

/// Keyword texts and array columns prepared on several workers before the insert are those each record
/// derives alone, in order (the FTS5 'delete' of a later update needs exactly the indexed text).
@Suite struct KeywordTextParallelTests {
    @Test func preparedRecordsMatchEachRecordsOwn() {
        let records = syntheticCorpus(count: 300) + [fullRecord(9_999)]
        for workers in [1, 4] {
            let prepared = PreparedRecords(records, workers: workers)
            #expect(prepared.records == records)
            #expect(prepared.keywordTexts == records.map(\.keywordText))
            #expect(prepared.arrays == records.map { PreparedRecords.ArrayColumns($0) })
            #expect(prepared.arrays.map { String(decoding: $0.calls, as: UTF8.self) } == records.map { StringArrayJSON.encode($0.calls) })
        }
        #expect(PreparedRecords([]).keywordTexts.isEmpty)
    }
}
