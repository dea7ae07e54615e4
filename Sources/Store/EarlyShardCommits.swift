import Foundation

/// The keyword shard files of one sharded insert that commit from their own writer threads as soon as
/// their rows are in, while the row writer is still filling the main database.
///
/// Before, every shard file committed only after the row writer had finished (one barrier, then the
/// commits side by side, then the main database's): the commits' FTS5 segment flushes (0.7–0.9 s of a
/// 113k-unit cold build on 64 cores) followed the rows (~1.0 s) instead of running beside them, and the row
/// writer then idled through them. Crash safety is unchanged: every shard file still commits before the
/// main database (which the caller commits after all of them), with the generation the main database is
/// about to record, so a kill in between leaves shards ahead of the main database, as before, which
/// readers wait out and a writer repairs. A concurrent reader waits (it retries while generations
/// differ) for the rows' write instead of for the main database's commit alone.
final class EarlyShardCommits: @unchecked Sendable {
    /// The generation each shard file records when it commits (the main database's record + 1).
    let generations: [Int: Int64]
    private let lock = NSLock()
    private var done: Set<Int> = []
    private var slowest = 0.0

    init(generations: [Int: Int64]) {
        self.generations = generations
    }

    /// Shard `shard`'s file committed, in `seconds` (its generation, then `COMMIT`).
    func noteCommitted(_ shard: Int, seconds: Double) {
        lock.lock()
        done.insert(shard)
        slowest = max(slowest, seconds)
        lock.unlock()
    }

    /// The shards whose files committed.
    var committed: Set<Int> {
        lock.lock()
        defer { lock.unlock() }
        return done
    }

    /// The longest of the shard files' commits.
    var slowestCommitSeconds: Double {
        lock.lock()
        defer { lock.unlock() }
        return slowest
    }
}

extension MetadataStore {
    /// Whether a sharded insert commits its shard files beside the rows (`EarlyShardCommits`).
    /// `COLGREP_SHARD_COMMITS_BESIDE_ROWS=0` commits them after the rows, as before (for measuring).
    static let shardsCommitBesideRows = ProcessInfo.processInfo.environment["COLGREP_SHARD_COMMITS_BESIDE_ROWS"] != "0"
}
