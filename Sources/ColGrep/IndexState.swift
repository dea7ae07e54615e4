import Foundation

/// What the index knows about one source file: content hash plus the stat fast path.
public struct FileStamp: Codable, Sendable, Equatable {
    public var contentHash: UInt64
    /// Modification time in nanoseconds since the epoch.
    public var mtime: Int64
    public var size: Int64

    enum CodingKeys: String, CodingKey {
        case contentHash = "content_hash"
        case mtime
        case size
    }

    public init(contentHash: UInt64, mtime: Int64, size: Int64) {
        self.contentHash = contentHash
        self.mtime = mtime
        self.size = size
    }
}

/// `state.json` (reference §1.12) minus `search_count`, which lives in `stats.json` so a search
/// never rewrites the state (§8.1).
public struct IndexState: Codable, Sendable, Equatable {
    /// Bumped whenever the on-disk layout changes; an index of another version is rebuilt.
    public static let formatVersion = 3

    public var cliVersion: String
    public var indexFormatVersion: Int
    public var files: [String: FileStamp]
    public var ignoredFiles: [String]
    /// Set before a destructive update starts, cleared when it completes: a leftover `true`
    /// means the last update was interrupted and counts must be reconciled.
    public var dirty: Bool
    /// Next document id to hand out; ids are never reused or renumbered.
    public var nextDocID: Int64
    /// Units currently indexed (for `--stats` without opening the database).
    public var unitCount: Int
    /// True for a keyword-only index (`init --fts-only`): no vectors were written. Absent otherwise.
    public var embeddingsAbsent: Bool?

    enum CodingKeys: String, CodingKey {
        case cliVersion = "cli_version"
        case indexFormatVersion = "index_format_version"
        case files
        case ignoredFiles = "ignored_files"
        case dirty
        case nextDocID = "next_doc_id"
        case unitCount = "unit_count"
        case embeddingsAbsent = "embeddings_absent"
    }

    public init() {
        cliVersion = ColGrepVersion.string
        indexFormatVersion = Self.formatVersion
        files = [:]
        ignoredFiles = []
        dirty = false
        nextDocID = 0
        unitCount = 0
    }

    /// The saved state, or nil when there is none. Files as `save` writes them are read directly
    /// (`IndexStateReader`); anything else goes through `JSONDecoder`, with its errors.
    public static func load(_ layout: IndexLayout) throws -> IndexState? {
        guard let data = FileManager.default.contents(atPath: layout.stateFile.path) else { return nil }
        if let state = data.withUnsafeBytes({ IndexStateReader.decode($0) }) { return state }
        return try AtomicFile.readJSON(IndexState.self, from: layout.stateFile)
    }

    public func save(_ layout: IndexLayout) throws {
        var copy = self
        copy.cliVersion = ColGrepVersion.string
        try AtomicFile.write(Data(IndexStateWriter.encode(copy)), to: layout.stateFile)
    }
}

/// Per-index usage counter (`--stats`). Written with a best-effort atomic replace after a search;
/// losing an increment under a race is acceptable, corrupting the state is not.
public struct SearchStats: Codable, Sendable, Equatable {
    public var searchCount: Int

    enum CodingKeys: String, CodingKey {
        case searchCount = "search_count"
    }

    public init(searchCount: Int = 0) {
        self.searchCount = searchCount
    }

    public static func load(_ layout: IndexLayout) -> SearchStats {
        ((try? AtomicFile.readJSON(SearchStats.self, from: layout.statsFile)) ?? nil) ?? SearchStats()
    }

    /// Counts one search. Atomic (temporary file + rename) but not fsynced: a counter is not worth
    /// a disk flush on every search, and a crash can at worst lose it, never tear the index.
    public static func increment(_ layout: IndexLayout) {
        var stats = load(layout)
        stats.searchCount += 1
        guard let data = try? JSONEncoder().encode(stats) else { return }
        try? data.write(to: layout.statsFile, options: .atomic)
    }

    public static func reset(_ layout: IndexLayout) {
        try? AtomicFile.writeJSON(SearchStats(), to: layout.statsFile)
    }
}
