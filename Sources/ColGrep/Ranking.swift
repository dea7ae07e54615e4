import Foundation
import Store

/// One candidate unit during re-ranking: just the fields the rules read.
public struct RankedUnit: Sendable, Equatable, Codable {
    public var docID: Int64
    public var file: String
    public var name: String
    public var unitType: String
    public var line: Int
    public var endLine: Int
    public var score: Double

    public init(docID: Int64, file: String, name: String, unitType: String, line: Int, endLine: Int, score: Double) {
        self.docID = docID
        self.file = file
        self.name = name
        self.unitType = unitType
        self.line = line
        self.endLine = endLine
        self.score = score
    }
}

/// Every weight of the re-ranker (reference §2.5), each overridable by its environment variable.
public struct RankingKnobs: Sendable, Equatable {
    public var strongPenalty = 0.30
    public var moderatePenalty = 0.50
    public var mildPenalty = 0.70
    /// Stem boost of hybrid and semantic rankings (the reference's 0.40: on the dev split a larger one
    /// let partly matching stems such as `middleware.go` crowd out the semantic signal).
    public var stemBoost = 0.40
    /// Stem boost of keyword-only rankings (`--fts-only`), tuned on the dev split: without a semantic
    /// side, a file named after the query is the strongest single signal (FTS-only NDCG@10 +0.01).
    public var keywordOnlyStemBoost = 0.80
    public var stemPrefixBoost = 0.20
    public var definitionBoost = 0.25
    /// A definition whose whole name is the query (a symbol lookup such as `BaseModel`). Not in the
    /// reference, where a huge class lost to small units that merely mention its name.
    public var definitionExactBoost = 1.0
    /// Tuned on the dev split (reference 0.20).
    public var coherenceBoost = 0.30
    public var stemStopwords = true
    public var stemPluralSnake = true
    /// BM25 hits fetched for fusion, as a multiple of the requested results (reference: 3).
    public var keywordDepth = 3
    /// Units of the fused pool, best first, whose scores count toward a file's coherence boost. nil:
    /// as many as the re-ranker may return (its `topK`); 0: the whole pool, as the reference. Tuned
    /// on the dev split: summed over the whole pool (up to 800 units for `-k 10`, most of them from deep
    /// in the semantic list), a file with hundreds of weak units — nlohmann-json's `json.hpp` — outranked
    /// the file that answers the query (hybrid macro NDCG@10 0.8385 → 0.8444 over the 20 repos).
    public var coherenceDepth: Int? = nil
    /// Hybrid fusion by reciprocal ranks with this constant; nil (`COLGREP_RRF_K=0`): the reference's
    /// min-max score fusion. Tuned on the dev split with `debug replay-ranking` (same candidates,
    /// macro NDCG@10 over 20 repos): min-max α 0.60 0.8421 → RRF k 10, α 0.55 0.8514, better on 13
    /// repos and worse on 6. A small k keeps the fused list top-heavy: k 30 gave 0.838, k 60 0.833.
    public var rrfK: Double? = 10

    public init() {}

    /// The weights for a keyword-only ranking (`--fts-only`): the keyword-only stem boost.
    public var forKeywordOnly: RankingKnobs {
        var k = self
        k.stemBoost = keywordOnlyStemBoost
        return k
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> RankingKnobs {
        var k = RankingKnobs()
        func read(_ key: String, _ into: inout Double) {
            if let t = env[key], let v = Double(t) { into = v }
        }
        read("COLGREP_STRONG_PENALTY", &k.strongPenalty)
        read("COLGREP_MODERATE_PENALTY", &k.moderatePenalty)
        read("COLGREP_MILD_PENALTY", &k.mildPenalty)
        read("COLGREP_STEM_BOOST", &k.stemBoost)
        read("COLGREP_FTS_STEM_BOOST", &k.keywordOnlyStemBoost)
        read("COLGREP_STEM_PREFIX_BOOST", &k.stemPrefixBoost)
        read("COLGREP_DEF_BOOST", &k.definitionBoost)
        read("COLGREP_DEF_EXACT_BOOST", &k.definitionExactBoost)
        read("COLGREP_COHERENCE_BOOST", &k.coherenceBoost)
        if let t = env["COLGREP_KEYWORD_DEPTH"], let v = Int(t), v > 0 { k.keywordDepth = v }
        if let t = env["COLGREP_COHERENCE_DEPTH"], let v = Int(t), v >= 0 { k.coherenceDepth = v }
        if let t = env["COLGREP_RRF_K"], let v = Double(t) { k.rrfK = v > 0 ? v : nil }
        if let t = env["COLGREP_STEM_STOPWORDS"] { k.stemStopwords = !(t == "0" || t.lowercased() == "false") }
        if let t = env["COLGREP_STEM_PLURAL_SNAKE"] { k.stemPluralSnake = !(t == "0" || t.lowercased() == "false") }
        return k
    }
}

/// Fusion and re-ranking of semantic and keyword hits (reference §2.5 steps 4–10).
public struct Ranker {
    public var knobs: RankingKnobs
    /// Identifier splitter shared with the keyword index (`tokenize_identifiers`).
    public var tokenize: (String) -> [String]
    /// Per-path and per-name results kept across searches (what depends on a file path or a unit name
    /// alone, never on the query); nil computes them for every search. Its results must come from
    /// `tokenize`: `RankerMemo.identifiers` goes with `IdentifierTokenizer.tokenize`.
    var memo: RankerMemo?

    public init(knobs: RankingKnobs = RankingKnobs(), tokenize: @escaping (String) -> [String]) {
        self.knobs = knobs
        self.tokenize = tokenize
    }

    /// The production ranker: the keyword index's identifier splitter, with the process's memo of it
    /// (a query server then tokenizes each file stem and unit name once, not once per search).
    public static func identifiers(knobs: RankingKnobs) -> Ranker {
        var ranker = Ranker(knobs: knobs, tokenize: IdentifierTokenizer.tokenize)
        ranker.memo = .identifiers
        return ranker
    }

    /// Min-max relative-score fusion: each list scaled to [0,1] (an all-equal list → 1.0),
    /// `α·sem + (1−α)·kw`, a missing side contributes 0. Without keyword hits the semantic
    /// scores pass through unchanged. Sorted by score (then id), truncated to `limit`.
    /// With `rrfK`, reciprocal ranks `1/(k + rank)` (rank 1 = best) take the scores' place before the same
    /// weighting: `α/(k + rank_sem) + (1−α)/(k + rank_kw)`.
    public static func fuse(semantic: [(id: Int64, score: Double)], keyword: [(id: Int64, score: Double)],
                            alpha: Double, limit: Int, rrfK: Double? = nil) -> [(id: Int64, score: Double)] {
        if keyword.isEmpty {
            return Array(semantic.sorted(by: Self.byScore).prefix(limit))
        }
        func normalized(_ list: [(id: Int64, score: Double)]) -> [Int64: Double] {
            let ordered = list.sorted(by: Self.byScore)
            var out: [Int64: Double] = [:]
            if let k = rrfK {
                for (rank, item) in ordered.enumerated() where out[item.id] == nil { out[item.id] = 1 / (k + Double(rank + 1)) }
                return out
            }
            guard let hi = ordered.first?.score, let lo = ordered.last?.score else { return [:] }
            for item in ordered {
                let v = hi > lo ? (item.score - lo) / (hi - lo) : 1.0
                out[item.id] = max(out[item.id] ?? 0, v)
            }
            return out
        }
        let sem = normalized(semantic)
        let kw = normalized(keyword)
        var fused: [(id: Int64, score: Double)] = []
        for id in Set(sem.keys).union(kw.keys) {
            fused.append((id, alpha * (sem[id] ?? 0) + (1 - alpha) * (kw[id] ?? 0)))
        }
        return Array(fused.sorted(by: Self.byScore).prefix(limit))
    }

    static func byScore(_ a: (id: Int64, score: Double), _ b: (id: Int64, score: Double)) -> Bool {
        a.score != b.score ? a.score > b.score : a.id < b.id
    }

    /// Steps 6–10: path penalty, stem boost, definition boost, coherence boost, sort, collapse to
    /// one unit per file (its span widened by the file's other units), at most `topK` files.
    public func rerank(_ units: [RankedUnit], query: String, topK: Int) -> [RankedUnit] {
        var pool = units
        applyPathPenalty(&pool, query: query)
        applyStemBoost(&pool, query: query)
        applyDefinitionBoost(&pool, query: query)
        applyCoherenceBoost(&pool, depth: knobs.coherenceDepth ?? topK)
        return Self.collapseByFile(Self.sorted(pool), topK: topK)
    }

    /// Sort by score desc, tie-break (file, line, end_line).
    public static func sorted(_ units: [RankedUnit]) -> [RankedUnit] {
        units.sorted { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.file != b.file { return a.file < b.file }
            if a.line != b.line { return a.line < b.line }
            return a.endLine < b.endLine
        }
    }

    // MARK: path penalty

    /// Multiplicative factor for a file path; each category applies once.
    public func pathPenalty(file: String) -> Double {
        let traits = memo?.pathTraits(file) ?? PathTraits(file)
        var factor = 1.0
        for _ in 0..<traits.strongCategories { factor *= knobs.strongPenalty }
        if traits.declarationFile { factor *= knobs.mildPenalty }
        if traits.packageMarker { factor *= knobs.moderatePenalty }
        return factor
    }

    /// Skipped when the query mentions tests, specs or benchmarks.
    public func applyPathPenalty(_ pool: inout [RankedUnit], query: String) {
        let q = query.lowercased()
        if q.contains("test") || q.contains("spec") || q.contains("benchmark") { return }
        // Several units share a file: each path goes through the four regexes once.
        var factors: [String: Double] = [:]
        for i in pool.indices {
            let file = pool[i].file
            let factor = factors[file] ?? pathPenalty(file: file)
            factors[file] = factor
            pool[i].score *= factor
        }
    }

    // MARK: boosts

    /// 43 English stopwords removed from the query before the stem boost (shared with the keyword query).
    public static var stopwords: Set<String> { KeywordQuery.stopwords }

    /// The file name of a stored path: `NSString.lastPathComponent`, without bridging for the usual
    /// ASCII relative path (no `//`, no trailing `/`), whose name is simply what follows the last `/`.
    /// (Elsewhere Foundation's rules hold: a `/` followed by a combining mark is no separator there.)
    static func fileName(_ path: String) -> String {
        let bytes = path.utf8
        let slash = UInt8(ascii: "/")
        guard let last = bytes.last, last != slash, bytes.allSatisfy({ $0 < 0x80 }),
              !zip(bytes, bytes.dropFirst()).contains(where: { $0 == slash && $1 == slash }) else {
            return (path as NSString).lastPathComponent
        }
        guard let cut = bytes.lastIndex(of: slash) else { return path }
        return String(path[bytes.index(after: cut)...])
    }

    private func variants(_ token: String) -> Set<String> {
        var out: Set<String> = [token]
        // Without a `_` the stripped form is the token itself (skips a Foundation call per token).
        if token.utf8.contains(UInt8(ascii: "_")) {
            let stripped = token.replacingOccurrences(of: "_", with: "")
            if !stripped.isEmpty { out.insert(stripped) }
        }
        if knobs.stemPluralSnake {
            for t in Array(out) where t.count > 3 && t.hasSuffix("s") { out.insert(String(t.dropLast())) }
        }
        return out
    }

    /// Stem boost (reference §2.5 step 7, with its camelCase quirk fixed). The file stem is split
    /// with its case kept (`StringUtils` → `string`, `utils`, as `string_utils` would be). When a stem
    /// token matches a query token (variants: `_` removed, trailing `s` removed) the file gets between
    /// the prefix boost and the full stem boost, scaled by the share of the stem's parts the query
    /// covers (`ObjectNode` for "object node" → full, for "JSON object" → half); a whole-stem match
    /// is full. Otherwise a shared prefix of ≥ 3 characters gives the prefix boost.
    public func applyStemBoost(_ pool: inout [RankedUnit], query: String) {
        guard let maxScore = pool.map(\.score).max(), maxScore > 0 else { return }
        var queryTokens = Set(tokenize(query))
        if knobs.stemStopwords { queryTokens.subtract(Self.stopwords) }
        guard !queryTokens.isEmpty else { return }
        let queryVariants = queryTokens.reduce(into: Set<String>()) { $0.formUnion(variants($1)) }
        var cache: [String: Double] = [:]
        for i in pool.indices {
            let file = pool[i].file
            let boost: Double
            if let cached = cache[file] {
                boost = cached
            } else {
                let stem = memo?.stem(of: file, ranker: self) ?? stemAnalysis(Self.stem(of: file))
                boost = stemBoost(stem, queryVariants: queryVariants)
                cache[file] = boost
            }
            pool[i].score += boost * maxScore
        }
    }

    /// A file's stem: its name without the extension, case kept.
    static func stem(of file: String) -> String {
        (fileName(file) as NSString).deletingPathExtension
    }

    /// The query-independent part of a stem's boost: its tokens' variants.
    func stemAnalysis(_ stem: String) -> StemAnalysis {
        let tokens = tokenize(stem)
        guard let whole = tokens.first else { return StemAnalysis(variants: [], wholeVariants: [], partVariants: []) }
        // The tokenizer emits the whole identifier, then its parts, then `_`-joined bigrams.
        let parts = tokens.count > 1 ? tokens.dropFirst().filter { !$0.contains("_") } : [whole]
        return StemAnalysis(variants: tokens.reduce(into: Set<String>()) { $0.formUnion(variants($1)) },
                            wholeVariants: variants(whole), partVariants: parts.map(variants))
    }

    /// The stem boost factor of one file stem (case kept) against the query's token variants.
    func stemBoost(stem: String, queryVariants: Set<String>) -> Double {
        stemBoost(stemAnalysis(stem), queryVariants: queryVariants)
    }

    func stemBoost(_ stem: StemAnalysis, queryVariants: Set<String>) -> Double {
        let stemVariants = stem.variants
        guard !stemVariants.isEmpty else { return 0 }
        if !stemVariants.isDisjoint(with: queryVariants) {
            let covered = stem.partVariants.filter { !$0.isDisjoint(with: queryVariants) }.count
            let coverage = stem.wholeVariants.isDisjoint(with: queryVariants) ? Double(covered) / Double(max(1, stem.partVariants.count)) : 1
            return knobs.stemPrefixBoost + (knobs.stemBoost - knobs.stemPrefixBoost) * coverage
        }
        let prefixMatch = stemVariants.contains { s in
            queryVariants.contains { q in
                let (short, long) = s.count <= q.count ? (s, q) : (q, s)
                return short.count >= 3 && long.hasPrefix(short)
            }
        }
        return prefixMatch ? knobs.stemPrefixBoost : 0
    }

    private static let definitionTypes: Set<String> = ["function", "method", "class", "constant"]

    /// Definition boost (reference §2.5 step 8): a function, method, class or constant whose name
    /// shares a token with the query gets `definitionBoost`; one whose whole name is the query
    /// (case-insensitive) gets `definitionExactBoost` instead.
    public func applyDefinitionBoost(_ pool: inout [RankedUnit], query: String) {
        guard let maxScore = pool.map(\.score).max(), maxScore > 0 else { return }
        let queryTokens = Set(tokenize(query))
        guard !queryTokens.isEmpty else { return }
        let wholeQuery = query.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        for i in pool.indices where Self.definitionTypes.contains(pool[i].unitType) {
            if pool[i].name.lowercased() == wholeQuery {
                pool[i].score += knobs.definitionExactBoost * maxScore
            } else if !(memo?.nameTokens(pool[i].name, ranker: self) ?? nameTokens(pool[i].name)).isDisjoint(with: queryTokens) {
                pool[i].score += knobs.definitionBoost * maxScore
            }
        }
    }

    /// The tokens of a unit name, lowercased first (what the definition boost compares).
    func nameTokens(_ name: String) -> Set<String> {
        Set(tokenize(name.lowercased()))
    }

    /// Each file's best unit gains `coherenceBoost · max · (file's summed score / the largest sum)`,
    /// the sums taken over the `depth` best units of the pool (0: all of them).
    public func applyCoherenceBoost(_ pool: inout [RankedUnit], depth: Int = 0) {
        guard let maxScore = pool.map(\.score).max(), maxScore > 0 else { return }
        var sums: [String: Double] = [:]
        var leader: [String: Int] = [:]
        let counted: Set<Int>? = depth > 0 && pool.count > depth
            ? Set(pool.indices.sorted { pool[$0].score > pool[$1].score }.prefix(depth))
            : nil
        for (i, u) in pool.enumerated() {
            if counted?.contains(i) ?? true { sums[u.file, default: 0] += u.score }
            if let j = leader[u.file] {
                if u.score > pool[j].score { leader[u.file] = i }
            } else {
                leader[u.file] = i
            }
        }
        guard let maxSum = sums.values.max(), maxSum > 0 else { return }
        for (file, i) in leader {
            pool[i].score += knobs.coherenceBoost * maxScore * (sums[file, default: 0] / maxSum)
        }
    }

    /// Walk in score order: the first unit per file leads, later units of that file widen its span.
    public static func collapseByFile(_ sortedUnits: [RankedUnit], topK: Int) -> [RankedUnit] {
        var out: [RankedUnit] = []
        var index: [String: Int] = [:]
        for u in sortedUnits {
            if let i = index[u.file] {
                out[i].line = min(out[i].line, u.line)
                out[i].endLine = max(out[i].endLine, u.endLine)
            } else if out.count < topK {
                index[u.file] = out.count
                out.append(u)
            }
        }
        return out
    }

    /// Per-file merge of two result lists (§2.2 step 9): the higher score wins, spans are unioned.
    public static func mergePerFile(_ a: [RankedUnit], _ b: [RankedUnit]) -> [RankedUnit] {
        var byFile: [String: RankedUnit] = [:]
        for u in a + b {
            if var existing = byFile[u.file] {
                let span = (min(existing.line, u.line), max(existing.endLine, u.endLine))
                if u.score > existing.score { existing = u }
                existing.line = span.0
                existing.endLine = span.1
                byFile[u.file] = existing
            } else {
                byFile[u.file] = u
            }
        }
        return sorted(Array(byFile.values))
    }
}
