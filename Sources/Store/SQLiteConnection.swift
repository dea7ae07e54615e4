import CSQLite
import Foundation

/// `SQLITE_TRANSIENT`: SQLite copies bound text before the call returns (the C macro does not import).
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A thin owner of one `sqlite3*` handle: statements cached by SQL text, errors mapped to
/// `StoreError` (corruption codes become `.corrupt`, never a plain failure). Not thread-safe on its
/// own: `MetadataStore` serialises every call.
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String
    private var statements: [String: Statement] = [:]

    init(path: String, readOnly: Bool) throws {
        SQLiteConnection.processSettings
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteConnection.error(code: rc, message: message, path: path)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    /// Set once per process, before the first connection initialises SQLite. Allocation statistics off:
    /// nothing reads them, and with them on every allocation of every connection takes one process-wide
    /// mutex, which the keyword shard writers of a cold index (one thread each) would all queue on.
    /// `COLGREP_SQLITE_MEMSTATUS=1` keeps SQLite's default, for measuring against it.
    static let processSettings: Void = {
        let keepStatistics = ProcessInfo.processInfo.environment["COLGREP_SQLITE_MEMSTATUS"] == "1"
        // SQLITE_MISUSE if something initialised SQLite first: then its defaults stay, which is only slower.
        _ = colgrep_sqlite_config_memstatus(keepStatistics ? 1 : 0)
    }()

    deinit {
        for statement in statements.values { sqlite3_finalize(statement.handle) }
        sqlite3_close_v2(handle)
    }

    static func error(code: Int32, message: String, path: String) -> StoreError {
        switch code & 0xFF {
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return .corrupt(path: path, reason: message)
        default:
            return .sqlite(path: path, code: code, message: message)
        }
    }

    func lastError(_ code: Int32) -> StoreError {
        SQLiteConnection.error(code: code, message: String(cString: sqlite3_errmsg(handle)), path: path)
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteConnection.error(code: rc, message: text, path: path)
        }
    }

    /// A cached prepared statement, reset and with bindings cleared.
    func statement(_ sql: String) throws -> Statement {
        if let cached = statements[sql] {
            sqlite3_reset(cached.handle)
            sqlite3_clear_bindings(cached.handle)
            return cached
        }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw lastError(rc) }
        let statement = Statement(handle: raw, connection: self)
        statements[sql] = statement
        return statement
    }

    /// The first column of the first row of a query, as an integer (nil when no row or NULL).
    func scalarInt(_ sql: String) throws -> Int64? {
        let statement = try statement(sql)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.int64(0)
    }

    /// Runs `body` inside one deferred read transaction (`BEGIN … COMMIT`), so that SQLite takes and
    /// checks the file's shared lock once for all of its statements instead of once per statement: a
    /// search's 600 one-row location reads cost ~8,000 `fcntl` lock calls and ~4,000 `fstat`s without it.
    /// Inside a transaction already, `body` just runs. The transaction always ends (COMMIT, else
    /// ROLLBACK): a snapshot held past the call would hide later writers' commits.
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        guard sqlite3_get_autocommit(handle) != 0 else { return try body() }
        try execute("BEGIN DEFERRED")
        defer {
            if sqlite3_exec(handle, "COMMIT", nil, nil, nil) != SQLITE_OK { _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil) }
        }
        return try body()
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back on any error.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }
}

/// A prepared statement bound to its connection; bind with 1-based indexes, read 0-based columns.
final class Statement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection

    init(handle: OpaquePointer, connection: SQLiteConnection) {
        self.handle = handle
        self.connection = connection
    }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    func bind(_ index: Int32, _ value: Int) {
        sqlite3_bind_int64(handle, index, Int64(value))
    }

    func bind(_ index: Int32, _ value: Bool) {
        sqlite3_bind_int64(handle, index, value ? 1 : 0)
    }

    func bind(_ index: Int32, _ value: String?) {
        guard var value else { sqlite3_bind_null(handle, index); return }
        value.withUTF8 { bindText(index, $0) }
    }

    func bind(_ index: Int32, bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { bindText(index, $0) }
    }

    /// Binds `bytes` as a BLOB (an empty buffer binds a zero-length BLOB).
    func bind(_ index: Int32, blob bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob64(handle, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), sqlite3_uint64(buffer.count), sqliteTransient)
        }
    }

    /// Binds UTF-8 bytes as TEXT; an empty buffer binds the empty string, not NULL.
    private func bindText(_ index: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            sqlite3_bind_text(handle, index, "", 0, sqliteTransient)
            return
        }
        base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
            _ = sqlite3_bind_text(handle, index, $0, Int32(bytes.count), sqliteTransient)
        }
    }

    /// Advances; true while a row is available.
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.lastError(rc)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Steps a statement that returns no rows, then resets it.
    func run() throws {
        defer { reset() }
        _ = try step()
    }

    func reset() {
        sqlite3_reset(handle)
    }

    func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    func int(_ column: Int32) -> Int {
        Int(sqlite3_column_int64(handle, column))
    }

    func double(_ column: Int32) -> Double {
        sqlite3_column_double(handle, column)
    }

    func text(_ column: Int32) -> String {
        withBytes(column) { String(decoding: $0, as: UTF8.self) }
    }

    func optionalText(_ column: Int32) -> String? {
        isNull(column) ? nil : text(column)
    }

    /// The column's UTF-8 bytes, valid only inside `body`.
    func withBytes<T>(_ column: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        guard let pointer = sqlite3_column_text(handle, column) else {
            return body(UnsafeBufferPointer(start: nil, count: 0))
        }
        let count = Int(sqlite3_column_bytes(handle, column))
        return body(UnsafeBufferPointer(start: pointer, count: count))
    }
}
