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
    /// file's WAL (the main database's and each keyword shard's) into the database, and the last
    /// checkpoint of a build empties the WAL files.
    @Test(arguments: [1, 3])
    func writesAreCheckpointedInTheBackgroundForEveryFile(shardCount: Int) throws {
        guard WALCheckpointer.enabled else { return }
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: shardCount)
        try store.insert(syntheticCorpus(count: 400))
        let files = [dir.database.path] + store.shards.fileIndexes.map { KeywordShards.fileURL(main: dir.database, shard: $0).path }
        // The background thread's copy: polled (it runs on its own), at most 10 s.
        let deadline = Date().addingTimeInterval(10)
        var frames = try files.map(walFrames)
        while frames.contains(where: { $0.copied != $0.log }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            frames = try files.map(walFrames)
        }
        for (file, frames) in zip(files, frames) {
            #expect(frames.log > 0, "\(file): the write should have gone through the WAL")
            #expect(frames.copied == frames.log, "\(file): \(frames.copied) of \(frames.log) WAL frames copied")
        }
        let times = try #require(store.finishCheckpoints())
        #expect(times.waitingForTheRunningOne >= 0 && times.own > 0)
        for file in files {
            let size = (try FileManager.default.attributesOfItem(atPath: file + "-wal")[.size] as? Int) ?? -1
            #expect(size == 0, "\(file)-wal holds \(size) bytes after the last checkpoint")
        }
        // The store still reads what it wrote, and another reader does too.
        try store.verifyIntegrity()
        let reader = try MetadataStore(path: dir.database, readOnly: true)
        #expect(try reader.count == 400)
    }
}
