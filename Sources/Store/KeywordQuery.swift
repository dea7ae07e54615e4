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

    /// Distinct keyword tokens that any text containing `literal` verbatim must also yield: the tokens of
    /// the identifiers lying wholly inside it, between its first and last non-identifier byte. Identifier
    /// scanning is memoryless once it meets a byte outside `[A-Za-z0-9_]`, so from the literal's first
    /// such byte on, a text holding the literal is split into the same identifiers until the literal's last
    /// such byte, whatever surrounds it; the first and last runs may be parts of longer identifiers there
    /// (`retry` in `doRetry`) and are left out. Empty when the literal has no whole identifier.
    public static func wholeIdentifierTokens(of literal: String) -> [String] {
        let bytes = Array(literal.utf8)
        func isIdentifierByte(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 || b &- 0x30 < 10 || b == 0x5F }
        guard let first = bytes.firstIndex(where: { !isIdentifierByte($0) }),
              let last = bytes.lastIndex(where: { !isIdentifierByte($0) }), first < last else { return [] }
        // Non-identifier bytes (including every byte of a multi-byte character) only separate: decoding a
        // slice that cuts one repairs it into other separators, which changes no identifier.
        var seen = Set<String>()
        return IdentifierTokenizer.tokenize(String(decoding: bytes[first...last], as: UTF8.self)).filter { seen.insert($0).inserted }
    }
}
