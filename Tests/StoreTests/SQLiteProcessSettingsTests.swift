import CSQLite
import Foundation
import Testing
@testable import Store

@Suite struct SQLiteProcessSettingsTests {
    /// SQLite's allocation statistics are off once a connection has opened: with them on, the bytes in use
    /// are counted (and every allocation of every connection takes one process-wide mutex to count them).
    @Test func allocationStatisticsAreOffAfterTheFirstConnection() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 2)
        try store.insert(syntheticCorpus(count: 64))
        let keepsStatistics = ProcessInfo.processInfo.environment["COLGREP_SQLITE_MEMSTATUS"] == "1"
        // SQLite holds pages and statements of the open store now, so counted statistics would be > 0.
        #expect((sqlite3_memory_used() > 0) == keepsStatistics)
        // Reconfiguring after initialisation is refused: the setting cannot change under open connections.
        #expect(colgrep_sqlite_config_memstatus(1) == SQLITE_MISUSE)
    }
}
