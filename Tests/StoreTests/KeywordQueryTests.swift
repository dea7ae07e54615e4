import Testing
@testable import Store

@Suite struct KeywordQueryTests {
    @Test func stopWordsAreDroppedFromNaturalLanguageQueries() {
        #expect(KeywordQuery.match("how does the Router handle middleware") == "\"router\" OR \"handle\" OR \"middleware\"")
        #expect(MetadataStore.keywordQuery("what is the parse_config for") == "\"parse_config\" OR \"parse\" OR \"config\"")
    }

    @Test func aQueryOfOnlyStopWordsKeepsThem() {
        #expect(KeywordQuery.match("the to") == "\"the\" OR \"to\"")
        #expect(KeywordQuery.match("  ") == nil)
    }

    /// Stop words are dropped from the query only: the store still indexes them, so a unit whose
    /// text is only "the" is found by the query "the" and not by "the parser".
    @Test func bm25IgnoresStopWordsOfAMixedQuery() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false)
        try store.insert([
            UnitRecord(docID: 1, file: "a.py", name: "a", qualifiedName: "a", line: 1, endLine: 1, language: "python", unitType: "function", code: "the the the the"),
            UnitRecord(docID: 2, file: "b.py", name: "b", qualifiedName: "b", line: 1, endLine: 1, language: "python", unitType: "function", code: "parser"),
        ])
        #expect(try store.bm25(query: "the parser", limit: 10, within: nil).map(\.docID) == [2])
        #expect(try store.bm25(query: "the", limit: 10, within: nil).map(\.docID) == [1])
    }
}
