import CSQLite
import Foundation

/// The next write's keyword rows, put into each keyword shard file by its writer thread while the current
/// write is still finishing, in a transaction left open until that next write commits it.
///
/// Why: in a sharded insert every shard file's writer and the row writer wait for each other at the end of
/// each write, so each write lasts as long as its slowest part. On 2 × H200 with 32 cores (a cold build of
/// 113k units, 8 shards, ~45 writes; docs/PERFORMANCE.md, session 21) the slowest part of each write summed
/// to 2.68 s, while the slowest part's own total over all writes was 2.11–2.17 s: the shards' share of a
/// write varies, and the quick ones idled. With the next write's rows posted behind this write's commit on
/// every shard thread, a shard that is done early goes on with them.
///
/// Crash safety and readers are unchanged: the rows stay uncommitted until the write they belong to
/// commits its shard files (each before the main database, with the same generations as before), so a
/// kill or an abandoned lookahead leaves nothing behind (SQLite drops an open transaction), and a reader,
/// which sees committed rows only, never meets a shard ahead of the main database because of it.
final class KeywordLookahead {
    /// The documents of the write the rows are for: only a write of exactly these consumes them.
    let docIDs: [Int64]
    /// Shard → its queued insert (`BEGIN IMMEDIATE`, settings, rows; no commit).
    let inserts: [Int: WriterThreads.Ticket]
    /// A shard's failed insert (its transaction rolled back by it): that write then inserts the rows itself.
    let errors: ErrorSlots

    init(docIDs: [Int64], inserts: [Int: WriterThreads.Ticket], errors: ErrorSlots) {
        self.docIDs = docIDs
        self.inserts = inserts
        self.errors = errors
    }

    /// `COLGREP_KEYWORD_LOOKAHEAD=0` writes every insert as before (each shard starts its rows with the write).
    static let enabled = ProcessInfo.processInfo.environment["COLGREP_KEYWORD_LOOKAHEAD"] != "0"
}

extension MetadataStore {
    /// A sharded insert of documents none of which is stored yet (a build's common case), with `next`, the
    /// write that will follow, inserted ahead on the shard threads (`KeywordLookahead`) when its documents
    /// are new too. Returns false, having written nothing, when `parts` replaces stored documents: the
    /// caller then takes the general path (`shardedWrite`), which deletes them first.
    func insertWithLookahead(_ parts: [PreparedRecords], next: [PreparedRecords]) throws -> Bool {
        let ids = parts.flatMap { $0.records.map(\.docID) }
        var stages = StageClock()
        var usage: [ThreadUsage] = []
        var commitUsage = ThreadUsage()
        let inserted = try writeKeepingLookahead { () -> Bool in
            let ahead = takeLookahead(matching: ids)
            try connection.execute("BEGIN IMMEDIATE")
            var posted: [WriterThreads.Ticket] = []
            do {
                guard try storedDocIDs(ids).isEmpty else {
                    _ = sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
                    if let ahead { rollBack(ahead) }
                    return false
                }
                let nextIDs = next.flatMap { $0.records.map(\.docID) }
                let nextIsNew = try !nextIDs.isEmpty && Set(nextIDs).count == nextIDs.count
                    && Set(nextIDs).isDisjoint(with: ids) && storedDocIDs(nextIDs).isEmpty
                stages.lap("replace check")
                let generations = try Dictionary(uniqueKeysWithValues: shards.fileIndexes.map { ($0, try nextGeneration(of: $0)) })
                let early = EarlyShardCommits(generations: generations)
                let errors = ErrorSlots(count: shards.count + 1)
                let rows = parts.reduce(0) { $0 + $1.records.count }
                let begin = StageClock.now()
                for shard in shards.fileIndexes {
                    posted.append(writerThreads.post(part: shard) { [self] in
                        let file = shards.files[shard - 1]
                        do {
                            // Rows already in (inserted ahead, behind the previous write's commit), or put in now.
                            if ahead == nil || ahead?.errors.error(shard) != nil {
                                try file.execute("BEGIN IMMEDIATE")
                                try applyKeywordWriteSettings(to: [shard], rows: rows)
                                try insertKeywordRows(parts, shard: shard)
                            }
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
                if nextIsNew { pendingLookahead = postLookahead(next, docIDs: nextIDs) }
                let rowMark = ThreadUsage.Mark()
                let times = try insertRows(parts, withKeywords: false)
                usage = [rowMark.usageSince(posted: begin)] + posted.map(writerThreads.wait)
                posted = []
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
                if ahead != nil { writesInsertedAhead += 1 }
                requestCheckpoint()
                return true
            } catch {
                // This write's shard parts may still run: they finish before anything touches their files.
                posted.forEach { _ = writerThreads.wait($0) }
                _ = sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
                if let next = pendingLookahead {
                    pendingLookahead = nil
                    rollBack(next)
                }
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
        let writes = ThreadUsage.summary(usage)
        stages.add("rows + keyword index, thread cpu", Double(writes.total.cpu) * 1e-9)
        stages.add("rows + keyword index, busiest thread cpu", Double(writes.busiest) * 1e-9)
        addPartWalls(usage, to: &stages)
        stages.add("rows + keyword index, thread system cpu", Double(writes.total.system) * 1e-9)
        stages.add("rows + keyword index, waiting for a core", Double(writes.total.runQueueWait) * 1e-9)
        stages.add("rows + keyword index, latest part start", Double(writes.latestStart) * 1e-9)
        // The shard files commit inside their parts above; this is the main database's commit.
        stages.add("commit, thread cpu", Double(commitUsage.cpu) * 1e-9)
        stages.add("commit, waiting for a core", Double(commitUsage.runQueueWait) * 1e-9)
        insertStages = stages.laps
        return true
    }

    /// Queues `next`'s keyword rows on every shard thread, behind what is queued there, each in a
    /// transaction of its shard file left open for the write of `next` to commit.
    private func postLookahead(_ next: [PreparedRecords], docIDs: [Int64]) -> KeywordLookahead {
        let errors = ErrorSlots(count: shards.count + 1)
        let rows = next.reduce(0) { $0 + $1.records.count }
        var inserts: [Int: WriterThreads.Ticket] = [:]
        for shard in shards.fileIndexes {
            inserts[shard] = writerThreads.post(part: shard) { [self] in
                let file = shards.files[shard - 1]
                do {
                    try file.execute("BEGIN IMMEDIATE")
                    try applyKeywordWriteSettings(to: [shard], rows: rows)
                    try insertKeywordRows(next, shard: shard)
                    faultHook?(.keywordRowsInsertedAhead, shard)
                } catch {
                    _ = sqlite3_exec(file.handle, "ROLLBACK", nil, nil, nil)
                    errors.set(shard, error)
                }
            }
        }
        return KeywordLookahead(docIDs: docIDs, inserts: inserts, errors: errors)
    }

    /// The pending lookahead if it holds exactly `ids`' rows (taken: the caller's write commits it); any
    /// other is rolled back.
    private func takeLookahead(matching ids: [Int64]) -> KeywordLookahead? {
        guard let ahead = pendingLookahead else { return nil }
        pendingLookahead = nil
        if ahead.docIDs == ids { return ahead }
        rollBack(ahead)
        return nil
    }

    /// Waits for a lookahead's inserts and rolls back the transactions they left open.
    private func rollBack(_ ahead: KeywordLookahead) {
        for (shard, insert) in ahead.inserts.sorted(by: { $0.key < $1.key }) {
            _ = writerThreads.wait(insert)
            if ahead.errors.error(shard) == nil { _ = sqlite3_exec(shards.files[shard - 1].handle, "ROLLBACK", nil, nil, nil) }
        }
    }

    /// Drops the pending lookahead (its write is not coming): before any other use of the shard files'
    /// connections, and when the store closes. The caller holds the store's lock (or is its `deinit`).
    func settleLookahead() {
        guard let ahead = pendingLookahead else { return }
        pendingLookahead = nil
        rollBack(ahead)
    }

    /// Which of `ids` have stored rows.
    private func storedDocIDs(_ ids: [Int64]) throws -> [Int64] {
        try self.ids("SELECT doc_id FROM units WHERE doc_id IN (SELECT value FROM json_each(?))", Self.jsonArray(ids))
    }
}
