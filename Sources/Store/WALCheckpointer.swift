import Foundation

/// What a store's last checkpoint spent (`MetadataStore.finishCheckpoints`): waiting for a passive one
/// still running, then its own copying, syncing and truncating.
public struct WALFinishTimes: Sendable {
    public var waitingForTheRunningOne: Double
    public var own: Double
}

/// Copies the store's committed WAL frames into its database files on a background thread, so that a
/// writer's commit only appends to the WAL.
///
/// Writers never checkpoint (`wal_autocheckpoint=0`). After each write this thread runs a passive
/// checkpoint of every file (the main database and each keyword shard), which never blocks the writer and
/// copies only committed frames; at the end of an index run `finish` copies the rest and empties the WAL
/// files, so nothing depends on the process closing the store before it exits. A checkpoint that fails
/// (or finds a file busy) is left to the next one: the WAL stays valid either way.
///
/// Why: with SQLite's default a commit that finds the WAL past 1,000 pages copies it into the database
/// and syncs on the committing thread, and every commit of a cold build does so, for every file. Measured
/// on 2 × H200 with 32 cores (docs/PERFORMANCE.md, session 16): the cold index took 1.54–1.59 s with this
/// thread against 1.73–1.86 s, and the wait for its last checkpoint 0.3 ms. Checkpointing only once at
/// the end was slower: the store lane got cheaper, but that one checkpoint took 0.31–0.39 s on the
/// critical path.
final class WALCheckpointer: @unchecked Sendable {
    /// `COLGREP_STORE_CHECKPOINT=inline` keeps SQLite's own checkpoints on the committing thread.
    static let enabled = ProcessInfo.processInfo.environment["COLGREP_STORE_CHECKPOINT"] != "inline"

    /// Passive checkpoints run the files side by side, one thread each, as the last one does. Each file's
    /// checkpoint ends with its own syncs, so one after another a round over the main database and the 16
    /// keyword shards of a 64-core machine took long enough that the last checkpoint of a build first waited 0.13–0.36 s for
    /// the round still running; side by side, a user's cold init of 113k units on two H200s took 3.75–3.97 s
    /// against 4.01–4.16 s one after another, and its pipeline waited 8–38 ms for the store's tail against
    /// 0.25–0.56 s (docs/PERFORMANCE.md, session 22). `COLGREP_CHECKPOINT_SIDE_BY_SIDE=0` runs them one
    /// after another (for measuring).
    static let passiveSideBySide = ProcessInfo.processInfo.environment["COLGREP_CHECKPOINT_SIDE_BY_SIDE"] != "0"

    private let paths: [String]
    private let queue = DispatchQueue(label: "colgrep.store.checkpoint")
    private let lock = NSLock()
    private var scheduled = false
    private var stopped = false
    /// One connection per file, opened on the queue at the first checkpoint and used only there.
    private var connections: [SQLiteConnection]?

    init(paths: [String]) {
        self.paths = paths
    }

    /// Asks for a checkpoint of every file; requests made while one is queued share it.
    func request() {
        lock.lock()
        defer { lock.unlock() }
        guard !scheduled && !stopped else { return }
        scheduled = true
        queue.async { [self] in
            lock.withLock { scheduled = false }
            checkpointAll(mode: "PASSIVE", sideBySide: Self.passiveSideBySide)
        }
    }

    /// Runs a last checkpoint that also empties each WAL file (after a build: passive checkpoints copy the
    /// frames but leave the file at its largest size), and returns when it is done. A file a reader or
    /// writer holds is left as it is (the checkpoint does not wait): the next write or close empties it.
    @discardableResult
    func finish() -> WALFinishTimes {
        let begin = StageClock.now()
        var started = begin
        // On the index run's critical path, and each file's checkpoint ends with its own syncs: the files
        // side by side, one thread each (each connection still used by one thread at once).
        queue.sync {
            started = StageClock.now()
            checkpointAll(mode: "TRUNCATE", sideBySide: true)
        }
        return WALFinishTimes(waitingForTheRunningOne: StageClock.seconds(begin, started), own: StageClock.seconds(started, StageClock.now()))
    }

    /// Waits for a running checkpoint, runs no more and closes the connections.
    func stop() {
        lock.withLock { stopped = true }
        queue.sync { connections = nil }
    }

    /// PASSIVE copies what is committed without waiting on the writer or on readers; TRUNCATE also
    /// empties the WAL file when nothing else uses it (these connections have no busy timeout, so it
    /// never waits either).
    private func checkpointAll(mode: String, sideBySide: Bool = false) {
        if lock.withLock({ stopped }) { return }
        if connections == nil {
            // Only files that exist: opening a connection would otherwise create an empty one.
            connections = paths.filter { FileManager.default.fileExists(atPath: $0) }
                .compactMap { try? SQLiteConnection(path: $0, readOnly: false) }
        }
        let files = UncheckedSendable(connections ?? [])
        let checkpoint: @Sendable (Int) -> Void = { i in _ = try? files.value[i].execute("PRAGMA wal_checkpoint(\(mode));") }
        if sideBySide && files.value.count > 1 {
            DispatchQueue.concurrentPerform(iterations: files.value.count, execute: checkpoint)
        } else {
            files.value.indices.forEach(checkpoint)
        }
    }
}
