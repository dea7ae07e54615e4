import CSQLite
import Foundation

/// The keyword index split over `count` FTS5 tables so that a cold build feeds them from `count` writer
/// threads at once: FTS5's tokenizing and segment writing is one thread's CPU per table, and SQLite allows
/// one writer per database file.
///
/// A one-shard store keeps its keyword rows in the main database's `keyword_index` (shard 0: exactly the
/// unsharded layout). A store of `count` ≥ 2 shards keeps them in shards 1…`count`, each the table
/// `keyword_shard_<s>` of its own file `<main>-keywords-<s>` (see `fileURL`), and leaves `keyword_index`
/// empty: the main database's writer then only writes the rows, and every keyword shard commits in
/// parallel with the others. A document's row lives in shard `1 + docID mod count`. Ranking stays the
/// single table's bm25 (`KeywordRanking`).
///
/// Crash safety: a write commits the touched shard files first, then the main database. Each shard file
/// records a generation, and the main database records the generation it expects of each shard, both
/// written inside the same transactions; a writer killed between the commits leaves a shard ahead of the
/// main database, which reads (and `MetadataStore.bm25`) detect and a writer repairs at open by rebuilding
/// that shard from the stored rows (the main database is the truth). Each shard file also carries the
/// store's random id, so a file left over from an earlier store is never read as this one's.
final class KeywordShards {
    /// Shards in this store (≥ 1).
    let count: Int
    /// Connections of the shard files 1…`count` in order (none with one shard: shard 0 is the main database).
    private(set) var files: [SQLiteConnection]

    /// Most shards a store may have (more would only add per-query work: one FTS5 scan per shard; 64 cores
    /// measured 16 fastest to build).
    static let maximum = 16
    /// Version of a shard file's layout (`PRAGMA user_version` of the shard file).
    static let fileVersion = 1
    /// Environment variable that overrides the shard count of a new store (measurements, tests).
    static let environmentVariable = "COLGREP_KEYWORD_SHARDS"

    init(count: Int, files: [SQLiteConnection]) {
        precondition(count >= 1 && files.count == Self.fileIndexes(count).count)
        self.count = count
        self.files = files
    }

    /// The shards that hold keyword rows: [0] with one shard, else 1…`count`.
    var indexes: [Int] { count == 1 ? [0] : Array(1...count) }
    /// The shards that are files of their own (1…`count`, none with one shard).
    var fileIndexes: [Int] { Self.fileIndexes(count) }

    static func fileIndexes(_ count: Int) -> [Int] { count == 1 ? [] : Array(1...count) }

    /// The shard count a new store gets: `COLGREP_KEYWORD_SHARDS` when set (1…`maximum`), else one shard
    /// per four cores, between 1 and `maximum` (a machine of ≤ 7 cores gains nothing: its cores are busy
    /// with the other lanes of the build, and each shard adds a scan to every keyword query). On 64 cores
    /// (docs/PERFORMANCE.md, session 19; a cold build of 113k units) 8 shards made the store lane alone
    /// 1.86–1.99 s against 2.47–3.19 s with 4 and the init −20 %, 16 the init another 8–12 % (12 between),
    /// with ten hybrid searches as fast on each (2.8–3.3 s); sessions 12 and 14 had measured 8 slower only
    /// because SQLite's allocation statistics serialised every writer on one mutex (off since session 16).
    static func defaultCount(cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                             environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        if let text = environment[environmentVariable], let value = Int(text) { return min(max(1, value), maximum) }
        return min(max(1, cores / 4), maximum)
    }

    /// The file of shard `shard` ≥ 1 of the store at `main`.
    static func fileURL(main: URL, shard: Int) -> URL {
        URL(fileURLWithPath: main.path + "-keywords-\(shard)")
    }

    /// The FTS5 table of shard `shard`.
    static func tableName(_ shard: Int) -> String {
        shard == 0 ? "keyword_index" : "keyword_shard_\(shard)"
    }

    /// Where a document's keyword row lives.
    func shard(of docID: Int64) -> Int {
        count == 1 ? 0 : 1 + Int(UInt64(bitPattern: docID) % UInt64(count))
    }

    /// The keyword rows of `parts` that live in shard `shard` ≥ 1, into its file, in its open transaction.
    func insertRows(_ parts: [PreparedRecords], shard: Int) throws {
        let table = Self.tableName(shard)
        let keyword = try files[shard - 1].statement("INSERT INTO \(table)(rowid, body) VALUES(?, ?)")
        for prepared in parts {
            for (index, record) in prepared.records.enumerated() where self.shard(of: record.docID) == shard {
                keyword.bind(1, record.docID)
                keyword.bind(2, bytes: prepared.keywordTexts[index])
                try keyword.run()
            }
        }
    }

    /// The connection holding shard `shard`.
    func connection(_ shard: Int, main: SQLiteConnection) -> SQLiteConnection {
        shard == 0 ? main : files[shard - 1]
    }

    /// Replaces shard `shard`'s connection (after its file was created again).
    func replace(_ shard: Int, with connection: SQLiteConnection) {
        files[shard - 1] = connection
    }

    /// Removes every file a shard of the store at `main` may have left (any shard number, with its WAL).
    static func removeFiles(main: URL) {
        for shard in 1...maximum {
            let file = fileURL(main: main, shard: shard).path
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) }
        }
    }

    /// Opens shard `shard`'s file (creating it when `create`), with the writer's or the reader's pragmas.
    static func open(main: URL, shard: Int, readOnly: Bool) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: fileURL(main: main, shard: shard).path, readOnly: readOnly)
        try MetadataStore.applyPragmas(connection, readOnly: readOnly)
        try KeywordRanking.register(on: connection)
        return connection
    }

    /// Creates shard `shard`'s file from nothing (removing any earlier one), empty, at `generation`.
    static func create(main: URL, shard: Int, storeID: String, generation: Int64) throws -> SQLiteConnection {
        let file = fileURL(main: main, shard: shard).path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) }
        let connection = try open(main: main, shard: shard, readOnly: false)
        try connection.transaction {
            try connection.execute("""
                CREATE VIRTUAL TABLE \(tableName(shard)) USING fts5(body, content='', tokenize="ascii tokenchars '_'");
                CREATE TABLE shard_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                PRAGMA user_version=\(fileVersion);
                """)
            try setMeta(connection, "store_id", storeID)
            try setMeta(connection, "shard", String(shard))
            try setMeta(connection, "generation", String(generation))
        }
        return connection
    }

    /// What a shard file says of itself, or why it is not a shard of this store.
    enum Identity: Equatable {
        case sound(generation: Int64)
        case foreign(String)
    }

    /// Checks that `connection` is shard `shard` of the store `storeID` and reads its generation.
    static func identity(of connection: SQLiteConnection, shard: Int, storeID: String) -> Identity {
        do {
            guard try connection.scalarInt("PRAGMA user_version") == Int64(fileVersion) else {
                return .foreign("its layout version is not \(fileVersion)")
            }
            guard try meta(connection, "store_id") == storeID, try meta(connection, "shard") == String(shard) else {
                return .foreign("it belongs to another store or shard")
            }
            guard let generation = try meta(connection, "generation").flatMap({ Int64($0) }) else {
                return .foreign("it has no generation")
            }
            return .sound(generation: generation)
        } catch {
            return .foreign("\(error)")
        }
    }

    static func meta(_ connection: SQLiteConnection, _ key: String) throws -> String? {
        let statement = try connection.statement("SELECT value FROM shard_meta WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        return try statement.step() ? statement.text(0) : nil
    }

    static func setMeta(_ connection: SQLiteConnection, _ key: String, _ value: String) throws {
        let statement = try connection.statement("INSERT OR REPLACE INTO shard_meta(key, value) VALUES(?, ?)")
        statement.bind(1, key)
        statement.bind(2, value)
        try statement.run()
    }

    /// The main database's meta key holding the generation it expects of shard `shard`.
    static func generationKey(_ shard: Int) -> String { "keyword_generation.\(shard)" }
}

/// The errors the writer threads of one sharded write report, by shard.
final class ErrorSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error?]

    init(count: Int) { errors = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ error: Error) { lock.withLock { errors[index] = error } }

    /// The error of the lowest shard that failed.
    var first: Error? { lock.withLock { errors.compactMap { $0 }.first } }

    /// Slot `index`'s error, if it failed.
    func error(_ index: Int) -> Error? { lock.withLock { errors[index] } }
}

/// One result per slot, set by concurrent workers (each its own slot).
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<T, Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<T, Error>) { lock.withLock { slots[index] = result } }

    /// Every slot's value in order, or the error of the lowest slot that failed. Call once every slot
    /// is set (`concurrentPerform` returns after every iteration).
    func values() throws -> [T] {
        try lock.withLock { slots }.map { try $0!.get() }
    }

    /// `body(0..<count)` side by side on the calling thread and the shared pool; results in order, the
    /// lowest failing index's error thrown. Each index must use its own connection.
    static func sideBySide(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
        let results = ResultSlots<T>(count: count)
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { index in results.set(index, Result { try work.value(index) }) }
        }
        return try results.values()
    }
}

/// One value shared by threads under a lock.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T

    init(_ value: T) { stored = value }

    func set(_ value: T) { lock.withLock { stored = value } }

    var value: T { lock.withLock { stored } }
}

/// A value handed to `concurrentPerform` workers that each touch a distinct part of it (one SQLite
/// connection per worker here), which the compiler cannot see.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
