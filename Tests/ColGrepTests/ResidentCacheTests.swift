import Foundation
import Testing
@testable import ColGrep

/// The query server's handle cache: an index's handles are reused while its manifest, store and store log
/// keep their identities, and opened again after any write, replacement, or a change during the open.
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
    func lookUp(_ cache: ResidentCache, opens: inout Int, during: () throws -> Void = {}) throws -> IndexHandles {
        var count = 0
        let handles = try cache.indexHandles(layout: layout) {
            count += 1
            try during()
            return IndexHandles(store: nil, plaid: nil)
        }
        opens += count
        return handles
    }

    @Test func handlesAreKeptWhileTheIndexIsUnchangedAndReopenedAfterAnyWrite() throws {
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
        let first = try lookUp(cache, opens: &opens)
        #expect(try lookUp(cache, opens: &opens) === first)
        #expect(opens == 1)

        // A change of owner or mode only (SQLite as root fchowns its log at every open): still the same.
        #expect(chmod(wal.path, 0o600) == 0)
        #expect(try lookUp(cache, opens: &opens) === first)
        #expect(opens == 1)

        // A commit grows the log: opened again.
        let handle = try FileHandle(forWritingTo: wal)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("frame".utf8))
        try handle.close()
        let second = try lookUp(cache, opens: &opens)
        #expect(second !== first && opens == 2)
        #expect(try lookUp(cache, opens: &opens) === second)

        // A new manifest (an append, a rebuild) written beside and renamed over the old one: opened again.
        let next = layout.vectorDirectory.appendingPathComponent("manifest.next")
        try Data("manifest v2".utf8).write(to: next)
        #expect(rename(next.path, manifest.path) == 0)
        let third = try lookUp(cache, opens: &opens)
        #expect(third !== second && opens == 3)

        // The index cleared (files gone): opened again.
        try FileManager.default.removeItem(at: layout.metadataFile)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 4)

        // Changed while it was being opened: that search uses it, the next one opens again.
        try Data("db again".utf8).write(to: layout.metadataFile)
        _ = try lookUp(cache, opens: &opens) { try Data("manifest v3, longer".utf8).write(to: manifest) }
        #expect(opens == 5)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 6)
        _ = try lookUp(cache, opens: &opens)
        #expect(opens == 6)
    }
}
