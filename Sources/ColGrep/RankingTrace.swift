import CodeUnits
import Foundation
import Store

/// What one search saw before re-ranking, recorded when `COLGREP_TRACE_JSON` names a file (one JSON
/// object per line, appended): both candidate lists of every hybrid pass with the fields the re-ranker
/// reads. `colgrep debug replay-ranking` re-ranks these offline, so ranking rules can be tuned on the
/// dev split without re-encoding anything.
public struct RankingTrace: Codable, Sendable {
    public struct Pass: Codable, Sendable {
        public var query: String
        public var keywordQuery: String
        public var searchTopK: Int
        public var fetchK: Int
        public var alpha: Double
        public var keywordOnly: Bool
        public var subset: [Int64]?
        public var semantic: [[Double]]
        public var keyword: [[Double]]
        public var units: [RankedUnit]
    }

    /// Keyword hits a traced pass records, as a multiple of its `searchTopK` (the live search uses
    /// `RankingKnobs.keywordDepth` of them; a replay may use up to this many).
    public static let keywordDepth = 12

    public var query: String
    public var topK: Int
    /// `--fts-only`: re-ranked with the keyword-only weights.
    public var ftsOnly: Bool
    /// `--code-only`: document units (Markdown, text) are dropped from the results.
    public var codeOnly: Bool?
    public var passes: [Pass]

    /// The results a search with these passes returns: the first pass, merged per file with the
    /// second (the units that hold the query verbatim) when there is one, best first, `topK` files.
    /// `codeOnly` applies to traces that did not record the flag.
    public func replay(knobs: RankingKnobs, alpha: Double? = nil, codeOnly: Bool = false) -> [RankedUnit] {
        let ranker = Ranker.identifiers(knobs: ftsOnly ? knobs.forKeywordOnly : knobs)
        let ranked = passes.map { pass -> [RankedUnit] in
            let byID = Dictionary(pass.units.map { ($0.docID, $0) }, uniquingKeysWith: { a, _ in a })
            func scored(_ rows: [[Double]]) -> [HybridFusion.Scored] { rows.map { (id: Int64($0[0]), score: $0[1]) } }
            let keyword = scored(Array(pass.keyword.prefix(pass.searchTopK * ranker.knobs.keywordDepth)))
            return HybridFusion.rank(semantic: scored(pass.semantic), keyword: keyword, alpha: alpha ?? pass.alpha,
                                     keywordOnly: pass.keywordOnly, subset: pass.subset.map(Set.init), fetchK: pass.fetchK,
                                     topK: pass.searchTopK, query: pass.keywordQuery.isEmpty ? pass.query : pass.keywordQuery,
                                     ranker: ranker) { fused in
                fused.compactMap { item in byID[item.id].map { var u = $0; u.score = item.score; return u } }
            }
        }
        guard var merged = ranked.first else { return [] }
        if ranked.count > 1 { merged = Ranker.mergePerFile(merged, ranked[1]) }
        var results = Ranker.sorted(merged)
        if self.codeOnly ?? codeOnly { results.removeAll { $0.unitType == UnitType.document.rawValue } }
        return Array(results.prefix(topK))
    }

    /// Appends one line to `path`; tracing must never fail a search, so errors are dropped.
    func append(to path: String) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: data + Data("\n".utf8))
    }
}
