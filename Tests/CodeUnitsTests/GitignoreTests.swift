import Foundation
import Testing
@testable import CodeUnits

@Suite struct GitignoreTests {
    @Test func wildmatchBasics() {
        func m(_ p: String, _ t: String, _ pathname: Bool = true) -> Bool {
            Wildmatch.matches(Array(p.utf8)[...], Array(t.utf8)[...], pathname: pathname)
        }
        #expect(m("*.py", "a.py"))
        #expect(!m("*.py", "d/a.py"))
        #expect(m("*.py", "d/a.py", false))
        #expect(m("**/a.py", "x/y/a.py"))
        #expect(m("**/a.py", "a.py"))
        #expect(m("x/**", "x/y/z"))
        #expect(m("x/**/z", "x/z"))
        #expect(m("x/**/z", "x/a/b/z"))
        #expect(!m("x**z", "x/z"))
        #expect(m("[a-c]x", "bx"))
        #expect(!m("[!a-c]x", "bx"))
        #expect(m("[[:digit:]]", "7"))
        #expect(m("\\*", "*"))
        #expect(!m("\\*", "a"))
        #expect(m("a?c", "abc"))
        #expect(!m("a?c", "a/c"))
    }

    @Test func patternParsing() throws {
        let file = GitignoreFile(base: "", contents: "# comment\n\\#hash\n!keep.log\n*.log\ntrail  \nesc\\ \nbuild/\n/anchored\n")
        func ignored(_ p: String, dir: Bool = false) -> Bool? {
            file.decision(for: Array(p.utf8), isDirectory: dir).map { $0 == .ignore }
        }
        #expect(ignored("#hash") == true)
        #expect(ignored("x.log") == true)
        #expect(ignored("trail") == true)
        #expect(ignored("esc ") == true)
        #expect(ignored("build") == nil)
        #expect(ignored("build", dir: true) == true)
        #expect(ignored("sub/anchored") == nil)
        #expect(ignored("anchored") == true)
    }

    /// Random patterns and trees; every decision must equal `git check-ignore`'s.
    @Test func matchesGitCheckIgnoreOnGeneratedTrees() throws {
        var rng = SeededGenerator(state: 42)
        let names = ["a", "b", "foo", "bar.txt", "x.py", "Ab.PY", "c1", "[x]", "t "]
        let atoms = ["a", "b", "foo", "*", "**", "?", "*.py", "*.txt", "[a-c]", "[!a]*", "[[:alpha:]]*", "f*o",
                     "\\[x\\]", "[[:digit:]]*", "bar.*", "t\\ ", "*1"]
        var mismatches: [String] = []
        var ignoredCount = 0, checkedCount = 0
        for round in 0..<20 {
            let dir = try TemporaryDirectory()
            // Tree: depth ≤ 3, directories and files from the name pool.
            var paths: [(String, Bool)] = []
            for _ in 0..<40 {
                let depth = Int.random(in: 1...3, using: &rng)
                var comps: [String] = []
                for _ in 0..<depth { comps.append(names.randomElement(using: &rng)!) }
                let path = comps.joined(separator: "/")
                var isDir: ObjCBool = false
                let full = dir.url.appendingPathComponent(path)
                if FileManager.default.fileExists(atPath: full.path, isDirectory: &isDir) { continue }
                // A parent that exists as a file blocks this path.
                var blocked = false
                for k in 1..<comps.count {
                    let parent = dir.url.appendingPathComponent(comps[0..<k].joined(separator: "/"))
                    var pd: ObjCBool = false
                    if FileManager.default.fileExists(atPath: parent.path, isDirectory: &pd), !pd.boolValue { blocked = true }
                }
                if blocked { continue }
                if Bool.random(using: &rng) { try dir.mkdir(path) } else { try dir.write(path, "x") }
            }
            if let e = FileManager.default.enumerator(atPath: dir.url.path) {
                for case let p as String in e {
                    var d: ObjCBool = false
                    _ = FileManager.default.fileExists(atPath: dir.url.appendingPathComponent(p).path, isDirectory: &d)
                    paths.append((p, d.boolValue))
                }
            }
            func randomPattern() -> String {
                var parts: [String] = []
                for _ in 0..<Int.random(in: 1...3, using: &rng) { parts.append(atoms.randomElement(using: &rng)!) }
                var p = parts.joined(separator: "/")
                if Int.random(in: 0..<5, using: &rng) == 0 { p = "/" + p }
                if Int.random(in: 0..<5, using: &rng) == 0 { p += "/" }
                if Int.random(in: 0..<4, using: &rng) == 0 { p = "!" + p }
                if Int.random(in: 0..<8, using: &rng) == 0 { p += "  " }
                return p
            }
            // Root .gitignore and one nested .gitignore in an existing directory.
            let rootPatterns = (0..<6).map { _ in randomPattern() }
            try dir.write(".gitignore", rootPatterns.joined(separator: "\n") + "\n")
            let dirs = paths.filter { $0.1 }.map(\.0)
            var nested: (String, [String])?
            if let d = dirs.randomElement(using: &rng) {
                let pats = (0..<4).map { _ in randomPattern() }
                try dir.write(d + "/.gitignore", pats.joined(separator: "\n") + "\n")
                nested = (d, pats)
            }
            var env = ProcessInfo.processInfo.environment
            env["HOME"] = dir.url.path
            env["GIT_CONFIG_NOSYSTEM"] = "1"
            try runProcess(["git", "init", "-q"], in: dir.url, environment: env)
            let candidates = paths.map(\.0).filter { !$0.hasSuffix(".gitignore") }
            let input = Data(candidates.joined(separator: "\0").utf8)
            let (_, out) = try runProcess(["git", "-c", "core.excludesFile=/dev/null", "check-ignore", "--no-index", "--stdin", "-z"],
                                          in: dir.url, input: input, environment: env)
            let gitIgnored = Set(String(decoding: out, as: UTF8.self).split(separator: "\0").map(String.init))

            // Ours: rules per directory as the walker builds them; a path under an ignored directory is ignored.
            let isDirectory = Dictionary(paths.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
            func oursIgnored(_ path: String) -> Bool {
                let comps = path.split(separator: "/").map(String.init)
                var rules = IgnoreRules(insideGitRepository: true).entering(directory: dir.url, relativeToMatchRoot: "")
                for k in 1...comps.count {
                    let prefix = comps[0..<k].joined(separator: "/")
                    if rules.isIgnored(Array(prefix.utf8), isDirectory: k < comps.count || isDirectory[path] == true) { return true }
                    if k < comps.count {
                        rules = rules.entering(directory: dir.url.appendingPathComponent(prefix), relativeToMatchRoot: prefix + "/")
                    }
                }
                return false
            }
            ignoredCount += gitIgnored.count
            checkedCount += candidates.count
            for path in candidates where oursIgnored(path) != gitIgnored.contains(path) {
                mismatches.append("round \(round) \(path): git=\(gitIgnored.contains(path)) root=\(rootPatterns) nested=\(String(describing: nested))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        // The generated cases must exercise both outcomes, or the comparison proves nothing.
        #expect(ignoredCount > checkedCount / 10 && ignoredCount < checkedCount * 9 / 10, "\(ignoredCount) of \(checkedCount)")
    }
}
