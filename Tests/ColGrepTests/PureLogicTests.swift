import Foundation
import Testing
@testable import ColGrep

@Suite struct DataPathTests {
    @Test func dataRootPrecedence() {
        #expect(DataPaths.fromEnvironment(["COLGREP_DATA_DIR": "/d", "XDG_DATA_HOME": "/x"]).root.path == "/d")
        #expect(DataPaths.fromEnvironment(["XDG_DATA_HOME": "/x", "HOME": "/h"]).root.path == "/x/colgrep")
        #expect(DataPaths.fromEnvironment(["HOME": "/h"]).root.path == "/h/.local/share/colgrep")
        let p = DataPaths(root: URL(fileURLWithPath: "/d"))
        #expect(p.configFile.path == "/d/config.json")
        #expect(p.indicesDirectory.path == "/d/indices")
    }

    @Test func indexDirectoryNameIsSanitizedBasenamePlusHash() {
        let name = IndexNaming.directoryName(projectPath: "/home/me/my project.v2", model: "m")
        #expect(name.hasPrefix("my_project_v2-"))
        let hash = String(name.split(separator: "-").last!)
        #expect(hash.count == 8 && hash.allSatisfy(\.isHexDigit))
        #expect(name != IndexNaming.directoryName(projectPath: "/home/me/my project.v2", model: "other"))
        // xxh3_64 of the empty input is a published constant.
        #expect(IndexNaming.xxh3("") == 0x2D06800538D394C2)
    }
}

@Suite struct ConfigTests {
    @Test func roundTripsWithReferenceKeysAndOmitsUnset() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = DataPaths(root: dir)
        var c = ColGrepConfig()
        c.defaultK = 7
        c.hybridAlpha = 0.5
        try c.save(to: paths)
        let text = try String(contentsOf: paths.configFile, encoding: .utf8)
        #expect(text.contains("\"default_k\" : 7") || text.contains("\"default_k\": 7"))
        #expect(!text.contains("default_model"))
        #expect(try ColGrepConfig.load(from: paths) == c)
    }

    @Test func precedence() {
        var c = ColGrepConfig()
        #expect(c.model(override: nil) == "lightonai/LateOn-Code-edge")
        #expect(c.alpha(override: nil, env: [:]) == 0.55)
        #expect(c.alpha(override: nil, env: ["COLGREP_ALPHA": "7"]) == 1)
        c.hybridAlpha = 0.3
        #expect(c.alpha(override: nil, env: [:]) == 0.3)
        #expect(c.alpha(override: 0.9, env: ["COLGREP_ALPHA": "0.1"]) == 0.9)
        #expect(c.poolFactor(noPool: true, override: 3) == 1)
        #expect(c.poolFactor(noPool: false, override: 0) == 1)
        #expect(c.poolFactor(noPool: false, override: nil) == 2)
    }

    @Test func describeMarksDefaults() {
        var c = ColGrepConfig()
        c.defaultK = 9
        let text = c.describe()
        #expect(text.hasPrefix("Current configuration:\n\n"))
        #expect(text.contains("  k:              9\n"))
        #expect(text.contains("  alpha:          0.55 (default)"))
    }

    @Test func corruptConfigIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: dir.appendingPathComponent("config.json"))
        #expect(throws: ColGrepError.self) { try ColGrepConfig.load(from: DataPaths(root: dir)) }
    }
}

@Suite struct UpdatePlanTests {
    @Test func statFastPathThenHash() {
        var state = IndexState()
        state.files = [
            "same.py": FileStamp(contentHash: 1, mtime: 10, size: 5),
            "touched.py": FileStamp(contentHash: 2, mtime: 10, size: 5),
            "edited.py": FileStamp(contentHash: 3, mtime: 10, size: 5),
            "gone.py": FileStamp(contentHash: 4, mtime: 10, size: 5),
        ]
        state.ignoredFiles = ["ignored.py"]
        var hashed: [String] = []
        let plan = UpdatePlan.compute(scanned: [
            ScannedFile(relativePath: "same.py", mtime: 10, size: 5),
            ScannedFile(relativePath: "touched.py", mtime: 11, size: 5),
            ScannedFile(relativePath: "edited.py", mtime: 10, size: 6),
            ScannedFile(relativePath: "new.py", mtime: 1, size: 1),
            ScannedFile(relativePath: "ignored.py", mtime: 1, size: 1),
        ], state: state) { path in
            hashed.append(path)
            return ["touched.py": 2, "edited.py": 30, "new.py": 5][path]
        }
        #expect(plan.unchanged == ["same.py", "touched.py"])
        #expect(plan.changed == ["edited.py"])
        #expect(plan.added == ["new.py"])
        #expect(plan.deleted == ["gone.py"])
        #expect(plan.touched["touched.py"]?.mtime == 11)
        #expect(!hashed.contains("same.py"))
        #expect(plan.hasWork)
    }
}

@Suite struct GlobTests {
    @Test func braceExpansion() {
        #expect(Globs.expandBraces("*.{py,rs}") == ["*.py", "*.rs"])
        #expect(Globs.expandBraces("{a,b}/{c,d}") == ["a/c", "a/d", "b/c", "b/d"])
        #expect(Globs.expandBraces("x{y}z") == ["x{y}z"])
    }

    @Test func includeGlobsGetAnImplicitAnyDirectoryPrefix() throws {
        let f = try PathFilter(include: ["*.py"], exclude: [], excludeDir: [])
        #expect(f.accepts("a.py") && f.accepts("src/deep/a.py"))
        #expect(!f.accepts("a.pyc") && !f.accepts("a.rs"))
        let anchored = try PathFilter(include: ["/src/*.py"], exclude: [], excludeDir: [])
        #expect(anchored.accepts("src/a.py") && !anchored.accepts("lib/src/a.py") && !anchored.accepts("src/x/a.py"))
        let deep = try PathFilter(include: ["src/**/*.{ts,tsx}"], exclude: [], excludeDir: [])
        #expect(deep.accepts("src/a.ts") && deep.accepts("pkg/src/x/y.tsx") && !deep.accepts("lib/a.ts"))
    }

    @Test func excludeAndExcludeDir() throws {
        let f = try PathFilter(include: [], exclude: ["*_test.go"], excludeDir: ["vendor", "**/gen"])
        #expect(f.accepts("main.go"))
        #expect(!f.accepts("pkg/a_test.go"))
        #expect(!f.accepts("vendor/x.go") && !f.accepts("a/vendor/x.go"))
        #expect(f.accepts("vendored/x.go"))
        #expect(!f.accepts("gen/x.go") && !f.accepts("a/gen/x.go"))
    }
}

@Suite struct RegexSyntaxTests {
    @Test func breToEre() {
        #expect(RegexSyntax.breToEre(#"foo\|bar"#) == "foo|bar")
        #expect(RegexSyntax.breToEre(#"\(ab\)c"#) == "(ab)c")
        #expect(RegexSyntax.breToEre(#"\(ab"#) == #"\(ab"#)
        #expect(RegexSyntax.breToEre(#"a\{2\}"#) == "a{2}")
        #expect(RegexSyntax.breToEre(#"\{x\}"#) == #"\{x\}"#)
        #expect(RegexSyntax.breToEre(#"a\+b\?"#) == #"a\+b\?"#)
        #expect(RegexSyntax.breToEre(#"a\\b"#) == #"a\\b"#)
    }

    @Test func literalBraces() {
        #expect(RegexSyntax.escapeLiteralBraces("a{2}") == "a{2}")
        #expect(RegexSyntax.escapeLiteralBraces("a{2,}b{,3}c{1,4}") == "a{2,}b{,3}c{1,4}")
        #expect(RegexSyntax.escapeLiteralBraces("fn main() {") == "fn main() [{]")
        #expect(RegexSyntax.escapeLiteralBraces("${x}") == "$[{]x[}]")
        #expect(RegexSyntax.escapeLiteralBraces("[{}]") == "[{}]")
        #expect(RegexSyntax.escapeLiteralBraces(#"\{"#) == "[{]")
    }

    @Test func semanticWords() {
        #expect(RegexSyntax.stripForSemantic(#"^async\s+fn\s+(\w+)"#) == "async fn")
        #expect(RegexSyntax.stripForSemantic("foo|bar.*baz") == "foo bar baz")
        #expect(RegexSyntax.semanticQuery(query: "retry logic", pattern: "Retry|backoff") == "retry logic backoff")
    }

    @Test func matcherFlags() {
        let ci = LineMatcher(pattern: "fetch.*url", fixedStrings: false, wordRegexp: false, caseSensitive: false)
        #expect(ci.matches("def FETCH(URL):"))
        let cs = LineMatcher(pattern: "Fetch", fixedStrings: false, wordRegexp: false, caseSensitive: true)
        #expect(!cs.matches("fetch"))
        let w = LineMatcher(pattern: "get", fixedStrings: false, wordRegexp: true, caseSensitive: false)
        #expect(w.matches("x = get(1)") && !w.matches("target = 1"))
        let f = LineMatcher(pattern: "a.b(", fixedStrings: true, wordRegexp: false, caseSensitive: false)
        #expect(f.matches("call a.b(1)") && !f.matches("axb("))
        let invalid = LineMatcher(pattern: "foo(", fixedStrings: false, wordRegexp: false, caseSensitive: false)
        #expect(invalid.matches("foo(bar)"))
        let lines = ci.matchingLines("a\nfetch url\nb\nFetch the URL")
        #expect(lines.map(\.number) == [2, 4])
    }
}

@Suite struct AccelerationTests {
    @Test func modeFromFlagsAndEnvironment() throws {
        #expect(try AccelerationMode.resolve(forceCPU: false, forceGPU: false, env: [:]) == .auto)
        #expect(try AccelerationMode.resolve(forceCPU: false, forceGPU: false, env: ["COLGREP_FORCE_CPU": "true"]) == .forceCPU)
        #expect(try AccelerationMode.resolve(forceCPU: false, forceGPU: false, env: ["NEXT_PLAID_FORCE_GPU": "1"]) == .forceGPU)
        #expect(throws: ColGrepError.self) { try AccelerationMode.resolve(forceCPU: true, forceGPU: false, env: ["FORCE_GPU": "1"]) }
    }
}

@Suite struct ArgumentTests {
    @Test func positionalRules() {
        let none: (String) -> Bool = { _ in false }
        var r = QueryArguments.resolve(query: "retry", rest: [], pattern: nil, exists: none)
        #expect(r.query == "retry" && r.pattern == nil && r.paths == ["."])
        r = QueryArguments.resolve(query: "./src", rest: [], pattern: "TODO", exists: none)
        #expect(r.query == "TODO" && r.pattern == "TODO" && r.paths == ["./src"])
        r = QueryArguments.resolve(query: "fetch", rest: ["error handling"], pattern: nil, exists: none)
        #expect(r.query == "error handling" && r.pattern == "fetch" && r.paths == ["."])
        r = QueryArguments.resolve(query: "fetch", rest: ["lib"], pattern: nil, exists: { $0 == "lib" })
        #expect(r.query == "fetch" && r.pattern == nil && r.paths == ["lib"])
    }

    @Test func topKDefaults() {
        var req = SearchRequest(query: "q", paths: ["."])
        #expect(req.topK(config: ColGrepConfig()) == 15)
        req.contextLines = 4
        #expect(req.topK(config: ColGrepConfig()) == 10)
        req.pattern = "x"
        #expect(req.topK(config: ColGrepConfig()) > 1_000_000)
        req.explicitK = 3
        #expect(req.topK(config: ColGrepConfig()) == 3)
    }
}

@Suite struct EngineAdminTests {
    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("eng-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func statusClearAndStatsTexts() throws {
        let data = try tempDir()
        let project = try tempDir()
        defer { try? FileManager.default.removeItem(at: data); try? FileManager.default.removeItem(at: project) }
        let engine = try Engine(paths: DataPaths(root: data), environment: [:])
        let root = (project.path as NSString).resolvingSymlinksInPath
        #expect(try engine.statusText(path: project.path, model: "m/x") == "No index found for \(root) [m/x]\nRun `colgrep <query>` to create one.\n")
        #expect(engine.statsText() == "No indexes found.\n")
        // An index folder as the indexer leaves it: project.json + state.json.
        let layout = IndexLayout(directory: engine.paths.indexDirectory(projectPath: root, model: "m/x"))
        try AtomicFile.writeJSON(ProjectInfo(projectPath: root, model: "m/x"), to: layout.projectFile)
        var state = IndexState()
        state.unitCount = 12
        try state.save(layout)
        SearchStats.increment(layout)
        SearchStats.increment(layout)
        let status = try engine.statusText(path: project.path, model: "m/x")
        #expect(status.hasPrefix("Project: \(root)\nModel:   m/x\nIndex:   \(layout.directory.path)\n\n"))
        // A subfolder is served by the parent index.
        let sub = project.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        #expect(try engine.statusText(path: sub.path, model: "m/x").contains("  Subdirectory: src\n"))
        #expect(engine.statsText() == "Project: \(root)\n  Model: m/x\n  Functions indexed: 12\n  Search count: 2\n\nTotal: 1 indexes, 12 functions, 2 searches\n")
        _ = engine.resetStats()
        #expect(SearchStats.load(layout).searchCount == 0)
        #expect(try engine.clear(path: project.path, model: "m/x", all: false) == "🗑️  Cleared index for \(root) [m/x]\n")
        #expect(!FileManager.default.fileExists(atPath: layout.directory.path))
        #expect(try engine.clear(path: project.path, model: "m/x", all: false) == "No index found for \(root) [m/x]\n")
        #expect(try engine.clear(path: ".", model: nil, all: true) == "✅ Cleared 0 index(es)\n")
    }

    @Test func missingPathNamesTheClosestParent() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = FileManager.default.createFile(atPath: dir.appendingPathComponent("present.txt").path, contents: Data())
        do {
            _ = try PathResolver.canonical(dir.appendingPathComponent("missing/deeper").path)
            Issue.record("expected an error")
        } catch let error as ColGrepError {
            #expect(error.description.contains("Path not found"))
            #expect(error.description.contains("present.txt"))
        }
    }

    @Test func lockIsExclusiveAndNonBlockingTryFails() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(".lock")
        let first = try IndexLock.acquire(url)
        // flock locks belong to the open file description: a second open in this process conflicts too.
        #expect(try IndexLock.tryAcquire(url) == nil)
        #expect(throws: ColGrepError.self) { try IndexLock.acquire(url, timeout: 0.2, retry: 0.05) }
        first.release()
        #expect(try IndexLock.tryAcquire(url) != nil)
    }
}
