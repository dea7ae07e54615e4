import Foundation

/// FTS5 settings of a keyword table chosen per write: how much a write may hold in memory before it
/// writes a segment, and whether writes merge segments as they go.
///
/// FTS5's defaults suit a trickle of small writes: pending terms are flushed into a new segment whenever
/// they pass 1 MiB, and every flush merges segments level by level (`automerge` 4). A cold build writes
/// megabytes per transaction, so those defaults rewrite the same terms several times within one build.
/// With a 64 MiB limit a transaction makes one segment, and with merging off during bulk writes the
/// build leaves one segment per transaction, which the next small write starts merging again (FTS5's
/// `crisismerge` still bounds a level at 16 segments). Measured on a 21k-unit store alone (two keyword
/// shards, 2 cores): the keyword writers' CPU 1.84–1.93 → 1.36–1.43 s and the commits' 0.85–0.89 →
/// 0.76–0.77 s; keyword queries as fast on the unmerged segments (docs/PERFORMANCE.md, session 15).
enum KeywordWriteSettings {
    /// Rows in one write from which it counts as bulk (a cold build's checkpoint batch is thousands).
    static let bulkRows = 512
    /// FTS5's `automerge` for bulk writes (0: no merging) and for the others (FTS5's default).
    static let bulkAutomerge: Int64 = 0
    static let trickleAutomerge: Int64 = 4
    /// FTS5's `hashsize`: the bytes of pending terms before a flush mid-transaction (FTS5's default is 1 MiB).
    /// Only what a transaction holds is ever allocated, so small writes do not pay for it.
    /// `COLGREP_FTS5_HASH_MIB` overrides it (1…1024), for measuring.
    static let hashBytes: Int64 = ProcessInfo.processInfo.environment["COLGREP_FTS5_HASH_MIB"]
        .flatMap { Int64($0) }.map { min(max(1, $0), 1024) << 20 } ?? 64 << 20
    /// `COLGREP_FTS5_DEFAULTS=1` leaves every table at FTS5's defaults, for measuring against them.
    static let keepsDefaults = ProcessInfo.processInfo.environment["COLGREP_FTS5_DEFAULTS"] == "1"

    /// Sets `table`'s settings for a write of `rows` rows on `connection`, inside its open write
    /// transaction; a setting already in place is not written again (FTS5 keeps them in `<table>_config`,
    /// and each change makes every other connection reload the table's configuration).
    static func apply(table: String, on connection: SQLiteConnection, rows: Int) throws {
        guard !keepsDefaults else { return }
        let automerge = rows >= bulkRows ? bulkAutomerge : trickleAutomerge
        for (key, value) in [("automerge", automerge), ("hashsize", hashBytes)] {
            let current = try connection.statement("SELECT v FROM \(table)_config WHERE k = ?")
            current.bind(1, key)
            let stored: Int64? = try current.step() ? current.int64(0) : nil
            current.reset()
            // An absent `automerge` is FTS5's default, 4.
            if stored ?? (key == "automerge" ? trickleAutomerge : -1) == value { continue }
            let set = try connection.statement("INSERT INTO \(table)(\(table), rank) VALUES(?, ?)")
            set.bind(1, key)
            set.bind(2, value)
            try set.run()
        }
    }
}
