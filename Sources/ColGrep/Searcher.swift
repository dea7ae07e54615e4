import CodeUnits
import Foundation
import Plaid
import Store
import Tensor

/// Results of one search invocation.
public struct SearchOutcome: Sendable {
    public var hits: [SearchHit]
}

/// Searches one project index: PLAID semantic ∥ BM25, min-max fusion, re-ranking, subset filters
/// (reference §2.2–§2.5). Opened read-only; the model loads only when a semantic score is needed.
final class ProjectSearcher {
    let projectRoot: String
    let layout: IndexLayout
    let model: ModelRuntime
    let config: ColGrepConfig
    let environment: [String: String]
    private let store: MetadataStore?
    private let plaid: PlaidIndex?
    private var queryVectors: [String: HostMatrix] = [:]
    /// The hybrid passes of the search in progress, kept only while `COLGREP_TRACE_JSON` names a file.
    private var tracePasses: [RankingTrace.Pass]?
    /// Store reads that run beside the semantic side (BM25, the literal scan), in that order.
    private let storeQueue = DispatchQueue(label: "colgrep.search.store")

    init(projectRoot: String, layout: IndexLayout, model: ModelRuntime, config: ColGrepConfig, environment: [String: String]) throws {
        self.projectRoot = projectRoot
        self.layout = layout
        self.model = model
        self.config = config
        self.environment = environment
        if FileManager.default.fileExists(atPath: layout.metadataFile.path) {
            do {
                // A query server keeps the store while nothing was written to it (`ResidentCache.metadataStore`).
                store = try ResidentCache.shared.metadataStore(file: layout.metadataFile) {
                    try MetadataStore(path: layout.metadataFile, readOnly: true)
                }
            } catch {
                throw Self.openFailure("Index load failed: \(layout.metadataFile.path): \(error)")
            }
        } else {
            store = nil
        }
        // A query server keeps the mapped vector index while its manifest is unchanged.
        plaid = try ResidentCache.shared.vectorIndex(layout: layout) {
            guard FileManager.default.fileExists(atPath: layout.vectorDirectory.path) else { return nil }
            do {
                return try PlaidIndex.open(at: layout.vectorDirectory)
            } catch {
                throw Self.openFailure("Index load failed: \(layout.vectorDirectory.path): \(error)")
            }
        }
    }

    /// An index that fails to open is damaged (the search rebuilds it) — except in a query server, which
    /// never repairs: it declines the request (`ResidentCache.openFailed`) and the client's in-process
    /// search, with nothing kept from earlier requests, decides.
    private static func openFailure(_ message: String) -> Error {
        if ResidentCache.shared.isEnabled {
            ResidentCache.shared.noteOpenFailure()
            return ColGrepError.other("query server: \(message)")
        }
        return ColGrepError.corrupt(message)
    }

    /// Ids allowed by the subdirectory, `-e`, `--include`, file, `--exclude` and `--exclude-dir`
    /// filters; nil when nothing restricts the search.
    func subset(request: SearchRequest, subdirectory: String, file: String?) throws -> Set<Int64>? {
        guard let store else { return [] }
        var result: Set<Int64>?
        func intersect(_ ids: Set<Int64>) {
            result = result.map { $0.intersection(ids) } ?? ids
        }
        if let file {
            intersect(Set(try store.docIDs(inFiles: [file])))
        } else if !subdirectory.isEmpty {
            intersect(try store.docIDs(filePrefix: subdirectory + "/"))
        }
        if let pattern = request.pattern {
            var ids: Set<Int64> = []
            let literal = RegexSyntax.literalPattern(pattern, wordRegexp: request.wordRegexp)
            ids.formUnion(try store.docIDs(whereCodeMatches: literal, caseSensitive: request.fixedStrings || request.caseSensitive))
            if !request.fixedStrings {
                let ere = RegexSyntax.extendedPattern(pattern, wordRegexp: request.wordRegexp)
                if let regexIDs = try? store.docIDs(whereCodeMatches: ere, caseSensitive: request.caseSensitive) {
                    ids.formUnion(regexIDs)
                }
            }
            intersect(ids)
        }
        let filter = try PathFilter(include: request.include, exclude: request.exclude, excludeDir: request.excludeDir)
        if !filter.isEmpty {
            let files = try store.allFiles().filter(filter.accepts)
            intersect(Set(try store.docIDs(inFiles: files)))
        }
        return result
    }

    func search(request: SearchRequest, topK: Int, subdirectory: String, file: String?) throws -> [SearchHit] {
        guard let store else { return [] }
        let documentCount = try store.count
        guard documentCount > 0 else { return [] }
        let subset = try subset(request: request, subdirectory: subdirectory, file: file)
        if let subset, subset.isEmpty { return [] }
        let searchTopK = min(topK, documentCount) * (request.codeOnly ? 4 : 3)
        let semanticQuery = Self.semanticQuery(of: request)
        let alpha = config.alpha(override: request.alpha, env: environment)
        let knobs = RankingKnobs.fromEnvironment(environment)
        let ranker = Ranker.identifiers(knobs: request.keywordOnly ? knobs.forKeywordOnly : knobs)

        if request.semanticOnly && !request.keywordOnly {
            let hits = try semantic(semanticQuery, topK: searchTopK, subset: subset)
            var units = try rankedUnits(hits.map { ($0.id, $0.score) }, store: store)
            if request.pattern == nil { units = Ranker.mergePerFile(units, []) }
            return try toHits(units, store: store)
        }

        // A pattern alone (`-e` without a query: the query is then the pattern itself, §2.1) has already
        // chosen the units: they are ranked by the pattern's words (BM25 and the re-ranker) without
        // loading the model.
        let patternOnly = Self.isPatternOnly(request)
        tracePasses = environment["COLGREP_TRACE_JSON"] == nil ? nil : []
        // Units holding the query verbatim get a second, restricted ranking (§2.2 step 9). Finding them
        // scans every unit's code: it runs on the store queue right after BM25, beside the semantic side.
        let literalMatches = ResultBox<Set<Int64>>()
        let literalDone = DispatchGroup()
        var literalScan: (@Sendable () -> Void)?
        if request.pattern == nil, !request.query.isEmpty {
            let literal = request.query
            literalScan = { literalMatches.set(Result { try store.docIDs(whereCodeContains: literal) }) }
        }
        let primary = try hybrid(query: semanticQuery, keywordQuery: patternOnly ? semanticQuery : request.query, topK: searchTopK,
                                 subset: subset, alpha: alpha, keywordOnly: request.keywordOnly || patternOnly, ranker: ranker, store: store,
                                 thenInBackground: literalScan.map { ($0, literalDone) })
        var merged = primary
        if literalScan != nil {
            Profiler.shared.measure("search: literal scan wait") { literalDone.wait() }
            if case .success(var ids)? = literalMatches.get(), !ids.isEmpty {
                if let subset { ids.formIntersection(subset) }
                if !ids.isEmpty {
                    let second = try hybrid(query: semanticQuery, keywordQuery: request.query, topK: searchTopK, subset: ids,
                                            alpha: alpha, keywordOnly: request.keywordOnly, ranker: ranker, store: store)
                    merged = Ranker.mergePerFile(primary, second)
                }
            }
        }
        if let passes = tracePasses, let path = environment["COLGREP_TRACE_JSON"] {
            RankingTrace(query: request.query, topK: topK, ftsOnly: request.keywordOnly, codeOnly: request.codeOnly, passes: passes).append(to: path)
        }
        return try toHits(Ranker.sorted(merged), store: store)
    }

    /// The text whose query vector the search ranks by (the query, with `-e`'s pattern folded in).
    static func semanticQuery(of request: SearchRequest) -> String {
        request.pattern.map { RegexSyntax.semanticQuery(query: request.query, pattern: $0) } ?? request.query
    }

    /// `-e` without a query of its own: ranked by the pattern's words, without the model.
    static func isPatternOnly(_ request: SearchRequest) -> Bool {
        request.pattern != nil && (request.query.isEmpty || request.query == request.pattern)
    }

    /// The text `search` will encode as a query vector (when the index has documents), or nil when it
    /// ranks without the model: what `ModelRuntime.prefetchQuery` can start on before the index opens.
    static func queryToEncode(for request: SearchRequest) -> String? {
        let text = semanticQuery(of: request)
        guard !request.keywordOnly, !text.isEmpty else { return nil }
        return request.semanticOnly || !isPatternOnly(request) ? text : nil
    }

    /// Semantic ∥ keyword, fused, re-ranked, collapsed by file.
    /// `thenInBackground` is queued on the store queue after the keyword search (with its own group).
    private func hybrid(query: String, keywordQuery: String, topK: Int, subset: Set<Int64>?, alpha: Double,
                        keywordOnly: Bool, ranker: Ranker, store: MetadataStore,
                        thenInBackground: (job: @Sendable () -> Void, group: DispatchGroup)? = nil) throws -> [RankedUnit] {
        let documents = try plaid?.documentCount ?? store.count
        let fetchK = HybridFusion.fetchDepth(topK: topK, documents: documents)
        var semanticHits: [(id: Int64, score: Double)] = []
        let keyword = ResultBox<[(id: Int64, score: Double)]>()
        let group = DispatchGroup()
        let keywordLimit = topK * ranker.knobs.keywordDepth
        if !keywordQuery.isEmpty {
            // A traced search records a deeper keyword list, so a replay can try deeper keyword depths.
            let limit = tracePasses == nil ? keywordLimit : max(keywordLimit, topK * RankingTrace.keywordDepth)
            storeQueue.async(group: group) {
                keyword.set(Result { try store.bm25(query: keywordQuery, limit: limit, within: subset).map { ($0.docID, $0.score) } })
            }
        }
        if let (job, jobGroup) = thenInBackground { storeQueue.async(group: jobGroup, execute: job) }
        if !keywordOnly {
            semanticHits = try semantic(query, topK: fetchK, subset: subset)
        }
        Profiler.shared.measure("search: bm25 wait") { group.wait() }
        var keywordHits: [(id: Int64, score: Double)] = []
        var tracedKeywordHits: [(id: Int64, score: Double)] = []
        switch keyword.get() {
        case .success(let hits): keywordHits = Array(hits.prefix(keywordLimit)); tracedKeywordHits = hits
        case .failure(let error): throw ColGrepError.corrupt("keyword search failed: \(error)")
        case nil: break
        }
        let fusionBegin = ProfileClock.now()
        trace("semantic", semanticHits.map(\.id))
        trace("bm25", keywordHits.map(\.id))
        let rerankQuery = keywordQuery.isEmpty ? query : keywordQuery
        let reranked = try HybridFusion.rank(semantic: semanticHits, keyword: keywordHits, alpha: alpha, keywordOnly: keywordOnly,
                                             subset: subset, fetchK: fetchK, topK: topK, query: rerankQuery, ranker: ranker) { fused in
            trace("fused", fused.map(\.id))
            return try Profiler.shared.measure("search: candidates' locations") { try rankedUnits(fused, store: store) }
        }
        if tracePasses != nil {
            let ids = Array(Set(semanticHits.map(\.id)).union(tracedKeywordHits.map(\.id)))
            tracePasses?.append(RankingTrace.Pass(
                query: query, keywordQuery: keywordQuery, searchTopK: topK, fetchK: fetchK, alpha: alpha, keywordOnly: keywordOnly,
                subset: subset.map { $0.sorted() }, semantic: semanticHits.map { [Double($0.id), $0.score] },
                keyword: tracedKeywordHits.map { [Double($0.id), $0.score] }, units: try rankedUnits(ids.map { ($0, 0) }, store: store)))
        }
        Profiler.shared.add(stage: "search: fusion + rerank", seconds: ProfileClock.seconds(since: fusionBegin))
        trace("final", reranked.map(\.docID))
        return reranked
    }

    private func semantic(_ query: String, topK: Int, subset: Set<Int64>?) throws -> [(id: Int64, score: Double)] {
        guard let plaid, !query.isEmpty else { return [] }
        let q: HostMatrix
        if let cached = queryVectors[query] {
            q = cached
        } else {
            q = try model.encodeQuery(query)
            queryVectors[query] = q
        }
        let params = SearchParameters.fromEnvironment(environment)
        return Profiler.shared.measure("search: plaid") {
            plaid.search(query: q, topK: topK, parameters: params, subset: subset).map { ($0.id, Double($0.score)) }
        }
    }

    private func rankedUnits(_ scored: [(id: Int64, score: Double)], store: MetadataStore) throws -> [RankedUnit] {
        // Only where each candidate is: its content is read for the few that become hits (`toHits`).
        let records = try store.locations(docIDs: scored.map(\.id))
        let byID = Dictionary(records.map { ($0.docID, $0) }, uniquingKeysWith: { a, _ in a })
        return scored.compactMap { item in
            guard let r = byID[item.id] else { return nil }
            return RankedUnit(docID: r.docID, file: r.file, name: r.name, unitType: r.unitType, line: r.line, endLine: r.endLine, score: item.score)
        }
    }

    private func toHits(_ units: [RankedUnit], store: MetadataStore) throws -> [SearchHit] {
        let records = try store.records(docIDs: units.map(\.docID))
        let byID = Dictionary(records.map { ($0.docID, $0) }, uniquingKeysWith: { a, _ in a })
        return units.compactMap { u in
            guard let r = byID[u.docID] else { return nil }
            let unit = CodeUnit(name: r.name, qualifiedName: r.qualifiedName, file: r.file, line: u.line, endLine: u.endLine,
                               language: r.language, unitType: UnitType(rawValue: r.unitType) ?? .rawcode, signature: r.signature, docstring: r.docstring,
                               parameters: r.parameters, returnType: r.returnType, extends: r.extends, parentClass: r.parentClass,
                               calls: r.calls, calledBy: r.calledBy, complexity: r.complexity, hasLoops: r.hasLoops,
                               hasBranches: r.hasBranches, hasErrorHandling: r.hasErrorHandling, variables: r.variables,
                               imports: r.imports, code: r.code)
            return SearchHit(unit: unit, score: Float(u.score), projectRoot: projectRoot)
        }
    }

    private func trace(_ stage: String, _ ids: [Int64]) {
        guard environment["COLGREP_TRACE"] == "1" else { return }
        FileHandle.standardError.write(Data("__COLGREP_TRACE__ {\"stage\":\"\(stage)\",\"ids\":\(ids.prefix(50).map(String.init))}\n".utf8))
    }
}

/// A value handed back from a background task.
final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<T, Error>?

    func set(_ v: Result<T, Error>) {
        lock.lock()
        value = v
        lock.unlock()
    }

    func get() -> Result<T, Error>? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
