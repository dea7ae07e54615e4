import Testing
@testable import Store

/// Keyword texts built on several workers before the insert are those each record derives alone, in
/// order (the FTS5 'delete' of a later update needs exactly the indexed text).
@Suite struct KeywordTextParallelTests {
    @Test func parallelKeywordTextsMatchEachRecordsOwn() {
        let records = syntheticCorpus(count: 300) + [fullRecord(9_999)]
        let texts = MetadataStore.keywordTexts(records)
        #expect(texts.count == records.count)
        #expect(texts == records.map(\.keywordText))
        #expect(MetadataStore.keywordTexts([]) == [])
    }
}
