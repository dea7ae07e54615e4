import Foundation
import Testing
@testable import ColGrep

/// The query server's freshness watch: armed after a full check, it reports "unchanged" until anything
/// under the project changes — an edit, a touch, a new or deleted file, a new folder and then a file in
/// it, a rename — or the index files and ignore inputs it stamps change; changes made during a full
/// check disarm the next one; folders the walk never enters do not disarm it.
@Suite(.serialized) struct FreshnessWatchTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-watch-\(UUID().uuidString.prefix(8))")
    var layout: IndexLayout { IndexLayout(directory: root.appendingPathComponent(".data/index")) }

    func write(_ path: String, _ text: String = "x") throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func stamp() -> FreshnessWatch.Stamp { .current(layout: layout, root: root.path, environment: [:]) }

    /// A full check, then whether the watch reports the tree unchanged after `change`.
    func unchangedAfter(_ watch: FreshnessWatch, _ change: () throws -> Void) rethrows -> Bool {
        #expect(watch.beginFullCheck())
        watch.finishFullCheck(stamp: stamp())
        #expect(watch.isUnchanged(stamp: stamp()), "armed watch, nothing changed")
        try change()
        return watch.isUnchanged(stamp: stamp())
    }

    @Test func everyKindOfChangeDisarmsTheWatch() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try write("src/a.py")
        try write("src/deep/b.py")
        try write("README.md")
        try write(".data/index/state.json", "{}")
        let watch = try #require(FreshnessWatch(root: root.path), "a temporary folder on a local file system")

        #expect(!(try unchangedAfter(watch) { try write("src/a.py", "edited") }))
        #expect(!(try unchangedAfter(watch) { try write("src/deep/new.py") }))
        #expect(!(try unchangedAfter(watch) { try FileManager.default.removeItem(at: root.appendingPathComponent("src/deep/new.py")) }))
        #expect(!unchangedAfter(watch) {
            var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
            _ = utimensat(AT_FDCWD, root.appendingPathComponent("README.md").path, &times, 0)
        })
        #expect(!(try unchangedAfter(watch) {
            try FileManager.default.moveItem(at: root.appendingPathComponent("src/deep"), to: root.appendingPathComponent("src/moved"))
        }))
        // A folder created after the watch started, then a file in it: both seen.
        #expect(!(try unchangedAfter(watch) { try write("pkg/new/c.go") }))
        #expect(!(try unchangedAfter(watch) { try write("pkg/new/c.go", "edited") }))
        #expect(!(try unchangedAfter(watch) { try write("src/moved/d.py") }))
        // The index files are stamped, not watched: a new state disarms through the stamp.
        #expect(!(try unchangedAfter(watch) { try write(".data/index/state.json", "{\"a\":1}") }))
        // An ignore file above the root is stamped too.
        #expect(!(try unchangedAfter(watch) { try write(".gitignore", "*.log") }))
    }

    @Test func foldersTheWalkSkipsAndReadsDoNotDisarmIt() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try write("src/a.py")
        try write("node_modules/x/index.js")
        try write(".git/HEAD")
        let watch = try #require(FreshnessWatch(root: root.path))
        #expect(try unchangedAfter(watch) {
            try write("node_modules/x/index.js", "changed")
            try write(".git/HEAD", "changed")
            try write(".git/objects/ab/cd")
            _ = FileManager.default.contents(atPath: root.appendingPathComponent("src/a.py").path)
        })
    }

    @Test func aChangeDuringTheFullCheckDisarmsTheNextOne() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try write("src/a.py")
        let watch = try #require(FreshnessWatch(root: root.path))
        #expect(watch.beginFullCheck())
        try write("src/a.py", "written while the walk ran")
        watch.finishFullCheck(stamp: stamp())
        #expect(!watch.isUnchanged(stamp: stamp()))
        // Nothing is armed before a full check finished.
        let fresh = try #require(FreshnessWatch(root: root.path))
        #expect(!fresh.isUnchanged(stamp: stamp()))
    }

    @Test func theServerCacheKeepsOneWatchPerProjectAndNoneWhenOff() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try write("src/a.py")
        let off = ResidentCache()
        #expect(off.freshnessWatch(root: root.path, layout: layout, forceInclude: [], extraIgnore: []) == nil)
        let cache = ResidentCache()
        cache.enable()
        let first = try #require(cache.freshnessWatch(root: root.path, layout: layout, forceInclude: [], extraIgnore: []))
        #expect(cache.freshnessWatch(root: root.path, layout: layout, forceInclude: [], extraIgnore: []) === first)
        #expect(cache.freshnessWatch(root: root.path, layout: layout, forceInclude: [], extraIgnore: ["gen"]) !== first)
        // force_include can re-include any folder: no watch then.
        #expect(cache.freshnessWatch(root: root.path, layout: layout, forceInclude: ["node_modules/x"], extraIgnore: []) == nil)
    }
}
