import Foundation
import Testing
@testable import CodeUnits

@Suite struct WalkerTests {
    /// An environment whose global git config and excludes file live in `home`.
    static func environment(home: URL) -> [String: String] {
        ["HOME": home.path, "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path]
    }

    static func walk(_ dir: TemporaryDirectory, _ options: WalkOptions = WalkOptions(), home: URL? = nil) throws -> (files: [String], skipped: [SkippedPath]) {
        let env = environment(home: home ?? dir.url.appendingPathComponent("no-home"))
        let (files, skipped) = try FileWalker(root: dir.url, options: options, environment: env).walk()
        return (files.map(\.relativePath), skipped)
    }

    @Test func colgrepPathRules() throws {
        let dir = try TemporaryDirectory()
        for path in ["src/main.py", "src/.hidden.py", ".github/workflows/ci.yml", ".gitlab-ci.yml", "node_modules/x/index.js",
                     "build/out.c", "pkg/foo.egg-info/a.py", "notes.unknownext", "README.md", "Makefile", "lib/Dockerfile",
                     ".secret/key.py", "keep/.cache/data.json", "docs/guide.rst"] {
            try dir.write(path, "x = 1\n")
        }
        let (files, _) = try Self.walk(dir)
        #expect(files == [".github/workflows/ci.yml", ".gitlab-ci.yml", "Makefile", "README.md", "docs/guide.rst", "lib/Dockerfile", "src/main.py"])
        let forced = try Self.walk(dir, WalkOptions(forceInclude: ["build", ".secret"], extraIgnore: ["docs", "*.md"]))
        #expect(forced.files == [".github/workflows/ci.yml", ".gitlab-ci.yml", ".secret/key.py", "Makefile", "build/out.c", "lib/Dockerfile", "src/main.py"])
    }

    /// The walker tests only an entry's own name: for every path whose folders the filter keeps (the only
    /// paths a walk reaches), that equals the whole-path rule, forced and extra patterns included.
    @Test func entryRuleEqualsTheWholePathRuleBelowKeptFolders() {
        let names = ["src", "build", ".git", ".github", "vendor", "x.egg-info", "docs", "a.md", "main.py", ".secret",
                     "keep", "node_modules", "tmp", "lib", "gen.xcodeproj", ".gitlab-ci.yml", "out"]
        let filters = [PathFilter(forceInclude: [], extraIgnore: []),
                       PathFilter(forceInclude: ["build", ".secret", "*.md"], extraIgnore: ["docs", "*.py"]),
                       PathFilter(forceInclude: ["src/vendor", "*vendor"], extraIgnore: ["lib"])]
        var compared = 0
        for filter in filters {
            var level = [""]
            for _ in 0..<3 {
                var next: [String] = []
                for folder in level {
                    for name in names {
                        let path = folder.isEmpty ? name : folder + "/" + name
                        let whole = filter.shouldIgnore(path)
                        #expect(filter.shouldIgnore(entry: name, relativePath: path) == whole, "\(path)")
                        compared += 1
                        if !whole { next.append(path) }
                    }
                }
                level = next
            }
        }
        #expect(compared > 3000)
    }

    @Test func hiddenRootIsWalked() throws {
        let dir = try TemporaryDirectory()
        try dir.write(".project/a.py", "x = 1\n")
        let (files, _) = try FileWalker(root: dir.url.appendingPathComponent(".project")).walk()
        #expect(files.map(\.relativePath) == ["a.py"])
    }

    @Test func gitignoreAppliesOnlyInsideRepositories() throws {
        let dir = try TemporaryDirectory()
        try dir.write(".gitignore", "*.log.py\ngenerated/\n!keep.log.py\n")
        try dir.write("a.log.py", "x\n")
        try dir.write("keep.log.py", "x\n")
        try dir.write("generated/g.py", "x\n")
        try dir.write("sub/.gitignore", "/local.py\n")
        try dir.write("sub/local.py", "x\n")
        try dir.write("sub/deeper/local.py", "x\n")
        try dir.write("ign/.ignore", "skipme.py\n")
        try dir.write("ign/skipme.py", "x\n")
        let outside = try Self.walk(dir).files
        #expect(outside == ["a.log.py", "generated/g.py", "keep.log.py", "sub/deeper/local.py", "sub/local.py"])
        try runProcess(["git", "init", "-q"], in: dir.url)
        let inside = try Self.walk(dir).files
        #expect(inside == ["keep.log.py", "sub/deeper/local.py"])
    }

    @Test func parentGitignoreInfoExcludeAndGlobalExcludes() throws {
        let dir = try TemporaryDirectory()
        try runProcess(["git", "init", "-q"], in: dir.url)
        try dir.write(".gitignore", "project/skip_parent.py\n")
        try dir.write(".git/info/exclude", "excluded_*.py\n")
        let home = dir.url.appendingPathComponent("home")
        try dir.write("home/.config/git/ignore", "global_*.py\n")
        for name in ["skip_parent.py", "excluded_a.py", "global_b.py", "kept.py"] { try dir.write("project/\(name)", "x\n") }
        let env = Self.environment(home: home)
        let files = try FileWalker(root: dir.url.appendingPathComponent("project"), options: WalkOptions(), environment: env).walk().files
        #expect(files.map(\.relativePath) == ["kept.py"])
        // core.excludesFile in ~/.gitconfig overrides the XDG default.
        try dir.write("home/.gitconfig", "[core]\n\texcludesFile = ~/my-ignore\n")
        try dir.write("home/my-ignore", "kept.py\n")
        let files2 = try FileWalker(root: dir.url.appendingPathComponent("project"), options: WalkOptions(), environment: env).walk().files
        #expect(files2.map(\.relativePath) == ["global_b.py"])
    }

    @Test func sizeCapAndTenMegabyteSingleLine() throws {
        let dir = try TemporaryDirectory()
        try dir.write("big.js", Data(repeating: UInt8(ascii: "a"), count: 10 * 1024 * 1024))
        try dir.write("small.js", "let a = 1\n")
        let (files, skipped) = try Self.walk(dir)
        #expect(files == ["small.js"])
        #expect(skipped.count == 1 && skipped[0].path == "big.js" && skipped[0].reason.contains("larger than 512 KiB"))
        // The extractor refuses it too when handed the bytes directly.
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let extraction = extractor.extract(relativePath: "big.js", data: Data(repeating: UInt8(ascii: "a"), count: 10 * 1024 * 1024))
        #expect(extraction.units.isEmpty && extraction.skipReason?.contains("larger than") == true)
    }

    @Test func symlinksAreNotFollowedAndLoopsEndTheWalk() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a/real.py", "x = 1\n")
        try FileManager.default.createSymbolicLink(atPath: dir.url.appendingPathComponent("a/loop").path, withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: dir.url.appendingPathComponent("self.py").path, withDestinationPath: "self.py")
        try FileManager.default.createSymbolicLink(atPath: dir.url.appendingPathComponent("link.py").path, withDestinationPath: "a/real.py")
        let (files, skipped) = try Self.walk(dir)
        #expect(files == ["a/real.py"])
        #expect(Set(skipped.map(\.path)) == ["a/loop", "link.py", "self.py"])
        #expect(skipped.allSatisfy { $0.reason == "symbolic link (not followed)" })
    }

    /// Root can read anything, so `chmod 000` only makes a folder unreadable for other users: as root the
    /// folder is simply walked; otherwise it is skipped with its reason. A FIFO stands in for an
    /// unreadable file in both cases (it is never opened).
    @Test func unreadableFoldersAndSpecialFiles() throws {
        let dir = try TemporaryDirectory()
        try dir.write("locked/inside.py", "x = 1\n")
        try dir.write("ok.py", "x = 1\n")
        #expect(mkfifo(dir.url.appendingPathComponent("pipe.py").path, 0o644) == 0)
        chmod(dir.url.appendingPathComponent("locked").path, 0)
        let (files, skipped) = try Self.walk(dir)
        chmod(dir.url.appendingPathComponent("locked").path, 0o755)
        #expect(skipped.contains(SkippedPath(path: "pipe.py", reason: "not a regular file")))
        if getuid() == 0 {
            #expect(files == ["locked/inside.py", "ok.py"])
        } else {
            #expect(files == ["ok.py"])
            #expect(skipped.contains { $0.path == "locked" && $0.reason.hasPrefix("unreadable directory") })
        }
    }

    @Test func filesVanishingMidWalkAreSkippedNotFatal() throws {
        let dir = try TemporaryDirectory()
        for i in 0..<200 { try dir.write("d\(i % 10)/f\(i).py", "x = \(i)\n") }
        let root = dir.url
        // Delete files while the walk runs; whatever interleaving happens, the walk must finish and every
        // file it reports either existed when stat'ed or is listed as skipped.
        let deleter = Thread {
            for i in stride(from: 0, to: 200, by: 2) { try? FileManager.default.removeItem(at: root.appendingPathComponent("d\(i % 10)/f\(i).py")) }
        }
        deleter.start()
        let (files, skipped) = try Self.walk(dir)
        while deleter.isExecuting { usleep(1000) }
        #expect(files.count + skipped.count <= 200)
        #expect(skipped.allSatisfy { $0.reason.contains("vanished") })
        // A file listed by the walk and deleted before extraction is a counted skip, not a crash.
        try dir.write("gone.py", "x = 1\n")
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        try FileManager.default.removeItem(at: root.appendingPathComponent("gone.py"))
        let extraction = extractor.extract(root: root, relativePath: "gone.py")
        #expect(extraction.units.isEmpty && extraction.skipReason == "vanished before it was read")
        // A path that is a directory where a file was expected cannot be read: skipped with the reason.
        try dir.mkdir("dir.py")
        #expect(extractor.extract(root: root, relativePath: "dir.py").skipReason?.hasPrefix("unreadable") == true)
    }

    @Test func rootMustBeADirectory() throws {
        let dir = try TemporaryDirectory()
        let file = try dir.write("f.py", "x\n")
        #expect(throws: WalkError.self) { try FileWalker(root: file).walk() }
    }
}

@Suite struct ProjectExtractionTests {
    @Test func walkExtractAndLinkCallersAcrossFiles() throws {
        let dir = try TemporaryDirectory()
        try dir.write("lib/util.py", "def helper():\n    return 1\n")
        try dir.write("app/main.go", "package main\n\nfunc main() {\n\thelper()\n}\n")
        try dir.write("README.md", "# Project\n")
        try dir.write("bad.py", Data([0x66, 0xff, 0x0a]))
        try dir.write("big.py", Data(repeating: UInt8(ascii: "#"), count: 600 * 1024))
        let extractor = try UnitExtractor(grammarDirectory: grammarDirectory)
        let project = try ProjectExtraction.run(root: dir.url, extractor: extractor)
        #expect(project.files.map(\.relativePath) == ["README.md", "app/main.go", "bad.py", "lib/util.py"])
        #expect(project.units.first { $0.name == "helper" }?.calledBy == ["main"])
        #expect(project.units.contains { $0.unitType == .document && $0.file == "README.md" })
        #expect(Set(project.skipped.map(\.path)) == ["bad.py", "big.py"])
        #expect(project.skipped.first { $0.path == "bad.py" }?.reason == "invalid UTF-8")
        #expect(project.warnings.isEmpty)
    }
}
