/// Errors of the metadata store. `requiresRebuild` tells the product when the right answer is to
/// delete the index and build it again (corruption, a schema this build cannot read or migrate).
public enum StoreError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The system SQLite lacks FTS5.
    case fts5Unavailable(sqliteVersion: String)
    /// The database file is damaged (garbage, truncated, failed integrity check, corrupt pages).
    case corrupt(path: String, reason: String)
    /// The file was written by a newer colgrep with a schema this build does not know.
    case newerSchema(path: String, found: Int, supported: Int)
    /// The file is older than this build and cannot be migrated in place (or was opened read-only).
    case needsRebuild(path: String, reason: String)
    /// A read-only open of a store whose derived data (the keyword index) a writer must migrate first.
    case needsMigration(path: String, reason: String)
    /// A read-only open of a store that does not exist.
    case missing(path: String)
    /// A write was attempted through a read-only store.
    case readOnly(path: String)
    /// The regular expression does not compile.
    case invalidRegex(pattern: String, message: String)
    /// Any other SQLite failure (busy past the timeout, disk full, I/O error, …).
    case sqlite(path: String, code: Int32, message: String)

    /// Whether the product should delete the store (and the index it belongs to) and rebuild.
    public var requiresRebuild: Bool {
        switch self {
        case .corrupt, .needsRebuild: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .fts5Unavailable(version):
            return "the system SQLite \(version) was built without FTS5; install a SQLite with FTS5 (Debian/Ubuntu: libsqlite3-0)"
        case let .corrupt(path, reason):
            return "metadata database \(path) is corrupt (\(reason)); the index will be rebuilt (or run `colgrep clear` and `colgrep init`)"
        case let .newerSchema(path, found, supported):
            return "metadata database \(path) has schema version \(found), newer than this colgrep supports (\(supported)); upgrade colgrep or run `colgrep clear` to rebuild"
        case let .needsRebuild(path, reason):
            return "metadata database \(path) must be rebuilt: \(reason)"
        case let .needsMigration(path, reason):
            return "metadata database \(path) needs a migration (\(reason)); open it for writing (any `colgrep` update does) first"
        case let .missing(path):
            return "metadata database \(path) does not exist; run `colgrep init` to build the index"
        case let .readOnly(path):
            return "metadata database \(path) was opened read-only and cannot be written"
        case let .invalidRegex(pattern, message):
            return "invalid regular expression \(pattern): \(message)"
        case let .sqlite(path, code, message):
            return "SQLite error \(code) on \(path): \(message)"
        }
    }
}
