import Foundation
@testable import Plaid
import Tensor
import Testing

/// A damaged file of any kind must give `PlaidError.corrupt` (rebuild), never wrong results.
@Suite struct CorruptionTests {
    enum Damage: String, CaseIterable { case truncate, flipByte, remove }

    /// An index with every kind of file: manifest, codec, segments and tombstones.
    private func makeIndex(_ directory: URL) throws {
        let corpus = smallCorpus(documents: 120, queries: 1)
        var config = testConfig()
        config.compactionDeadShare = 0.9
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: config, backend: nil)
        try index.delete(ids: [3, 5])
    }

    private func file(in directory: URL, prefix: String) throws -> URL {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(prefix) }
        return directory.appendingPathComponent(try #require(names.first, "no \(prefix) file"))
    }

    @Test(arguments: ["manifest", "codec-", "segment-", "tombstones-"], Damage.allCases)
    func damagedFileIsReported(prefix: String, damage: Damage) throws {
        let directory = temporaryDirectory("corrupt\(prefix)\(damage.rawValue)")
        defer { cleanUp(directory) }
        try makeIndex(directory)
        _ = try PlaidIndex.open(at: directory)
        let url = try file(in: directory, prefix: prefix)
        var bytes = try Data(contentsOf: url)
        switch damage {
        case .truncate: bytes = bytes.prefix(bytes.count * 2 / 3)
        case .flipByte: bytes[bytes.count / 2 + 1] ^= 0x5A
        case .remove: break
        }
        if damage == .remove { try FileManager.default.removeItem(at: url) } else { try bytes.write(to: url) }
        do {
            _ = try PlaidIndex.open(at: directory)
            Issue.record("opening an index with a damaged \(prefix) file succeeded")
        } catch let error as PlaidError {
            #expect(error.needsRebuild, "\(error)")
            if prefix != "manifest" || damage != .remove {
                guard case .corrupt(let name, _) = error else { Issue.record("expected .corrupt, got \(error)"); return }
                #expect(name.hasSuffix(url.lastPathComponent))
            }
            #expect(error.description.contains("rebuild") || error.description.contains("build it"))
        }
    }

    @Test func otherFormatVersionIsReported() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        try makeIndex(directory)
        let url = try file(in: directory, prefix: "segment-")
        var bytes = try Data(contentsOf: url)
        bytes[8] = 9  // format version field of the binary header
        try bytes.write(to: url)
        #expect(throws: PlaidError.unsupportedFormat(file: url.path, found: 9, expected: IndexFiles.formatVersion)) {
            try PlaidIndex.open(at: directory, verifyChecksums: false)
        }
    }
}
