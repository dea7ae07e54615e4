import Foundation

/// The part of a hybrid search that runs once both sides have answered: fusion of the semantic and
/// keyword lists, then the re-ranker. Pure (the unit lookup is passed in), so a search and
/// `colgrep debug replay-ranking` (which re-ranks recorded candidates offline) share every rule.
public enum HybridFusion {
    public typealias Scored = (id: Int64, score: Double)

    /// Fuses, looks the fused ids up (`units`, in fused order, unknown ids dropped) and re-ranks to at
    /// most `topK` files. `subset`: a keyword-only ranking lists the subset's unscored units after the
    /// scored ones, as a semantic search over the subset would.
    public static func rank(semantic: [Scored], keyword: [Scored], alpha: Double, keywordOnly: Bool,
                            subset: Set<Int64>?, fetchK: Int, topK: Int, query: String, ranker: Ranker,
                            units: ([Scored]) throws -> [RankedUnit]) rethrows -> [RankedUnit] {
        var fused = keywordOnly
            ? Ranker.fuse(semantic: [], keyword: keyword, alpha: 0, limit: fetchK)
            : Ranker.fuse(semantic: semantic, keyword: keyword, alpha: alpha, limit: fetchK, rrfK: ranker.knobs.rrfK)
        if keywordOnly, let subset, fused.count < min(fetchK, subset.count) {
            let scored = Set(fused.map(\.id))
            fused += subset.subtracting(scored).sorted().prefix(fetchK - fused.count).map { (id: $0, score: 0.0) }
        }
        return ranker.rerank(try units(fused), query: query, topK: topK)
    }

    /// How many fused candidates a search re-ranks for `topK` results over `documents` units.
    public static func fetchDepth(topK: Int, documents: Int) -> Int {
        min(max(topK * 20, 200), max(documents, topK))
    }
}
