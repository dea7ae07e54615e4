import Foundation
import Store
import Testing
@testable import ColGrep

/// The query server's index cache: a vector index is reused while its manifest keeps its identity, and
/// opened again after a new manifest is committed, the index is cleared, or the manifest changed during the open.
@Suite struct ResidentCacheTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-resident-\(UUID().uuidString.prefix(8))")
    var layout: IndexLayout { IndexLayout(directory: folder) }
    var manifest: URL { layout.vectorDirectory.appendingPathComponent("manifest.plaid") }
    var wal: URL { URL(fileURLWithPath: layout.metadataFile.path + "-wal") }

    func makeIndex() throws {
        try FileManager.default.createDirectory(at: layout.vectorDirectory, withIntermediateDirectories: true)
        try Data("manifest v1".utf8).write(to: manifest)
        try Data("db".utf8).write(to: layout.metadataFile)
        try Data().write(to: wal)
    }

    /// Looks the index up, counting opens.
    func lookUp(_ cache: ResidentCache, opens: inout Int, during: () throws -> Void = {}) throws {
        var count = 0
        _ = try cache.vectorIndex(layout: layout) {
            count += 1
            try during()
            return nil
        }
        opens += count
    }

    @Test func theVectorIndexIsKeptWhileItsManifestIsUnchangedAndReopenedAfterAnyCommit() throws {
        try makeIndex()
        defer { try? FileManager.default.removeItem(at: folder) }
        var opens = 0

        // Off (a one-shot process): every lookup opens.
        let off = ResidentCache()
        _ = try lookUp(off, opens: &opens)
        _ = try lookUp(off, opens: &opens)
        #expect(opens == 2)

        let cache = ResidentCache()
        cache.enable()
        opens = 0
        _ = try lookUp(cache, opens: &opens)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 1)

        // A change of owner or mode only (status-change time), or a write to the store: still the same.
        #expect(chmod(manifest.path, 0o600) == 0)
        try Data("more rows".utf8).write(to: wal)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 1)

        // A new manifest (an append, a merge) written beside and renamed over the old one: opened again.
        let next = layout.vectorDirectory.appendingPathComponent("manifest.next")
        try Data("manifest v2".utf8).write(to: next)
        #expect(rename(next.path, manifest.path) == 0)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 2)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 2)

        // The index cleared (manifest gone): opened again.
        try FileManager.default.removeItem(at: manifest)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 3)

        // Rebuilt, and changed again while it was being opened: that search uses it, the next one opens
        // again, then it is kept.
        try Data("manifest v3".utf8).write(to: manifest)
        _ = try lookUp(cache, opens: &opens) { try Data("manifest v4, longer".utf8).write(to: manifest) }
        #expect(opens == 4)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 5)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 5)

        // An open failure is recorded once and forgets what was kept.
        cache.noteOpenFailure()
        #expect(cache.takeOpenFailure() && !cache.takeOpenFailure())
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 6)
    }

    /// Looks the read-only store up, counting opens; returns what it reads under key "k".
    func readStore(_ cache: ResidentCache, opens: inout Int) throws -> String? {
        let store = try cache.metadataStore(file: layout.metadataFile) {
            opens += 1
            return try MetadataStore(path: layout.metadataFile, readOnly: true)
        }
        return try store.value(forKey: "k")
    }

    @Test func theStoreIsKeptWhileNothingIsWrittenAndReopenedAfterAnyWrite() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ value: String, to file: URL) throws {
            let writer = try MetadataStore(path: file, readOnly: false)
            try writer.setValue(value, forKey: "k")
        }
        try write("one", to: layout.metadataFile)
        var opens = 0

        // Off (a one-shot process): every lookup opens.
        let off = ResidentCache()
        #expect(try readStore(off, opens: &opens) == "one")
        #expect(try readStore(off, opens: &opens) == "one")
        #expect(opens == 2)

        let cache = ResidentCache()
        cache.enable()
        opens = 0
        #expect(try readStore(cache, opens: &opens) == "one")
        #expect(try readStore(cache, opens: &opens) == "one")
        #expect(opens == 1 && cache.keepsStore(layout.metadataFile))

        // A commit of another connection (it lands in the write-ahead log): opened again, the new value read.
        try write("two", to: layout.metadataFile)
        #expect(try readStore(cache, opens: &opens) == "two")
        #expect(opens == 2)
        #expect(try readStore(cache, opens: &opens) == "two")
        #expect(opens == 2)

        // The store replaced by a new file (a rebuild): opened again.
        let rebuilt = folder.appendingPathComponent("rebuilt.db")
        try write("three", to: rebuilt)
        // A store of several keyword shards is its main file and its shard files (`<main>-keywords-N`): all move.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        for name in names where name.hasPrefix(layout.metadataFile.lastPathComponent) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
        for name in names where name.hasPrefix("rebuilt.db-keywords-") && !name.hasSuffix("-wal") && !name.hasSuffix("-shm") {
            let target = layout.metadataFile.path + name.dropFirst("rebuilt.db".count)
            #expect(rename(folder.appendingPathComponent(name).path, target) == 0)
        }
        #expect(rename(rebuilt.path, layout.metadataFile.path) == 0)
        #expect(try readStore(cache, opens: &opens) == "three")
        #expect(opens == 3)

        // An open failure forgets what was kept.
        cache.noteOpenFailure()
        #expect(!cache.keepsStore(layout.metadataFile))
        _ = try readStore(cache, opens: &opens)
        #expect(opens == 4)
    }
}
