import Foundation
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
}
