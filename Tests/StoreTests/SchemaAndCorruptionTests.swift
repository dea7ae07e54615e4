import Foundation
import Testing
@testable import Store

/// Runs raw SQL on a database file behind the store's back (to fake older / newer / damaged files).
private func rawExecute(_ database: URL, _ sql: String) throws {
    let connection = try SQLiteConnection(path: database.path, readOnly: false)
    try connection.execute(sql)
}

/// Opens the store and touches every kind of data; returns the error that surfaced, if any.
private func errorFromOpeningAndReading(_ database: URL, readOnly: Bool) -> StoreError? {
    do {
        let store = try MetadataStore(path: database, readOnly: readOnly)
        _ = try store.count
        _ = try store.records(docIDs: Array(0..<400))
        _ = try store.bm25(query: "parse config token", limit: 50, within: nil)
        _ = try store.docIDs(whereCodeMatches: "helper", caseSensitive: false)
        _ = try store.namesAndCalls()
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("unexpected error type \(error)")
        return nil
    }
}

private func populatedStore(_ dir: TemporaryDirectory, count: Int = 300) throws {
    let store = try MetadataStore(path: dir.database, readOnly: false)
    try store.insert(syntheticCorpus(count: count))
}

@Suite struct SchemaAndCorruptionTests {
    @Test func newerSchemaVersionIsRefusedClearly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir, count: 3)
        try rawExecute(dir.database, "PRAGMA user_version=99")
        for readOnly in [true, false] {
            #expect(throws: StoreError.newerSchema(path: dir.database.path, found: 99, supported: Schema.version)) {
                _ = try MetadataStore(path: dir.database, readOnly: readOnly)
            }
        }
        #expect(!StoreError.newerSchema(path: "", found: 2, supported: 1).requiresRebuild)
    }

    @Test func olderSchemaWithoutMigrationAsksForRebuild() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir, count: 3)
        try rawExecute(dir.database, "PRAGMA user_version=0")
        do {
            _ = try MetadataStore(path: dir.database, readOnly: false)
            Issue.record("an unversioned database was accepted")
        } catch let error as StoreError {
            guard case .needsRebuild = error else { Issue.record("got \(error)"); return }
            #expect(error.requiresRebuild)
        }
    }

    @Test func olderKeywordTokenizerIsMigratedByTheNextWriter() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir, count: 50)
        // Simulate a store written by an older tokenizer: version 0 and keyword rows that no longer match.
        try rawExecute(dir.database, """
            UPDATE meta SET value = '0' WHERE key = 'keyword_tokenizer';
            INSERT INTO keyword_index(keyword_index) VALUES('delete-all');
            INSERT INTO keyword_index(rowid, body) VALUES(3, 'stale words only');
            """)
        do {
            _ = try MetadataStore(path: dir.database, readOnly: true)
            Issue.record("a reader accepted a store that needs migration")
        } catch let error as StoreError {
            guard case .needsMigration = error else { Issue.record("got \(error)"); return }
        }
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        let corpus = syntheticCorpus(count: 50)
        #expect(try writer.bm25(query: corpus[17].name, limit: 1, within: nil).first?.docID == 17)
        #expect(try writer.bm25(query: "stale", limit: 5, within: nil).isEmpty)
        try writer.verifyIntegrity()
        _ = try MetadataStore(path: dir.database, readOnly: true)
    }

    @Test func garbageFileIsReportedAsCorrupt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var generator = SystemRandomNumberGenerator()
        try Data((0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: dir.database)
        for readOnly in [true, false] {
            let error = errorFromOpeningAndReading(dir.database, readOnly: readOnly)
            #expect(error?.requiresRebuild == true, "got \(String(describing: error))")
            guard case .corrupt = error else { Issue.record("expected .corrupt, got \(String(describing: error))"); continue }
        }
        // A file shorter than a header.
        try Data("SQLite format".utf8).write(to: dir.database)
        guard case .corrupt = errorFromOpeningAndReading(dir.database, readOnly: false) else {
            Issue.record("a 13-byte file was not reported as corrupt")
            return
        }
    }

    @Test func truncatedFileIsReportedAsCorrupt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir)
        let size = try FileManager.default.attributesOfItem(atPath: dir.database.path)[.size] as! Int
        #expect(size > 100_000)
        let handle = try FileHandle(forWritingTo: dir.database)
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()
        for readOnly in [true, false] {
            let error = errorFromOpeningAndReading(dir.database, readOnly: readOnly)
            guard case .corrupt = error else { Issue.record("expected .corrupt, got \(String(describing: error))"); continue }
        }
    }

    @Test func garbagePagesBehindASoundHeaderAreReportedAsCorrupt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir)
        var bytes = try Data(contentsOf: dir.database)
        var generator = SystemRandomNumberGenerator()
        // Keep page 1 (header + schema), scramble every later page.
        for index in 4096..<bytes.count { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        try bytes.write(to: dir.database)
        for readOnly in [true, false] {
            let error = errorFromOpeningAndReading(dir.database, readOnly: readOnly)
            guard case .corrupt = error else { Issue.record("expected .corrupt, got \(String(describing: error))"); continue }
        }
    }

    @Test func missingTableIsReportedAsCorrupt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir, count: 3)
        try rawExecute(dir.database, "DROP TABLE kv")
        #expect(throws: StoreError.corrupt(path: dir.database.path, reason: "table kv is missing")) {
            _ = try MetadataStore(path: dir.database, readOnly: true)
        }
    }
}

@Suite struct WriteAheadLogDamageTests {
    @Test func garbageWALNextToASoundDatabaseIsIgnoredNotMisread() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try populatedStore(dir, count: 40)
        let expected = try MetadataStore(path: dir.database, readOnly: true).records(docIDs: Array(0..<40))
        // No WAL is left after a clean close; fake one full of garbage (a torn or damaged log).
        var generator = SeededGenerator(seed: 11)
        let garbage = Data((0..<(32 + 24 * 4120)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try garbage.write(to: URL(fileURLWithPath: dir.database.path + "-wal"))
        let writer = try MetadataStore(path: dir.database, readOnly: false)
        #expect(try writer.records(docIDs: Array(0..<40)) == expected)
        try writer.verifyIntegrity()
        #expect(try writer.bm25(query: syntheticCorpus(count: 40)[21].name, limit: 1, within: nil).first?.docID == 21)
    }
}
