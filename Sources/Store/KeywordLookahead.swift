import CSQLite
import Foundation

/// Keyword rows queued on the shard threads as their parts arrive, ahead of the write that will hold
/// them, in a transaction of each shard file left open until that write commits it.
///
/// Why: in a sharded insert every shard file's writer and the row writer wait for each other at the end of
/// each write, so each write lasts as long as its slowest part. On 2 × H200 with 32 cores (a cold build of
/// 113k units, 8 shards, ~45 writes; docs/PERFORMANCE.md, session 21) the slowest part of each write summed
/// to 2.68 s, while the slowest part's own total over all writes was 2.11–2.17 s: the shards' share of a
/// write varies, and the quick ones idled. With the parts that arrive during a write queued behind its
/// commit on every shard thread, a shard that is done early goes on with them.
///
/// Crash safety and readers are unchanged: the rows stay uncommitted until the write they belong to
/// commits its shard files (each before the main database, with the same generations as before), so a
/// kill or a lookahead that no write takes leaves nothing behind (SQLite drops an open transaction), and a
/// reader, which sees committed rows only, never meets a shard ahead of the main database because of it.
final class KeywordLookahead {
    /// Doc ids of each part queued, in order: the write that takes them must start with exactly these.
    var parts: [[Int64]] = []
    /// Shard → its queued inserts (the first also `BEGIN IMMEDIATE`; none commits).
    var inserts: [Int: [WriterThreads.Ticket]] = [:]
    /// A shard whose insert failed (its transaction rolled back by it, later parts skipped): the write
    /// that takes the lookahead inserts that shard's rows itself.
    let errors: ErrorSlots

    init(shardCount: Int) {
        errors = ErrorSlots(count: shardCount + 1)
    }

    /// `COLGREP_KEYWORD_LOOKAHEAD=0` queues nothing ahead (each shard starts its rows with the write).
    static let enabled = ProcessInfo.processInfo.environment["COLGREP_KEYWORD_LOOKAHEAD"] != "0"
}

extension MetadataStore {
    /// Whether parts may be queued ahead on this store (a sharded writer).
    private var queuesAhead: Bool {
        shards.count > 1 && !isReadOnly && Self.shardsCommitBesideRows && KeywordLookahead.enabled
    }

    /// Runs `enqueue` (the caller files `part` for a later `insert(takingGroup:)`) and, while a sharded
    /// build is writing, queues `part`'s keyword rows on the shard threads behind what is queued there.
    /// Callable from any thread, also while a write runs; `enqueue` runs under the same lock that
    /// `insert(takingGroup:)` takes its group under, so a part is queued ahead for the next write or not at all.
    public func queueAhead(_ part: PreparedRecords, enqueue: () -> Void) {
        lookaheadLock.lock()
        defer { lookaheadLock.unlock() }
        enqueue()
        guard queuesAhead, aheadOpen, !part.records.isEmpty else { return }
        let ahead = pendingLookahead ?? KeywordLookahead(shardCount: shards.count)
        pendingLookahead = ahead
        let first = ahead.parts.isEmpty
        ahead.parts.append(part.records.map(\.docID))
        // The queued parts hold the shards, not the store: a store released while they wait is closed by its
        // `deinit`, which waits for them (holding the store, the last of them would run that `deinit` itself).
        let shards = self.shards, hook = faultHook
        for shard in shards.fileIndexes {
            let ticket = writerThreads.post(part: shard) {
                guard ahead.errors.error(shard) == nil else { return }
                let file = shards.files[shard - 1]
                do {
                    if first {
                        try file.execute("BEGIN IMMEDIATE")
                        try KeywordWriteSettings.apply(table: KeywordShards.tableName(shard), on: file, rows: part.records.count)
                    }
                    try shards.insertRows([part], shard: shard)
                    hook?(.keywordRowsInsertedAhead, shard)
                } catch {
                    _ = sqlite3_exec(file.handle, "ROLLBACK", nil, nil, nil)
                    ahead.errors.set(shard, error)
                }
            }
            ahead.inserts[shard, default: []].append(ticket)
        }
    }

    /// Inserts the group `take` returns, in one transaction, and returns it. `take(n)` runs under the lock
    /// of `queueAhead` and must return a group that starts with the first `n` parts filed (all of them when
    /// fewer are waiting; it may hold more): the parts queued ahead since the last write, whose keyword
    /// rows are then already in the shard files' open transactions. Without keyword shards this is
    /// `take(0)` and the general path.
    public func insert(takingGroup take: (Int) -> [PreparedRecords]) throws -> [PreparedRecords] {
        guard queuesAhead else {
            let group = take(0)
            try insertGeneral(group)
            return group
        }
        var group: [PreparedRecords] = []
        if try insertWithLookahead(take: take, group: &group) { return group }
        // Stored documents are replaced: the general path (which drops the rows queued ahead first).
        try insertGeneral(group)
        return group
    }

    /// The sharded insert of a group none of whose documents is stored yet (a build's common case).
    /// Returns false, having written nothing and dropped the lookahead, when the group replaces stored
    /// documents.
    private func insertWithLookahead(take: (Int) -> [PreparedRecords], group: inout [PreparedRecords]) throws -> Bool {
        var stages = StageClock()
        var usage: [ThreadUsage] = [], aheadUsage: [ThreadUsage] = []
        var commitUsage = ThreadUsage()
        let inserted = try writeKeepingLookahead { () -> Bool in
            lookaheadLock.lock()
            let ahead = pendingLookahead
            pendingLookahead = nil
            // With nothing queued ahead (the lookahead was closed, or nothing came), whatever waits is taken:
            // parts filed while it was closed must not stay in front of the next parts queued ahead.
            group = take(ahead?.parts.count ?? Int.max).filter { !$0.records.isEmpty }
            let parts = group
            let ids = parts.flatMap { $0.records.map(\.docID) }
            let matched = ahead.map { ahead in
                parts.count >= ahead.parts.count && zip(ahead.parts, parts).allSatisfy { $0 == $1.records.map(\.docID) }
            } ?? false
            var posted: [WriterThreads.Ticket] = []
            // Leaves the lock without this write's lookahead path: what was queued ahead is rolled back
            // and, with `closing`, nothing more is queued until a write opens the lookahead again.
            func dropLookahead(closing: Bool) {
                if closing { aheadOpen = false }
                lookaheadLock.unlock()
                if let ahead { rollBack(ahead) }
            }
            if ids.isEmpty {
                // Nothing to write (an earlier write took it); parts queued ahead always come with a group.
                dropLookahead(closing: ahead != nil)
                return true
            }
            do {
                try connection.execute("BEGIN IMMEDIATE")
            } catch {
                dropLookahead(closing: true)
                throw error
            }
            do {
                guard try storedDocIDs(ids).isEmpty else {
                    _ = sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
                    dropLookahead(closing: true)
                    return false
                }
                stages.lap("replace check")
                let generations = try Dictionary(uniqueKeysWithValues: shards.fileIndexes.map { ($0, try nextGeneration(of: $0)) })
                let early = EarlyShardCommits(generations: generations)
                let errors = ErrorSlots(count: shards.count + 1)
                let rows = ids.count
                let aheadCount = matched ? ahead!.parts.count : 0
                let begin = StageClock.now()
                for shard in shards.fileIndexes {
                    posted.append(writerThreads.post(part: shard) { [self] in
                        let file = shards.files[shard - 1]
                        do {
                            // The rows queued ahead are in this shard's open transaction, unless its insert
                            // failed (rolled back) or they are not this group's (dropped here).
                            let open = ahead != nil && ahead?.errors.error(shard) == nil
                            if open && !matched { _ = sqlite3_exec(file.handle, "ROLLBACK", nil, nil, nil) }
                            let reused = open && matched
                            if !reused { try file.execute("BEGIN IMMEDIATE") }
                            try applyKeywordWriteSettings(to: [shard], rows: rows)
                            try insertKeywordRows(Array(parts[(reused ? aheadCount : 0)...]), shard: shard)
                            let commitBegin = StageClock.now()
                            try KeywordShards.setMeta(file, "generation", String(generations[shard]!))
                            try file.execute("COMMIT")
                            early.noteCommitted(shard, seconds: StageClock.seconds(commitBegin, StageClock.now()))
                            faultHook?(.shardCommittedBesideRows, shard)
                        } catch {
                            _ = sqlite3_exec(file.handle, "ROLLBACK", nil, nil, nil)
                            errors.set(shard, error)
                        }
                    })
                }
                // Parts queued from now on go behind these commits, for the next write.
                aheadOpen = true
                lookaheadLock.unlock()
                let rowMark = ThreadUsage.Mark()
                let times = try insertRows(parts, withKeywords: false)
                usage = [rowMark.usageSince(posted: begin)] + posted.map(writerThreads.wait)
                posted = []
                // Queued before this write's commits on each shard thread, so done by now.
                aheadUsage = ahead?.inserts.values.flatMap { $0.map(writerThreads.wait) } ?? []
                if let error = errors.first { throw error }
                stages.add("rows", times.rows)
                stages.add("rows: unit_content", times.content)
                stages.add("keyword index", max(0, StageClock.seconds(begin, StageClock.now()) - times.rows))
                stages.add("keyword index: shard commits beside the rows (slowest)", early.slowestCommitSeconds)
                stages.restart()
                for shard in shards.fileIndexes { try setMeta(KeywordShards.generationKey(shard), String(generations[shard]!)) }
                faultHook?(.shardsCommitted, 0)
                let commitMark = ThreadUsage.Mark()
                try connection.execute("COMMIT")
                commitUsage = commitMark.usageSince(posted: commitMark.wall)
                stages.lap("commit")
                if matched { writesInsertedAhead += 1 }
                requestCheckpoint()
                return true
            } catch {
                // This write's shard parts may still run: they finish before anything touches their files.
                posted.forEach { _ = writerThreads.wait($0) }
                _ = sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
                settleLookahead()
                if !repairing && !shards.fileIndexes.allSatisfy({ (try? KeywordShards.meta(shards.files[$0 - 1], "generation")) == (try? meta(KeywordShards.generationKey($0))) }) {
                    // Shard files that committed are ahead of the main database: bring them back in step
                    // (a failure here is left to the next writer's open).
                    repairing = true
                    defer { repairing = false }
                    try? rebuildKeywordShards(shards.fileIndexes, tokenizerMigration: false)
                }
                throw error
            }
        }
        guard inserted else { return false }
        guard !usage.isEmpty else { return true }
        let writes = ThreadUsage.summary(usage), insertedAhead = ThreadUsage.summary(aheadUsage)
        stages.add("rows + keyword index, thread cpu", Double(writes.total.cpu &+ insertedAhead.total.cpu) * 1e-9)
        stages.add("rows + keyword index, busiest thread cpu", Double(writes.busiest) * 1e-9)
        addPartWalls(usage, to: &stages)
        stages.add("rows + keyword index, thread system cpu", Double(writes.total.system) * 1e-9)
        stages.add("rows + keyword index, waiting for a core", Double(writes.total.runQueueWait) * 1e-9)
        stages.add("rows + keyword index, latest part start", Double(writes.latestStart) * 1e-9)
        if !aheadUsage.isEmpty {
            // The shard threads' inserts of this write's parts queued ahead: their CPU (the profile's call
            // count is the number of writes that had parts queued ahead).
            stages.add("keyword index: rows inserted ahead, thread cpu", Double(insertedAhead.total.cpu) * 1e-9)
        }
        // The shard files commit inside their parts above; this is the main database's commit.
        stages.add("commit, thread cpu", Double(commitUsage.cpu) * 1e-9)
        stages.add("commit, waiting for a core", Double(commitUsage.runQueueWait) * 1e-9)
        insertStages = stages.laps
        return true
    }

    /// Waits for a lookahead's inserts and rolls back the transactions they left open.
    private func rollBack(_ ahead: KeywordLookahead) {
        for (shard, inserts) in ahead.inserts.sorted(by: { $0.key < $1.key }) {
            inserts.forEach { _ = writerThreads.wait($0) }
            if ahead.errors.error(shard) == nil { _ = sqlite3_exec(shards.files[shard - 1].handle, "ROLLBACK", nil, nil, nil) }
        }
    }

    /// Stops queueing ahead and drops what is queued (no write will take it): before any other use of the
    /// shard files' connections, and when the store closes. The next `insert(takingGroup:)` opens it again.
    /// The caller holds the store's lock (or is its `deinit`).
    func settleLookahead() {
        lookaheadLock.lock()
        aheadOpen = false
        let ahead = pendingLookahead
        pendingLookahead = nil
        lookaheadLock.unlock()
        if let ahead { rollBack(ahead) }
    }

}
