import Foundation
import Testing
@testable import ColGrep

/// The re-ranker's memo (what a query server keeps between searches) changes no score: the same pools
/// re-rank to the same bytes with a memo, a warm memo, and none, for both plural settings.
@Suite struct RankerMemoTests {
    static let files = ["src/retry.py", "src/retrying_client.py", "tests/test_http.py", "pkg/server_test.go", "types/index.d.ts",
                        "pkg/__init__.py", "examples/compat/x.py", "src/main/java/tools/ObjectNode.java", "lib/string_utils.rb",
                        "docs/ünïcödé/naïve_parser.go", "a//b/.hidden", "x/", "StringUtils.swift", "src/app.spec.ts", "http_clients.rs"]
    static let names = ["fetchWithRetry", "ObjectNode", "parse_args", "retry", "HTTPClient", "x", "__init__", "StringUtils"]
    static let queries = ["retry with backoff", "object node", "parse command line arguments", "http client tests", "string utils",
                          "StringUtils", "the", ""]

    func pool(_ seed: Int) -> [RankedUnit] {
        (0..<40).map { i in
            let k = (i * 7 + seed) % Self.files.count
            let type = ["function", "method", "class", "rawcode", "constant"][(i + seed) % 5]
            return RankedUnit(docID: Int64(i), file: Self.files[k], name: Self.names[(i + seed) % Self.names.count], unitType: type,
                              line: i * 3 + 1, endLine: i * 3 + 4, score: Double((i * 37 + seed * 11) % 97) / 97 + 0.01)
        }
    }

    @Test func aMemoChangesNoRanking() {
        for plural in [true, false] {
            var knobs = RankingKnobs()
            knobs.stemPluralSnake = plural
            let plain = Ranker(knobs: knobs, tokenize: IdentifierTokenizerBridge.tokenize)
            var memoized = plain
            memoized.memo = RankerMemo()
            for seed in 0..<6 {
                for query in Self.queries {
                    let expected = plain.rerank(pool(seed), query: query, topK: 10)
                    #expect(memoized.rerank(pool(seed), query: query, topK: 10) == expected, "plural \(plural) seed \(seed) \(query)")
                    // Warm: every path and name is now answered from the memo.
                    #expect(memoized.rerank(pool(seed), query: query, topK: 10) == expected, "warm, plural \(plural) seed \(seed) \(query)")
                }
            }
            for file in Self.files {
                #expect(memoized.pathPenalty(file: file) == plain.pathPenalty(file: file), "\(file)")
            }
            #expect(memoized.memo!.count > 0)
        }
    }

    @Test func theProductionRankerUsesTheSharedMemo() {
        let ranker = Ranker.identifiers(knobs: RankingKnobs())
        #expect(ranker.memo === RankerMemo.identifiers)
        _ = ranker.rerank(pool(1), query: "retry with backoff", topK: 5)
        #expect(RankerMemo.identifiers.count > 0)
    }

    @Test func aFullTableStartsOver() {
        let memo = RankerMemo(maxEntries: 50)
        let ranker = Ranker(tokenize: IdentifierTokenizerBridge.tokenize)
        for i in 0..<55 { _ = memo.nameTokens("n\(i)", ranker: ranker) }
        #expect(memo.count <= 50)
        #expect(memo.nameTokens("fooBar", ranker: ranker) == ranker.nameTokens("fooBar"))
    }
}

/// The keyword index's splitter, as the product's ranker uses it.
enum IdentifierTokenizerBridge {
    static func tokenize(_ text: String) -> [String] { Ranker.identifiers(knobs: RankingKnobs()).tokenize(text) }
}
