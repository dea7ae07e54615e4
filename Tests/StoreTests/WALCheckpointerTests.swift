import Foundation
import Testing
@testable import Store

@Suite struct WALCheckpointerTests {
    /// Frames in `file`'s WAL and how many of them are copied into the database, read from the WAL
    /// index (`<file>-shm`) without touching the database: `mxFrame` at byte 16 of the index header,
    /// `nBackfill` at byte 96 (SQLite's WAL format, native byte order).
    private func walFrames(_ file: String) throws -> (log: UInt32, copied: UInt32) {
        let index = try Data(contentsOf: URL(fileURLWithPath: file + "-shm"))
        func word(_ offset: Int) -> UInt32 { index.subdata(in: offset..<offset + 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
        return (word(16), word(96))
    }

    /// Writers never checkpoint on their commits; after a write the background thread copies every
    /// file's WAL (the main database's and each keyword shard's) into the database.
    @Test(arguments: [1, 3])
    func writesAreCheckpointedInTheBackgroundForEveryFile(shardCount: Int) throws {
        guard WALCheckpointer.enabled else { return }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: shardCount)
        let before = (try? FileManager.default.attributesOfItem(atPath: dir.database.path)[.size] as? Int) ?? 0
        try store.insert(syntheticCorpus(count: 400))
        store.finishCheckpoints()
        let files = [dir.database.path] + store.shards.fileIndexes.map { KeywordShards.fileURL(main: dir.database, shard: $0).path }
        for file in files {
            let frames = try walFrames(file)
            #expect(frames.log > 0, "\(file): the write should have gone through the WAL")
            #expect(frames.copied == frames.log, "\(file): \(frames.copied) of \(frames.log) WAL frames copied")
        }
        let after = (try FileManager.default.attributesOfItem(atPath: dir.database.path)[.size] as? Int) ?? 0
        #expect(after > before, "the database file holds the rows once checkpointed")
        // The store still reads what it wrote, and another reader does too.
        try store.verifyIntegrity()
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.count == 400)
    }
}
