import Foundation
@testable import Plaid
import Tensor
import Testing

/// The exact stage's int16 centroid tables stored beside the codec (`exact-*.plaid`, named in the
/// manifest with the codec file they come from): read back equal to the tables built in memory and
/// searched with identical results; never used when missing, damaged, truncated, made from another
/// codec or of another layout; stored again by the next write.
@Suite struct StoredExactCentroidsTests {
    func makeIndex(_ directory: URL) throws -> (index: PlaidIndex, corpus: SyntheticCorpus) {
        let corpus = smallCorpus(documents: 160)
        return (try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(nbits: 2), backend: nil), corpus)
    }

    /// Search results of `index` and of the same folder searched with tables built in memory.
    func expectSameResults(_ index: PlaidIndex, _ directory: URL, _ corpus: SyntheticCorpus) throws {
        let built = try PlaidIndex.open(at: directory)
        built.codec.exactCentroids = nil  // the search builds them from the centroids
        for query in corpus.queries.prefix(6) {
            let a = index.search(query: query, topK: 10), b = built.search(query: query, topK: 10)
            #expect(!a.isEmpty)
            #expect(a.map { $0.id } == b.map { $0.id })
            #expect(a.map { $0.score.bitPattern } == b.map { $0.score.bitPattern })
        }
    }

    func exactFile(_ directory: URL) throws -> URL {
        let record = try #require(try Manifest.load(from: directory).exactCentroids)
        return directory.appendingPathComponent(record.file.name)
    }

    @Test func storedTablesRoundTripAndSearchAlike() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let (created, corpus) = try makeIndex(directory)
        #expect(created.manifest.exactCentroids?.codec == created.manifest.codec.name)
        // The index's size counts the file.
        let exactBytes = try #require(try FileManager.default.attributesOfItem(atPath: exactFile(directory).path)[.size] as? Int)
        let otherBytes = created.manifest.segments.reduce(created.manifest.codec.size) { $0 + $1.file.size } + (created.manifest.tombstones?.size ?? 0)
        #expect(created.bytesOnDisk == otherBytes + exactBytes)
        let opened = try PlaidIndex.open(at: directory)
        let stored = try #require(opened.codec.exactCentroids)
        let built = ExactCentroids(codec: opened.codec)
        #expect(stored.dimPadded == built.dimPadded)
        #expect(Array(stored.rows) == Array(built.rows))
        #expect(Array(stored.scales).map(\.bitPattern) == Array(built.scales).map(\.bitPattern))
        #expect(Array(stored.sums).map(\.bitPattern) == Array(built.sums).map(\.bitPattern))
        try expectSameResults(opened, directory, corpus)
    }

    /// An index of an earlier build (no tables in its manifest) gets them at its next write.
    @Test func aWriteStoresTablesForAnOlderIndex() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let (_, corpus) = try makeIndex(directory)
        var manifest = try Manifest.load(from: directory)
        manifest.exactCentroids = nil
        try manifest.commit(to: directory, written: [])
        let older = try PlaidIndex.open(at: directory)
        #expect(older.codec.exactCentroids == nil)
        try older.delete(ids: [7])
        #expect(older.codec.exactCentroids != nil)
        let reopened = try PlaidIndex.open(at: directory)
        #expect(reopened.manifest.exactCentroids?.codec == reopened.manifest.codec.name)
        #expect(reopened.codec.exactCentroids != nil)
        try expectSameResults(reopened, directory, corpus)
    }

    @Test func damagedTruncatedOrMissingTablesAreBuiltInsteadAndStoredAgain() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let (_, corpus) = try makeIndex(directory)
        let url = try exactFile(directory)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count / 2] ^= 0x5A
        try bytes.write(to: url)
        // The damage is found (the file changed since it was written), the index still opens and searches alike.
        let damaged = try PlaidIndex.open(at: directory)
        #expect(damaged.codec.exactCentroids == nil)
        try expectSameResults(damaged, directory, corpus)
        // Truncated, then missing: the same.
        try bytes.prefix(bytes.count - 100).write(to: url)
        #expect(try PlaidIndex.open(at: directory).codec.exactCentroids == nil)
        try FileManager.default.removeItem(at: url)
        let missing = try PlaidIndex.open(at: directory)
        #expect(missing.codec.exactCentroids == nil)
        // The next write stores good tables again.
        try missing.delete(ids: [3])
        #expect(try PlaidIndex.open(at: directory).codec.exactCentroids != nil)
        #expect(try exactFile(directory) != url)
    }

    /// Tables recorded as made from another codec file (a retrained codec) are not used.
    @Test func tablesOfAnotherCodecAreIgnored() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        _ = try makeIndex(directory)
        var manifest = try Manifest.load(from: directory)
        manifest.exactCentroids?.codec = "codec-99999999.plaid"
        try manifest.commit(to: directory, written: [])
        #expect(try PlaidIndex.open(at: directory).codec.exactCentroids == nil)
    }

    @Test func otherVersionsShapesAndTruncatedSectionsAreIgnored() throws {
        let centroids = (0..<(40 * 48)).map { (i: Int) -> Float in Float((i * 37) % 101) / 101 - 0.5 }
        let codec = ResidualCodec(dim: 48, nbits: 2, centroids: centroids, cutoffs: [-0.1, 0, 0.1], weights: [-0.2, -0.05, 0.05, 0.2])
        let reference = ExactCentroids(codec: codec)
        let sections = reference.sections(centroidCount: 40)
        let owner = NSObject()
        func readable(_ sections: [Data], k: Int = 40, dim: Int = 48) -> Bool {
            let buffers = sections.map { data -> UnsafeRawBufferPointer in
                let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.count), alignment: 64)
                data.copyBytes(to: copy)
                return UnsafeRawBufferPointer(rebasing: copy[0..<data.count])
            }
            defer { buffers.forEach { UnsafeMutableRawBufferPointer(mutating: $0).deallocate() } }
            guard let tables = ExactCentroids.mapped(buffers[...], centroidCount: k, dim: dim, owner: owner) else { return false }
            #expect(Array(tables.rows) == Array(reference.rows))
            return true
        }
        #expect(readable(sections))
        var otherVersion = sections
        otherVersion[0][0] &+= 1
        #expect(!readable(otherVersion))
        #expect(!readable(sections, k: 41))
        #expect(!readable(sections, dim: 80))
        var truncated = sections
        truncated[1] = truncated[1].prefix(truncated[1].count - 2)
        #expect(!readable(truncated))
        #expect(!readable(Array(sections.prefix(3))))
    }
}
