import Foundation
import Testing
@testable import Store

/// A new main database gets 16 KiB pages (its `unit_content` rows often span a 4 KiB page); keyword shard
/// files keep SQLite's 4 KiB, and a store created with other pages keeps them when reopened.
@Suite struct PageSizeTests {
    /// The page size a database file's header records (bytes 16–17, big-endian; 1 means 65536).
    static func headerPageSize(_ url: URL) throws -> Int {
        let header = try FileHandle(forReadingFrom: url).read(upToCount: 18) ?? Data()
        guard header.count == 18 else { return 0 }
        let value = Int(header[16]) << 8 | Int(header[17])
        return value == 1 ? 65536 : value
    }

    @Test func aNewStoreHasLargePagesInItsMainFileOnly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try MetadataStore(path: directory.database, readOnly: false, keywordShards: 2)
        try store.insert(syntheticCorpus(count: 40))
        #expect(try Self.headerPageSize(directory.database) == MetadataStore.mainPageSize)
        #expect(try Self.headerPageSize(KeywordShards.fileURL(main: directory.database, shard: 1)) == 4096)
        #expect(try store.bm25(query: "parse", limit: 5, within: nil).count > 0)
    }

    @Test func anExistingStoreKeepsItsPagesAndItsRows() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let records = syntheticCorpus(count: 60)
        do {
            let old = try MetadataStore(path: directory.database, readOnly: false, pageSize: 4096)
            try old.insert(Array(records[..<30]))
        }
        #expect(try Self.headerPageSize(directory.database) == 4096)
        let reopened = try MetadataStore(path: directory.database, readOnly: false)
        try reopened.insert(Array(records[30...]))
        #expect(try Self.headerPageSize(directory.database) == 4096)
        #expect(try reopened.allDocIDs().count == 60)
        let reader = try MetadataStore(path: directory.database, readOnly: true)
        #expect(try reader.allDocIDs().count == 60)
    }
}
