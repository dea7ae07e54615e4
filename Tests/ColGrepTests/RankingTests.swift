import CodeUnits
import Foundation
import Testing
@testable import ColGrep

/// Identifier splitting as the keyword index does it (snake and camel parts plus the whole, lowercased).
func splitIdentifiers(_ text: String) -> [String] {
    var out: [String] = []
    for word in text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
        let w = String(word)
        out.append(w.lowercased())
        var parts: [String] = []
        var current = ""
        for c in w {
            if c == "_" { if !current.isEmpty { parts.append(current) }; current = ""; continue }
            if c.isUppercase, let last = current.last, last.isLowercase { parts.append(current); current = "" }
            current.append(c)
        }
        if !current.isEmpty { parts.append(current) }
        if parts.count > 1 { out += parts.map { $0.lowercased() } }
    }
    return out
}

@Suite struct FusionTests {
    @Test func minMaxFusion() {
        let fused = Ranker.fuse(semantic: [(1, 10), (2, 5), (3, 0)], keyword: [(2, 8), (4, 2)], alpha: 0.6, limit: 10)
        let scores = Dictionary(uniqueKeysWithValues: fused.map { ($0.id, $0.score) })
        #expect(abs(scores[1]! - 0.6) < 1e-9)
        #expect(abs(scores[2]! - (0.6 * 0.5 + 0.4)) < 1e-9)
        #expect(abs(scores[3]! - 0) < 1e-9)
        #expect(abs(scores[4]! - 0) < 1e-9)
        #expect(fused.first?.id == 2)
    }

    @Test func allEqualListNormalizesToOneAndNoKeywordsPassesThrough() {
        let fused = Ranker.fuse(semantic: [(1, 3), (2, 3)], keyword: [(2, 1)], alpha: 0.5, limit: 10)
        #expect(fused.map(\.id) == [2, 1])
        #expect(fused[0].score == 1.0 && fused[1].score == 0.5)
        let passthrough = Ranker.fuse(semantic: [(1, 3), (2, 7)], keyword: [], alpha: 0.6, limit: 1)
        #expect(passthrough.count == 1 && passthrough[0].id == 2 && passthrough[0].score == 7)
    }

    /// Reciprocal ranks replace the scores: unsorted input is ranked first, a unit on one side only
    /// gets that side's share, and score gaps no longer matter (a huge BM25 lead counts as rank 1).
    @Test func reciprocalRankFusion() {
        let fused = Ranker.fuse(semantic: [(3, 0.1), (1, 10), (2, 5)], keyword: [(4, 900), (2, 8)], alpha: 0.6, limit: 10, rrfK: 10)
        let scores: [Int64: Double] = Dictionary(uniqueKeysWithValues: fused.map { ($0.id, $0.score) })
        let expected: [Int64: Double] = [1: 0.6 / 11, 2: 0.6 / 12 + 0.4 / 12, 3: 0.6 / 13, 4: 0.4 / 11]
        for (id, value) in expected {
            let got: Double = scores[id] ?? -1
            #expect(abs(got - value) < 1e-12, "unit \(id)")
        }
        #expect(fused.map(\.id) == [2, 1, 3, 4])
        #expect(RankingKnobs().rrfK == 10 && RankingKnobs.fromEnvironment(["COLGREP_RRF_K": "0"]).rrfK == nil)
    }
}

@Suite struct RerankTests {
    let ranker = Ranker(tokenize: splitIdentifiers)

    func unit(_ id: Int64, _ file: String, _ name: String = "x", _ type: String = "rawcode", line: Int = 1, score: Double) -> RankedUnit {
        RankedUnit(docID: id, file: file, name: name, unitType: type, line: line, endLine: line + 2, score: score)
    }

    @Test func pathPenalties() {
        #expect(abs(ranker.pathPenalty(file: "tests/test_http.py") - 0.30) < 1e-9)
        #expect(abs(ranker.pathPenalty(file: "pkg/server_test.go") - 0.30) < 1e-9)
        #expect(abs(ranker.pathPenalty(file: "src/app.spec.ts") - 0.30) < 1e-9)
        #expect(abs(ranker.pathPenalty(file: "examples/compat/x.py") - 0.09) < 1e-9)
        #expect(abs(ranker.pathPenalty(file: "types/index.d.ts") - 0.70) < 1e-9)
        #expect(abs(ranker.pathPenalty(file: "pkg/__init__.py") - 0.50) < 1e-9)
        #expect(ranker.pathPenalty(file: "src/contest.py") == 1.0)
        var pool = [unit(1, "tests/a.py", score: 1)]
        ranker.applyPathPenalty(&pool, query: "how are Tests run")
        #expect(pool[0].score == 1)
    }

    @Test func stemBoostExactAndPrefix() {
        var pool = [unit(1, "src/retry.py", score: 1), unit(2, "src/retrying_client.py", score: 1), unit(3, "src/other.py", score: 1)]
        ranker.applyStemBoost(&pool, query: "retries with backoff")
        // "retries" → variant "retrie"; "retry" shares the prefix "retr"… only exact variants get 0.40
        #expect(pool[2].score == 1)
        var exact = [unit(1, "src/http_client.py", score: 2), unit(2, "src/zz.py", score: 1), unit(3, "src/client.py", score: 1)]
        ranker.applyStemBoost(&exact, query: "the client")
        // `http_client` is half covered by the query: halfway between the prefix and the full boost.
        #expect(abs(exact[0].score - (2 + 0.3 * 2)) < 1e-9)
        #expect(exact[1].score == 1)
        #expect(abs(exact[2].score - (1 + 0.4 * 2)) < 1e-9)
        var prefix = [unit(1, "src/interceptormanager.ts", score: 1)]
        ranker.applyStemBoost(&prefix, query: "interceptor")
        #expect(abs(prefix[0].score - 1.2) < 1e-9)
    }

    /// The reference lower-cased stems before splitting them, so `StringUtils` only ever got the
    /// prefix boost; the stem is now split with its case kept and scaled by query coverage.
    @Test func stemBoostSplitsCamelCaseStemsAndScalesByCoverage() {
        var pool = [unit(1, "lang3/StringUtils.java", score: 1), unit(2, "node/ObjectNode.java", score: 1),
                    unit(3, "node/ArrayNode.java", score: 1), unit(4, "lang3/Validate.java", score: 1)]
        ranker.applyStemBoost(&pool, query: "mutable object node and string utils")
        #expect(abs(pool[0].score - 1.4) < 1e-9, "both parts of StringUtils covered: full boost")
        #expect(abs(pool[1].score - 1.4) < 1e-9)
        #expect(abs(pool[2].score - 1.3) < 1e-9, "`node` covers half of ArrayNode")
        #expect(pool[3].score == 1)
        #expect(abs(ranker.stemBoost(stem: "StringUtils", queryVariants: ["string"]) - 0.3) < 1e-9)
        #expect(abs(ranker.stemBoost(stem: "stringutils", queryVariants: ["string"]) - 0.2) < 1e-9, "one word: prefix only")
        #expect(abs(ranker.stemBoost(stem: "StringUtils", queryVariants: ["stringutils"]) - 0.4) < 1e-9, "whole stem")
        // Keyword-only rankings use the larger stem boost tuned for them.
        let keywordOnly = Ranker(knobs: RankingKnobs().forKeywordOnly, tokenize: splitIdentifiers)
        #expect(abs(keywordOnly.stemBoost(stem: "StringUtils", queryVariants: ["string"]) - 0.5) < 1e-9)
        #expect(abs(keywordOnly.stemBoost(stem: "StringUtils", queryVariants: ["stringutils"]) - 0.8) < 1e-9)
    }

    @Test func definitionExactNameBeatsTokenOverlap() {
        var pool = [unit(1, "main.py", "BaseModel", "class", score: 0.5), unit(2, "utils.py", "is_base_model", "function", score: 1),
                    unit(3, "other.py", "BaseModel", "rawcode", score: 1)]
        ranker.applyDefinitionBoost(&pool, query: "BaseModel")
        #expect(abs(pool[0].score - 1.5) < 1e-9, "whole name: +1.0·max")
        #expect(abs(pool[1].score - 1.25) < 1e-9, "shares `base` and `model`: the ordinary boost")
        #expect(pool[2].score == 1, "raw code is no definition")
        var partial = [unit(1, "a.py", "fetch_with_retry", "function", score: 1)]
        ranker.applyDefinitionBoost(&partial, query: "fetch_with_retry ")
        #expect(abs(partial[0].score - 2) < 1e-9)
    }

    @Test func definitionBoostOnlyForDefinitions() {
        var pool = [unit(1, "a.py", "fetch_with_retry", "function", score: 1), unit(2, "b.py", "fetch", "rawcode", score: 1)]
        ranker.applyDefinitionBoost(&pool, query: "retry")
        #expect(abs(pool[0].score - 1.25) < 1e-9)
        #expect(pool[1].score == 1)
    }

    @Test func coherenceBoostGoesToEachFilesTopUnit() {
        var pool = [unit(1, "a.py", score: 1), unit(2, "a.py", line: 10, score: 0.5), unit(3, "b.py", score: 0.9)]
        ranker.applyCoherenceBoost(&pool)
        #expect(abs(pool[0].score - 1.3) < 1e-9)
        #expect(pool[1].score == 0.5)
        #expect(abs(pool[2].score - (0.9 + 0.3 * 0.9 / 1.5)) < 1e-9)
    }

    @Test func coherenceCountsOnlyTheBestUnitsOfThePool() {
        // One file answering the query, and a big file with many weak units deep in the pool.
        var pool = [unit(1, "answer.py", score: 1), unit(2, "answer.py", line: 10, score: 0.9)]
        pool += (0..<40).map { unit(Int64(100 + $0), "huge.py", line: 10 * $0, score: 0.3) }
        pool.append(unit(99, "huge.py", line: 999, score: 0.95))
        var whole = pool
        ranker.applyCoherenceBoost(&whole, depth: 0)
        #expect(whole.first { $0.docID == 99 }!.score > whole[0].score, "summed over the whole pool, the big file wins")
        ranker.applyCoherenceBoost(&pool, depth: 3)
        #expect(pool[0].score > pool.first { $0.docID == 99 }!.score, "over the 3 best units, the answering file keeps the lead")
        var defaults = RankingKnobs()
        #expect(defaults.coherenceDepth == nil)
        defaults = RankingKnobs.fromEnvironment(["COLGREP_COHERENCE_DEPTH": "0"])
        #expect(defaults.coherenceDepth == 0)
    }

    @Test func collapseKeepsOnePerFileAndWidensSpan() {
        let sorted = Ranker.sorted([unit(1, "a.py", line: 10, score: 3), unit(2, "b.py", score: 2), unit(3, "a.py", line: 1, score: 1), unit(4, "c.py", score: 0.5)])
        let out = Ranker.collapseByFile(sorted, topK: 2)
        #expect(out.map(\.file) == ["a.py", "b.py"])
        #expect(out[0].line == 1 && out[0].endLine == 12)
    }

    @Test func tieBreakByFileThenLine() {
        let out = Ranker.sorted([unit(1, "b.py", score: 1), unit(2, "a.py", line: 5, score: 1), unit(3, "a.py", line: 2, score: 1)])
        #expect(out.map(\.docID) == [3, 2, 1])
    }

    @Test func mergePerFileKeepsBestAndUnionsSpans() {
        let merged = Ranker.mergePerFile([unit(1, "a.py", line: 10, score: 1)], [unit(2, "a.py", line: 1, score: 2), unit(3, "b.py", score: 0.1)])
        #expect(merged.count == 2)
        #expect(merged[0].docID == 2 && merged[0].line == 1 && merged[0].endLine == 12)
    }

    @Test func knobsFromEnvironment() {
        let k = RankingKnobs.fromEnvironment(["COLGREP_DEF_BOOST": "0.5", "COLGREP_STRONG_PENALTY": "0.1", "COLGREP_STEM_STOPWORDS": "0",
                                              "COLGREP_DEF_EXACT_BOOST": "2", "COLGREP_FTS_STEM_BOOST": "0.9"])
        #expect(k.definitionBoost == 0.5 && k.strongPenalty == 0.1 && !k.stemStopwords && k.stemBoost == 0.40 && k.definitionExactBoost == 2)
        #expect(k.forKeywordOnly.stemBoost == 0.9 && RankingKnobs().forKeywordOnly.stemBoost == 0.80)
    }
}

@Suite struct OutputTests {
    func hit(_ file: String, _ line: Int, _ end: Int, type: String = "function", score: Float = 0.5) -> SearchHit {
        SearchHit(unit: CodeUnit(name: "f", qualifiedName: "\(file)::f", file: file, line: line, endLine: end, language: "python",
                                unitType: UnitType(rawValue: type) ?? .rawcode, signature: "def f():", docstring: nil, parameters: ["a"], returnType: nil,
                                extends: nil, parentClass: nil, calls: [], calledBy: ["g"], complexity: 1, hasLoops: false,
                                hasBranches: true, hasErrorHandling: false, variables: [], imports: [], code: "def f():\n    \"q\"\n"),
                  score: score, projectRoot: "/proj")
    }

    @Test func compactRelativeToCurrentDirectory() {
        let f = OutputFormatter(mode: .compact, currentDirectory: "/proj/src")
        #expect(f.render([hit("src/a.py", 3, 9), hit("lib/b.py", 1, 2)], query: "q") == "a.py:3-9\n../lib/b.py:1-2\n")
        #expect(f.render([], query: "nothing") == "No results found for: nothing\n")
        let abs = OutputFormatter(mode: .compact, relativePaths: false, currentDirectory: "/x")
        #expect(abs.render([hit("a.py", 1, 2)], query: "q") == "/proj/a.py:1-2\n")
    }

    @Test func filesOnlyDeduplicates() {
        let f = OutputFormatter(mode: .filesOnly, currentDirectory: "/proj")
        #expect(f.render([hit("a.py", 1, 2), hit("a.py", 5, 6), hit("b.py", 1, 1)], query: "q") == "a.py\nb.py\n")
        #expect(f.render([], query: "q") == "")
    }

    @Test func jsonHasEveryFieldInOrderWithAbsolutePath() throws {
        let text = OutputFormatter(mode: .json, currentDirectory: "/elsewhere").render([hit("a.py", 1, 2, score: 0.93)], query: "q")
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
        let unit = parsed[0]["unit"] as! [String: Any]
        #expect(unit["file"] as? String == "/proj/a.py")
        #expect(unit["docstring"] is NSNull)
        #expect((parsed[0]["score"] as? Double).map { abs($0 - 0.93) < 1e-6 } == true)
        let keys = ["name", "qualified_name", "file", "line", "end_line", "language", "unit_type", "signature", "docstring",
                    "parameters", "return_type", "extends", "parent_class", "calls", "called_by", "complexity", "has_loops",
                    "has_branches", "has_error_handling", "variables", "imports", "code"]
        let positions = keys.map { text.range(of: "\"\($0)\":")!.lowerBound }
        #expect(positions == positions.sorted())
        #expect(text.contains("\"calls\": [],") && text.contains("\"code\": \"def f():\\n    \\\"q\\\"\\n\""))
        #expect(OutputFormatter(mode: .json).render([], query: "q") == "[]\n")
    }

    @Test func matchLinesReadTheFileOnDisk() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("out-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let long = String(repeating: "x", count: 130)
        try "one\n  TODO fix\nthree todo \(long)\n".write(to: dir.appendingPathComponent("a.py"), atomically: true, encoding: .utf8)
        var h = hit("a.py", 1, 3)
        h.projectRoot = dir.path
        let m = LineMatcher(pattern: "todo", fixedStrings: false, wordRegexp: false, caseSensitive: false)
        let out = OutputFormatter(mode: .compact, currentDirectory: dir.path, matcher: m).render([h], query: "todo")
        let lines = out.split(separator: "\n")
        #expect(lines[0] == "a.py:2:TODO fix")
        #expect(lines[1].hasPrefix("a.py:3:three todo x") && lines[1].hasSuffix("...") && lines[1].count == "a.py:3:".count + 123)
    }
}

/// The ranker's file name of a stored path is `NSString.lastPathComponent`'s, bridged or not.
@Suite struct RankerFileNameTests {
    @Test func fileNamesAreLastPathComponents() {
        let paths = ["src/a/Foo.java", "Foo.java", "a/b/", "a//b.py", "/abs/x.rs", "", "/", "//", "a/", ".hidden/.rc",
                     "dir.with.dots/file", "ünï/cödé 🚀.swift", "a/b/__init__.py", "x/y/package-info.java", "a\\b/c.ts",
                     "e\u{301}/\u{301}x.go", "tail/./", "a/../b.c"]
        for path in paths {
            #expect(Ranker.fileName(path) == (path as NSString).lastPathComponent, "\(path)")
        }
    }
}
