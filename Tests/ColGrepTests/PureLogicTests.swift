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
        #expect(c.alpha(override: nil, env: [:]) == 0.60)
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
        #expect(text.contains("  k:            9\n"))
        #expect(text.contains("  alpha:        0.60 (default)"))
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
