import Foundation
import Plaid
import Tensor
import Testing

/// Opening trusts only files unchanged since the index wrote them; updates add files and never
/// rewrite the ones already there.
@Suite struct OpenAndUpdateCostTests {
    private func names(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    private func stamp(_ url: URL) throws -> [String] {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        return ["\(attributes[.systemFileNumber] ?? "")", "\(attributes[.size] ?? "")", "\(attributes[.modificationDate] ?? "")"]
    }

    @Test func inPlaceEditOfASegmentIsCaughtOnOpen() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = smallCorpus(documents: 80, queries: 1)
        _ = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let segment = directory.appendingPathComponent(try #require(try names(directory).first { $0.hasPrefix("segment-") }))
        let before = try stamp(segment)
        // Same inode and size: only the change time tells. Wait past the file system's timestamp tick.
        Thread.sleep(forTimeInterval: 0.05)
        let handle = try FileHandle(forUpdating: segment)
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2 + 3)
        let old = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: size / 2 + 3)
        try handle.write(contentsOf: Data([old[0] ^ 0x21]))
        try handle.close()
        #expect(try stamp(segment)[0] == before[0], "the edit must keep the inode for this test to mean anything")
        #expect(throws: PlaidError.self) { try PlaidIndex.open(at: directory) }
        #expect(throws: PlaidError.self) { try PlaidIndex.verify(at: directory) }
    }

    @Test func appendAddsFilesWithoutRewritingExistingOnes() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = smallCorpus(documents: 160, queries: 1)
        var config = testConfig()
        config.retrainGrowthFactor = 0
        let all = documents(corpus)
        let index = try PlaidIndex.create(at: directory, documents: Array(all.prefix(150)), config: config, backend: nil)
        let binaries = try names(directory).filter { $0 != "manifest.plaid" }
        let stamps = try binaries.map { try stamp(directory.appendingPathComponent($0)) }
        try index.append(Array(all[150...]), backend: nil)
        for (name, before) in zip(binaries, stamps) {
            #expect(try stamp(directory.appendingPathComponent(name)) == before, "\(name) was rewritten")
        }
        let added = try names(directory).filter { !binaries.contains($0) && $0 != "manifest.plaid" }
        #expect(added.count == 1 && added[0].hasPrefix("segment-"), "\(added)")
        let reopened = try PlaidIndex.open(at: directory)
        #expect(reopened.documentCount == 160)
        try PlaidIndex.verify(at: directory)
    }
}
