import CSQLite
import Foundation

/// The index's SQLite database (`metadata.db`): unit metadata, the FTS5 keyword index over
/// identifier-split text with BM25 scoring, a `regexp` SQL function, and subset filters.
///
/// Document ids are chosen by the caller and never renumbered. Every write is one transaction, so a
/// writer killed at any point leaves the last committed state (SQLite WAL). A damaged file is
/// reported as `StoreError.corrupt` (at open from the header, during queries from SQLite's
/// corruption codes confirmed by `quick_check`), never read as if it were sound.
///
/// Thread-safe: calls are serialised on one connection. Open writers with `readOnly: false` (WAL,
/// `synchronous=NORMAL`, 5 s busy timeout); searches use `readOnly: true` (`query_only`).
public final class MetadataStore: @unchecked Sendable {
    public let path: URL
    public let isReadOnly: Bool
    /// Internal (not private) so tests can reach behind the API, e.g. to shrink the page cache.
    let connection: SQLiteConnection
    /// The keyword index's shards (one unless the store was created with several; see `KeywordShards`).
    private(set) var shards = KeywordShards(count: 1, files: [])
    private let regex = RegexFunction()
    private let lock = NSLock()
    /// The sharded write's threads (the row writer on the caller, one per shard file), started by the
    /// first sharded write (readers never start them).
    private var writerThreadsStorage: WriterThreads?
    var writerThreads: WriterThreads {
        if let threads = writerThreadsStorage, threads.count == shards.count + 1 { return threads }
        let threads = WriterThreads(count: shards.count + 1, name: "colgrep-store")
        writerThreadsStorage = threads
        return threads
    }
    /// Checkpoints the WAL of every file after writes (`WALCheckpointer`), started by the first write.
    private var checkpointer: WALCheckpointer?

    /// Threads that write side by side in one insert: the row writer and one per keyword shard file (1
    /// with a single keyword table).
    var writerThreadCount: Int { shards.count == 1 ? 1 : shards.count + 1 }

    /// Where a write may be interrupted by tests (the crash-safety test kills its child process there).
    enum FaultPoint: Sendable { case insertedRow, deletedBatch, updatedCalledBy, shardsCommitted, shardCommittedBesideRows, keywordRowsInsertedAhead }
    /// Called at each `FaultPoint` inside the write transaction with the row index; tests only.
    var faultHook: ((FaultPoint, Int) -> Void)?

    /// Opens (creating when writable) the store at `path`. A new store splits its keyword index over
    /// `keywordShards` FTS5 tables (default `KeywordShards.defaultCount()`: from the core count, or
    /// `COLGREP_KEYWORD_SHARDS`); an existing store keeps the count it was created with. A new main
    /// database gets `pageSize`-byte pages (default `mainPageSize`); an existing one keeps its own.
    /// - Throws: `StoreError.missing` (read-only, no database), `.corrupt`, `.newerSchema`,
    ///   `.needsRebuild` (an older layout without in-place migration), `.needsMigration` (read-only
    ///   open of a store a writer must migrate or repair first), `.fts5Unavailable`, `.sqlite`.
    public init(path: URL, readOnly: Bool, keywordShards: Int? = nil, pageSize: Int = mainPageSize) throws {
        self.path = path
        self.isReadOnly = readOnly
        let file = path.path
        let verdict = DatabaseFileCheck.inspect(path: file)
        switch verdict {
        case let .corrupt(reason): throw StoreError.corrupt(path: file, reason: reason)
        case .empty where readOnly: throw StoreError.missing(path: file)
        default: break
        }
        connection = try SQLiteConnection(path: file, readOnly: readOnly)
        guard sqlite3_compileoption_used("ENABLE_FTS5") == 1 else {
            throw StoreError.fts5Unavailable(sqliteVersion: String(cString: sqlite3_libversion()))
        }
        try Self.applyPragmas(connection, readOnly: readOnly, newFilePageSize: pageSize)
        if case let .suspicious(reason) = verdict, let problems = integrityProblems() {
            throw StoreError.corrupt(path: file, reason: "\(reason); quick_check: \(problems)")
        }
        try KeywordRanking.register(on: connection)
        let requested = min(max(1, keywordShards ?? KeywordShards.defaultCount()), KeywordShards.maximum)
        try withCorruptionCheck { try prepareSchema(requestedShards: requested) }
        try regex.register(on: connection)
    }

    /// How much of the file a read-only connection maps (SQLite caps it at its own compile-time limit;
    /// pages beyond it, and pages still in the WAL, are read as usual).
    static let readOnlyMapBytes = 1 << 30

    /// The pragmas of every connection the store opens, the main database's and each keyword shard's:
    /// a reader maps pages read-only instead of a `pread` copy per 4 kB page (the literal scan alone read
    /// every content page: ~5,000 calls on a 10k-unit store); a writer uses WAL with normal syncs.
    /// `newFilePageSize`: the page size of a file this connection creates (an existing file keeps its own).
    static func applyPragmas(_ connection: SQLiteConnection, readOnly: Bool, newFilePageSize: Int? = pageSizeOverride) throws {
        if readOnly {
            try connection.execute("PRAGMA busy_timeout=5000; PRAGMA temp_store=MEMORY; PRAGMA query_only=ON; PRAGMA mmap_size=\(readOnlyMapBytes);")
        } else {
            // Before WAL: a new file takes its page size from its first write.
            if let pageSize = newFilePageSize { try connection.execute("PRAGMA page_size=\(pageSize);") }
            try connection.execute("""
                PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
                PRAGMA temp_store=MEMORY; PRAGMA cache_size=-\(writerCacheKiB);
                """)
            // The store's `WALCheckpointer` copies the WAL into the database on its own thread.
            if WALCheckpointer.enabled { try connection.execute("PRAGMA wal_autocheckpoint=0;") }
        }
    }

    /// The page size of every new store file when `COLGREP_STORE_PAGE_SIZE` is set (a power of two,
    /// 512…65536; for measuring), else nil: SQLite's 4096, except the main database (`mainPageSize`).
    static let pageSizeOverride: Int? = ProcessInfo.processInfo.environment["COLGREP_STORE_PAGE_SIZE"]
        .flatMap { Int($0) }.flatMap { (512...65536).contains($0) && $0 & ($0 - 1) == 0 ? $0 : nil }

    /// The page size of a new main database: 16 KiB. Its `unit_content` rows (a unit's code and arrays,
    /// often over a 4 KiB page) are the rows writer's larger part; on 64 cores, a cold build of 113k units
    /// wrote them in 0.66–0.69 s with 16 KiB pages against 0.79–0.82 s with 4 KiB, the store lane alone
    /// took 1.65 s against 2.17 s, and a user's init 4.55–5.05 s against 4.82–5.33 s (docs/PERFORMANCE.md,
    /// session 19). The keyword shard files keep 4 KiB (their commits measured the same either way).
    public static let mainPageSize = pageSizeOverride ?? 16384

    /// Page cache of a writing connection, in KiB: 4 MiB (`COLGREP_STORE_CACHE_MIB` overrides it, for
    /// measuring). A cold build appends at the right edge of each B-tree and FTS5 segment, so a large
    /// cache only costs fresh pages: with 64 MiB the store lane of a 29,850-unit cold build on 16 cores
    /// took 1.48–1.75 s alone, with 4 MiB 1.23–1.33 s (docs/PERFORMANCE.md, session 12).
    static let writerCacheKiB: Int = ProcessInfo.processInfo.environment["COLGREP_STORE_CACHE_MIB"]
        .flatMap { Int($0) }.flatMap { $0 >= 1 ? $0 * 1024 : nil } ?? 4096

    // MARK: - schema

    private func prepareSchema(requestedShards: Int) throws {
        let file = path.path
        var version = Int(try connection.scalarInt("PRAGMA user_version") ?? 0)
        let tables = try tableNames()
        if version == 0 && tables.isEmpty {
            if isReadOnly { throw StoreError.missing(path: file) }
            try createStore(shardCount: requestedShards)
            return
        }
        if version > Schema.version {
            throw StoreError.newerSchema(path: file, found: version, supported: Schema.version)
        }
        if version == Schema.unshardedVersion {
            // The same tables with one keyword table: a one-shard store once the shard facts are recorded.
            if isReadOnly {
                throw StoreError.needsMigration(path: file, reason: "its schema version \(version) predates \(Schema.version)")
            }
            try connection.transaction {
                try setMeta("keyword_shards", "1")
                try setMeta("store_id", UUID().uuidString)
                try connection.execute("PRAGMA user_version=\(Schema.version)")
            }
            version = Schema.version
        }
        if version < Schema.version {
            let what = version == 0 ? "it is not a colgrep metadata database" : "its schema version \(version) predates \(Schema.version)"
            throw StoreError.needsRebuild(path: file, reason: what)
        }
        if let absent = Schema.tables.first(where: { !tables.contains($0) }) {
            throw StoreError.corrupt(path: file, reason: "table \(absent) is missing")
        }
        let repair = try openShards()
        let tokenizer = try meta("keyword_tokenizer").flatMap { Int($0) } ?? 0
        if tokenizer > Schema.keywordTokenizerVersion {
            throw StoreError.newerSchema(path: file, found: tokenizer, supported: Schema.keywordTokenizerVersion)
        }
        if tokenizer < Schema.keywordTokenizerVersion {
            if isReadOnly {
                throw StoreError.needsMigration(path: file, reason: "its keyword index uses tokenizer version \(tokenizer), this colgrep uses \(Schema.keywordTokenizerVersion)")
            }
            try rebuildKeywordShards(shards.indexes, tokenizerMigration: true)
        } else if !repair.isEmpty {
            try rebuildKeywordShards(repair, tokenizerMigration: false)
        }
    }

    /// Creates the tables of a new store with `shardCount` keyword shards (files of an earlier store
    /// under the same name are removed first; a crash before the shard files exist is repaired at the
    /// next open like any missing shard).
    private func createStore(shardCount: Int) throws {
        KeywordShards.removeFiles(main: path)
        let storeID = UUID().uuidString
        try connection.transaction {
            try connection.execute(Schema.create)
            try setMeta("keyword_tokenizer", String(Schema.keywordTokenizerVersion))
            try setMeta("keyword_shards", String(shardCount))
            try setMeta("store_id", storeID)
            for shard in KeywordShards.fileIndexes(shardCount) { try setMeta(KeywordShards.generationKey(shard), "0") }
            try connection.execute("PRAGMA user_version=\(Schema.version)")
        }
        let files = try KeywordShards.fileIndexes(shardCount).map {
            try KeywordShards.create(main: path, shard: $0, storeID: storeID, generation: 0)
        }
        shards = KeywordShards(count: shardCount, files: files)
    }

    /// Opens the shard files the store records. A writer creates a missing or foreign shard file again
    /// and returns the shards to rebuild from the stored rows (those, and the ones whose generation is not
    /// the one the main database expects: a write killed between its commits); a reader throws
    /// `.needsMigration` for a missing or foreign file and leaves generations to each keyword read.
    private func openShards() throws -> [Int] {
        let file = path.path
        guard let count = try meta("keyword_shards").flatMap({ Int($0) }), (1...KeywordShards.maximum).contains(count),
              let storeID = try meta("store_id") else {
            throw StoreError.corrupt(path: file, reason: "the keyword shard facts are missing")
        }
        var files: [SQLiteConnection] = []
        var repair: [Int] = []
        for shard in KeywordShards.fileIndexes(count) {
            let shardFile = KeywordShards.fileURL(main: path, shard: shard)
            var opened: SQLiteConnection?
            var problem = "the file \(shardFile.path) is missing"
            if DatabaseFileCheck.inspect(path: shardFile.path) != .empty {
                do {
                    let candidate = try KeywordShards.open(main: path, shard: shard, readOnly: isReadOnly)
                    switch KeywordShards.identity(of: candidate, shard: shard, storeID: storeID) {
                    case let .sound(generation):
                        opened = candidate
                        if !isReadOnly, try meta(KeywordShards.generationKey(shard)).flatMap({ Int64($0) }) != generation {
                            repair.append(shard)
                        }
                    case let .foreign(reason): problem = "\(shardFile.path) is not this store's shard \(shard): \(reason)"
                    }
                } catch {
                    problem = "\(shardFile.path) cannot be opened: \(error)"
                }
            }
            if opened == nil {
                if isReadOnly { throw StoreError.needsMigration(path: file, reason: "keyword shard \(shard): \(problem)") }
                let expected = try meta(KeywordShards.generationKey(shard)).flatMap { Int64($0) } ?? 0
                opened = try KeywordShards.create(main: path, shard: shard, storeID: storeID, generation: expected)
                repair.append(shard)
            }
            files.append(opened!)
        }
        shards = KeywordShards(count: count, files: files)
        return repair
    }

    private func tableNames() throws -> Set<String> {
        let statement = try connection.statement("SELECT name FROM sqlite_master WHERE type = 'table'")
        defer { statement.reset() }
        var names = Set<String>()
        while try statement.step() { names.insert(statement.text(0)) }
        return names
    }

    func meta(_ key: String) throws -> String? {
        let statement = try connection.statement("SELECT value FROM meta WHERE key = ?")
        defer { statement.reset() }
        statement.bind(1, key)
        return try statement.step() ? statement.text(0) : nil
    }

    func setMeta(_ key: String, _ value: String) throws {
        let statement = try connection.statement("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)")
        statement.bind(1, key)
        statement.bind(2, value)
        try statement.run()
    }

    /// Re-derives the keyword rows of `which` shards from the stored records (a tokenizer migration: every
    /// shard; a repair: the shards out of step), in one sharded write.
    func rebuildKeywordShards(_ which: [Int], tokenizerMigration: Bool) throws {
        try shardedWrite { touched in
            for shard in which {
                let table = KeywordShards.tableName(shard)
                try shards.connection(shard, main: connection).execute("INSERT INTO \(table)(\(table)) VALUES('delete-all')")
                touched.insert(shard)
            }
            let wanted = Set(which)
            let ids = try allDocIDsUnlocked().filter { wanted.contains(shards.shard(of: $0)) }.sorted()
            try applyKeywordWriteSettings(to: which, rows: ids.count)
            for record in try recordsUnlocked(ids) {
                try insertKeywordRow(record.docID, record.keywordText)
            }
            if tokenizerMigration { try setMeta("keyword_tokenizer", String(Schema.keywordTokenizerVersion)) }
        }
    }

    deinit {
        // The shard threads may still be inserting rows ahead for a write that is not coming.
        settleLookahead()
        // Before the store's own connections close: the last connection of each file to close then
        // checkpoints what the background thread had not copied yet.
        checkpointer?.stop()
    }

    /// Asks the background thread to checkpoint every file after a committed write.
    func requestCheckpoint() {
        guard WALCheckpointer.enabled, !isReadOnly else { return }
        if checkpointer == nil {
            checkpointer = WALCheckpointer(paths: [path.path] + shards.fileIndexes.map { KeywordShards.fileURL(main: path, shard: $0).path })
        }
        checkpointer?.request()
    }

    /// Checkpoints every file once more, emptying its WAL, and waits for it: after a build, so that the
    /// WAL is copied into the database (readers then read the database files alone, mapped) and takes no
    /// disk space even if the process exits without closing the store.
    @discardableResult
    public func finishCheckpoints() -> WALFinishTimes? {
        lock.withLock { checkpointer }?.finish()
    }

    /// Runs `body` inside one transaction on the main database and one on each shard file. `body` names
    /// the shards it changed; their generations advance in the shard files and in the main database.
    /// The changed shard files commit first (side by side), then the main database: a kill in between
    /// leaves shards ahead of the main database, which readers detect and the next writer repairs. With
    /// one shard this is the main database's transaction alone.
    ///
    /// With `shardsCommitBesideRows` (a sharded insert), every shard file's writer thread commits its file
    /// as soon as its keyword rows are in, while the row writer is still writing the main database
    /// (`EarlyShardCommits`): the same order of commits (every shard file before the main database) and the
    /// same generations, but the shards' FTS5 segment flushes overlap the rows instead of following them.
    private func shardedWrite<T>(shardsCommitBesideRows: Bool = false, _ body: (inout Set<Int>) throws -> T) throws -> T {
        var touched = Set<Int>()
        guard shards.count > 1 else {
            lastCommitUsage = []
            let result = try connection.transaction { try body(&touched) }
            requestCheckpoint()
            return result
        }
        try connection.execute("BEGIN IMMEDIATE")
        var open: [Int] = []
        var committed = false
        var early: EarlyShardCommits?
        defer { earlyShardCommits = nil }
        do {
            for shard in shards.fileIndexes {
                try shards.files[shard - 1].execute("BEGIN IMMEDIATE")
                open.append(shard)
            }
            if shardsCommitBesideRows {
                early = EarlyShardCommits(generations: try Dictionary(uniqueKeysWithValues: shards.fileIndexes.map { shard in
                    (shard, try nextGeneration(of: shard))
                }))
                earlyShardCommits = early
            }
            let result = try body(&touched)
            let committedEarly = early?.committed ?? []
            open.removeAll(where: committedEarly.contains)
            let changed = shards.fileIndexes.filter { touched.contains($0) || committedEarly.contains($0) }
            for shard in changed {
                if let generation = early?.generations[shard], committedEarly.contains(shard) {
                    try setMeta(KeywordShards.generationKey(shard), String(generation))
                    continue
                }
                let generation = try nextGeneration(of: shard)
                try KeywordShards.setMeta(shards.files[shard - 1], "generation", String(generation))
                try setMeta(KeywordShards.generationKey(shard), String(generation))
            }
            let errors = ErrorSlots(count: shards.count + 1)
            let committing = open
            let files = UncheckedSendable(committing.map { shards.files[$0 - 1] })
            // The shard files commit side by side on the writer threads (part p commits the p-th open file;
            // with fewer open files than threads the rest have nothing to do), then the main database.
            let shardsBegin = StageClock.now()
            var usage = committing.isEmpty ? [] : writerThreads.run { part in
                guard part < committing.count else { return }
                do { try files.value[part].execute("COMMIT") } catch { errors.set(committing[part], error) }
            }
            lastShardCommitSeconds = StageClock.seconds(shardsBegin, StageClock.now())
            committed = true
            open.removeAll()
            if let error = errors.first { throw error }
            faultHook?(.shardsCommitted, 0)
            let mainCommit = ThreadUsage.Mark()
            try connection.execute("COMMIT")
            usage.append(mainCommit.usageSince(posted: mainCommit.wall))
            lastCommitUsage = usage
            requestCheckpoint()
            return result
        } catch {
            _ = sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
            let committedEarly = early?.committed ?? []
            for shard in open where !committedEarly.contains(shard) {
                _ = sqlite3_exec(shards.files[shard - 1].handle, "ROLLBACK", nil, nil, nil)
            }
            if (committed || !committedEarly.isEmpty) && !repairing {
                // Some shard files may be ahead of the main database now: bring them back in step (a
                // failure here is left to the next writer's open).
                repairing = true
                defer { repairing = false }
                try? rebuildKeywordShards(shards.fileIndexes, tokenizerMigration: false)
            }
            throw error
        }
    }

    /// The FTS5 settings of the keyword tables of `which` shards for a write of `rows` rows
    /// (`KeywordWriteSettings`), in the open sharded write.
    func applyKeywordWriteSettings(to which: [Int], rows: Int) throws {
        for shard in which {
            try KeywordWriteSettings.apply(table: KeywordShards.tableName(shard),
                                           on: shards.connection(shard, main: connection), rows: rows)
        }
    }

    /// The generation shard `shard` gets at the next commit that changes it (the main database's record + 1).
    func nextGeneration(of shard: Int) throws -> Int64 {
        (try meta(KeywordShards.generationKey(shard)).flatMap { Int64($0) } ?? 0) + 1
    }

    /// The shard commits of the sharded write in progress, when its shard files commit beside the rows.
    private var earlyShardCommits: EarlyShardCommits?

    /// Each thread's usage in the last sharded write's commits (the shard files', then the main database's).
    private var lastCommitUsage: [ThreadUsage] = []
    /// Wall seconds of the last sharded write's shard-file commits (before the main database's).
    private var lastShardCommitSeconds = 0.0
    /// Extra read-only connections to the main database for a literal check spread over cores (`codeContains`).
    private var literalReaders: [SQLiteConnection] = []
    /// Set while a failed write's repair runs (its own failure must not start another).
    var repairing = false
    /// Keyword rows queued ahead on the shard threads for the next write (`KeywordLookahead`), whether parts
    /// may be queued ahead now, and the lock of both (`queueAhead` runs on the caller's threads).
    var pendingLookahead: KeywordLookahead?
    var aheadOpen = false
    let lookaheadLock = NSLock()
    /// Sharded inserts whose keyword rows had been inserted ahead (`KeywordLookahead`), for tests and profiles.
    public internal(set) var writesInsertedAhead = 0

    // MARK: - writes

    /// Inserts `records` in one transaction; a record whose doc id already exists replaces it. Doc ids
    /// must be distinct within one call (a repeated id fails the whole batch with a constraint error).
    public func insert(_ records: [UnitRecord]) throws {
        try insert(PreparedRecords(records))
    }

    /// Inserts rows whose text work was done by the caller (`PreparedRecords`, built off the writer's
    /// thread), in one transaction: the writer only binds and steps. Same rules as `insert(_:)`.
    public func insert(_ prepared: PreparedRecords) throws {
        try insert([prepared])
    }

    /// Inserts several prepared parts in one transaction, in order (fewer, larger commits: each commit
    /// flushes the keyword index's pending terms into a new segment that later merges rewrite). Doc ids
    /// must be distinct across the parts.
    public func insert(_ parts: [PreparedRecords]) throws {
        // A sharded store writes new documents with each shard file committing from its own thread
        // (`insert(takingGroup:)`, `KeywordLookahead`), replaced ones by the general path.
        _ = try insert(takingGroup: { _ in parts })
    }

    /// `insert(_:)` by the general path: deletes the stored documents the parts replace, then inserts.
    func insertGeneral(_ parts: [PreparedRecords]) throws {
        guard parts.contains(where: { !$0.records.isEmpty }) else { return }
        var stages = StageClock()
        var usage: [ThreadUsage] = []
        var commitMark: ThreadUsage.Mark?
        try write {
            try shardedWrite(shardsCommitBesideRows: Self.shardsCommitBesideRows) { touched in
                try deleteUnlocked(parts.flatMap { $0.records.map(\.docID) }, touched: &touched)
                try applyKeywordWriteSettings(to: shards.indexes, rows: parts.reduce(0) { $0 + $1.records.count })
                stages.lap("replace check")
                if shards.count == 1 {
                    let start = ThreadUsage.Mark()
                    let (rowSeconds, contentSeconds, keywordSeconds) = try insertRows(parts, withKeywords: true)
                    stages.add("rows", rowSeconds)
                    stages.add("rows: unit_content", contentSeconds)
                    stages.add("keyword index", keywordSeconds)
                    usage = [start.usageSince(posted: start.wall)]
                } else {
                    usage = try insertRowsSharded(parts, stages: &stages)
                    touched.formUnion(shards.fileIndexes)
                }
                stages.restart()
                commitMark = ThreadUsage.Mark()
            }
            stages.lap("commit")
        }
        let commit = shards.count == 1 ? commitMark.map { [$0.usageSince(posted: $0.wall)] } ?? [] : lastCommitUsage
        let writes = ThreadUsage.summary(usage), commits = ThreadUsage.summary(commit)
        stages.add("rows + keyword index, thread cpu", Double(writes.total.cpu) * 1e-9)
        if shards.count > 1 {
            stages.add("rows + keyword index, busiest thread cpu", Double(writes.busiest) * 1e-9)
            addPartWalls(usage, to: &stages)
        }
        // Beside the CPU: its kernel share, the time the writer threads were runnable but had no core, and
        // how late the last part started (a shared pool's helper would start late; the store's own threads
        // should not).
        stages.add("rows + keyword index, thread system cpu", Double(writes.total.system) * 1e-9)
        stages.add("rows + keyword index, waiting for a core", Double(writes.total.runQueueWait) * 1e-9)
        if shards.count > 1 { stages.add("rows + keyword index, latest part start", Double(writes.latestStart) * 1e-9) }
        if shards.count > 1 { stages.add("commit: keyword shard files", lastShardCommitSeconds) }
        stages.add("commit, thread cpu", Double(commits.total.cpu) * 1e-9)
        stages.add("commit, waiting for a core", Double(commits.total.runQueueWait) * 1e-9)
        insertStages = stages.laps
    }

    /// The parallel section's parts (the row writer and one per keyword shard) wait for each other at the end
    /// of every write. Two stages tell what that costs: `slowest part` is, summed over writes, the slowest
    /// part's wall in each (what the lane spends); `slowest part, parts unsynchronised` is the largest of the
    /// parts' own wall totals (what it would spend if each part went on to the next write without waiting
    /// for the others). The second is recorded as the growth of that largest total at each write, so that the
    /// profile's sum over writes is the total itself.
    func addPartWalls(_ usage: [ThreadUsage], to stages: inout StageClock) {
        if partWallTotals.count != usage.count { partWallTotals = Array(repeating: 0, count: usage.count) }
        let before = partWallTotals.max() ?? 0
        for (part, used) in usage.enumerated() { partWallTotals[part] &+= used.wall }
        stages.add("rows + keyword index, slowest part", Double(usage.map(\.wall).max() ?? 0) * 1e-9)
        stages.add("rows + keyword index, slowest part, parts unsynchronised",
                   Double((partWallTotals.max() ?? 0) &- before) * 1e-9)
    }

    /// Each parallel part's wall seconds summed over this store's sharded inserts (`addPartWalls`).
    private var partWallTotals: [UInt64] = []

    /// The rows of `parts` into `units` and `unit_content` and, with one shard (`withKeywords`), every
    /// keyword row into the main database's table, in the open transaction. Returns the wall seconds of the
    /// row inserts and of the keyword inserts.
    func insertRows(_ parts: [PreparedRecords], withKeywords: Bool) throws -> (rows: Double, content: Double, keywords: Double) {
        let unit = try connection.statement("""
            INSERT INTO units(doc_id, file, name, qualified_name, line, end_line, language, unit_type,
                complexity, has_loops, has_branches, has_error_handling)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let content = try connection.statement("""
            INSERT INTO unit_content(doc_id, signature, docstring, parameters, return_type, extends,
                parent_class, calls, called_by, variables, imports, code)
            VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let keyword = try connection.statement("INSERT INTO keyword_index(rowid, body) VALUES(?, ?)")
        var rowSeconds = 0.0, keywordSeconds = 0.0, contentSeconds = 0.0
        var row = 0
        for prepared in parts {
            for (index, record) in prepared.records.enumerated() {
                let begin = StageClock.now()
                unit.bind(1, record.docID)
                unit.bind(2, record.file)
                unit.bind(3, record.name)
                unit.bind(4, record.qualifiedName)
                unit.bind(5, record.line)
                unit.bind(6, record.endLine)
                unit.bind(7, record.language)
                unit.bind(8, record.unitType)
                unit.bind(9, record.complexity)
                unit.bind(10, record.hasLoops)
                unit.bind(11, record.hasBranches)
                unit.bind(12, record.hasErrorHandling)
                try unit.run()
                let unitDone = StageClock.now()
                let arrays = prepared.arrays[index]
                content.bind(1, record.docID)
                content.bind(2, record.signature)
                content.bind(3, record.docstring)
                content.bind(4, bytes: arrays.parameters)
                content.bind(5, record.returnType)
                content.bind(6, record.extends)
                content.bind(7, record.parentClass)
                content.bind(8, bytes: arrays.calls)
                content.bind(9, bytes: arrays.calledBy)
                content.bind(10, bytes: arrays.variables)
                content.bind(11, bytes: arrays.imports)
                content.bind(12, record.code)
                try content.run()
                let middle = StageClock.now()
                if withKeywords {
                    keyword.bind(1, record.docID)
                    keyword.bind(2, bytes: prepared.keywordTexts[index])
                    try keyword.run()
                }
                let end = StageClock.now()
                rowSeconds += StageClock.seconds(begin, middle)
                contentSeconds += StageClock.seconds(unitDone, middle)
                keywordSeconds += StageClock.seconds(middle, end)
                faultHook?(.insertedRow, row)
                row += 1
            }
        }
        return (rowSeconds, contentSeconds, keywordSeconds)
    }

    /// The keyword rows of shard `shard` ≥ 1 of `parts` into its file, in its open transaction.
    func insertKeywordRows(_ parts: [PreparedRecords], shard: Int) throws {
        try shards.insertRows(parts, shard: shard)
    }

    /// One writer thread for the rows (main database) and one per keyword shard file (one SQLite writer per
    /// file), side by side on the store's own threads (`WriterThreads`). Records `rows` (the row thread's
    /// inserts) and `keyword index` (the rest of the parallel section's wall); returns each part's usage.
    private func insertRowsSharded(_ parts: [PreparedRecords], stages: inout StageClock) throws -> [ThreadUsage] {
        let begin = StageClock.now()
        let slots = ErrorSlots(count: shards.count + 1)
        let rowSeconds = LockedValue(0.0), contentSeconds = LockedValue(0.0)
        let usage = writerThreads.run { shard in
            do {
                if shard == 0 {
                    let times = try insertRows(parts, withKeywords: false)
                    rowSeconds.set(times.rows)
                    contentSeconds.set(times.content)
                } else {
                    try insertKeywordRows(parts, shard: shard)
                    if let early = earlyShardCommits, let generation = early.generations[shard] {
                        // This shard's file commits now, while the row writer goes on (`shardedWrite`).
                        let file = shards.files[shard - 1]
                        let commitBegin = StageClock.now()
                        try KeywordShards.setMeta(file, "generation", String(generation))
                        try file.execute("COMMIT")
                        early.noteCommitted(shard, seconds: StageClock.seconds(commitBegin, StageClock.now()))
                        faultHook?(.shardCommittedBesideRows, shard)
                    }
                }
            } catch {
                slots.set(shard, error)
            }
        }
        if let error = slots.first { throw error }
        let wall = StageClock.seconds(begin, StageClock.now())
        stages.add("rows", rowSeconds.value)
        stages.add("rows: unit_content", contentSeconds.value)
        stages.add("keyword index", max(0, wall - rowSeconds.value))
        if let early = earlyShardCommits {
            stages.add("keyword index: shard commits beside the rows (slowest)", early.slowestCommitSeconds)
        }
        return usage
    }

    /// The last `insert`'s own stages (`replace check`, `rows`, `keyword index`, `commit`: wall seconds)
    /// and the writer thread's CPU seconds of the same work (`rows + keyword index, thread cpu`,
    /// `commit, thread cpu`), for the indexing profile: wall well above CPU means the writer waited for a
    /// core or the disk, not for SQLite's own work.
    public internal(set) var insertStages: [(stage: String, seconds: Double)] = []

    /// Deletes the given documents (unknown ids are ignored) in one transaction. The keyword index
    /// drops exactly those rows; nothing is rebuilt or renumbered.
    public func delete(docIDs: [Int64]) throws {
        guard !docIDs.isEmpty else { return }
        try write {
            try shardedWrite { touched in
                try deleteUnlocked(docIDs, touched: &touched)
                faultHook?(.deletedBatch, docIDs.count)
            }
        }
    }

    /// Replaces `called_by` of the given documents (after a whole-project call-graph pass) and
    /// refreshes their keyword rows, in one transaction. Unknown ids are ignored.
    public func updateCalledBy(_ calledBy: [Int64: [String]]) throws {
        guard !calledBy.isEmpty else { return }
        try write {
            try shardedWrite { touched in
                let update = try connection.statement("UPDATE unit_content SET called_by = ? WHERE doc_id = ?")
                for (index, docID) in calledBy.keys.sorted().enumerated() {
                    guard var record = try recordsUnlocked([docID]).first, let newValue = calledBy[docID] else { continue }
                    if record.calledBy == newValue { continue }
                    let oldText = record.keywordText
                    record.calledBy = newValue
                    update.bind(1, StringArrayJSON.encode(newValue))
                    update.bind(2, docID)
                    try update.run()
                    try forgetKeywordRow(docID, oldText)
                    try insertKeywordRow(docID, record.keywordText)
                    touched.insert(shards.shard(of: docID))
                    faultHook?(.updatedCalledBy, index)
                }
            }
        }
    }

    /// Which of `docIDs` have stored rows.
    func storedDocIDs(_ docIDs: [Int64]) throws -> [Int64] {
        // A build appends rising ids: when all of them lie above the largest stored one (one seek of the
        // rowid B-tree, or an empty table), none is stored, without a probe per id (2.2 ms a write of
        // ~3,000 rows on the 113k-unit build, on the store lane's critical path).
        guard let lowest = docIDs.min() else { return [] }
        guard let highest = try connection.scalarInt("SELECT max(doc_id) FROM units"), lowest <= highest else { return [] }
        return try ids("SELECT doc_id FROM units WHERE doc_id IN (SELECT value FROM json_each(?))", Self.jsonArray(docIDs))
    }

    private func deleteUnlocked(_ docIDs: [Int64], touched: inout Set<Int>) throws {
        let json = Self.jsonArray(docIDs)
        // Only ids that exist have keyword rows to forget (a first build deletes nothing).
        let present = try storedDocIDs(docIDs)
        guard !present.isEmpty else { return }
        for record in try recordsUnlocked(present) {
            try forgetKeywordRow(record.docID, record.keywordText)
            touched.insert(shards.shard(of: record.docID))
        }
        for table in ["unit_content", "units"] {
            let statement = try connection.statement("DELETE FROM \(table) WHERE doc_id IN (SELECT value FROM json_each(?))")
            statement.bind(1, json)
            try statement.run()
        }
    }

    /// Removes one row from the contentless keyword index: FTS5's 'delete' command needs the exact
    /// text it indexed, which `keywordText` derives again from the unchanged record.
    private func forgetKeywordRow(_ docID: Int64, _ text: [UInt8]) throws {
        let shard = shards.shard(of: docID), table = KeywordShards.tableName(shard)
        let statement = try shards.connection(shard, main: connection)
            .statement("INSERT INTO \(table)(\(table), rowid, body) VALUES('delete', ?, ?)")
        statement.bind(1, docID)
        statement.bind(2, bytes: text)
        try statement.run()
    }

    private func insertKeywordRow(_ docID: Int64, _ text: [UInt8]) throws {
        let shard = shards.shard(of: docID)
        let statement = try shards.connection(shard, main: connection)
            .statement("INSERT INTO \(KeywordShards.tableName(shard))(rowid, body) VALUES(?, ?)")
        statement.bind(1, docID)
        statement.bind(2, bytes: text)
        try statement.run()
    }

    // MARK: - reads

    /// Documents of the given files (relative paths, exact match), ascending.
    public func docIDs(inFiles files: [String]) throws -> [Int64] {
        guard !files.isEmpty else { return [] }
        return try read {
            try ids("SELECT doc_id FROM units WHERE file IN (SELECT value FROM json_each(?)) ORDER BY doc_id",
                    StringArrayJSON.encode(files))
        }
    }

    /// The records of `docIDs`, in that order; ids not in the store are skipped.
    public func records(docIDs: [Int64]) throws -> [UnitRecord] {
        try read { try recordsUnlocked(docIDs) }
    }

    private func recordsUnlocked(_ docIDs: [Int64]) throws -> [UnitRecord] {
        let statement = try connection.statement("""
            SELECT u.file, u.name, u.qualified_name, u.line, u.end_line, u.language, u.unit_type, u.complexity,
                u.has_loops, u.has_branches, u.has_error_handling, c.signature, c.docstring, c.parameters,
                c.return_type, c.extends, c.parent_class, c.calls, c.called_by, c.variables, c.imports, c.code
            FROM units u JOIN unit_content c ON c.doc_id = u.doc_id WHERE u.doc_id = ?
            """)
        var records: [UnitRecord] = []
        records.reserveCapacity(docIDs.count)
        for docID in docIDs {
            statement.bind(1, docID)
            defer { statement.reset() }
            guard try statement.step() else { continue }
            func array(_ column: Int32, _ name: String) throws -> [String] {
                guard let items = statement.withBytes(column, StringArrayJSON.decode) else {
                    throw StoreError.corrupt(path: path.path, reason: "column \(name) of document \(docID) is not a JSON array")
                }
                return items
            }
            records.append(UnitRecord(
                docID: docID, file: statement.text(0), name: statement.text(1), qualifiedName: statement.text(2),
                line: statement.int(3), endLine: statement.int(4), language: statement.text(5),
                unitType: statement.text(6), signature: statement.text(11), docstring: statement.optionalText(12),
                parameters: try array(13, "parameters"), returnType: statement.optionalText(14),
                extends: statement.optionalText(15), parentClass: statement.optionalText(16),
                calls: try array(17, "calls"), calledBy: try array(18, "called_by"), complexity: statement.int(7),
                hasLoops: statement.int64(8) != 0, hasBranches: statement.int64(9) != 0,
                hasErrorHandling: statement.int64(10) != 0, variables: try array(19, "variables"),
                imports: try array(20, "imports"), code: statement.text(21)
            ))
        }
        return records
    }

    /// Where the documents `docIDs` are (file, name, kind, lines), in that order; ids not in the store are
    /// skipped, as `records` skips them. Reads no content column: what ranking a candidate pool needs.
    public func locations(docIDs: [Int64]) throws -> [UnitLocation] {
        try read {
            let statement = try connection.statement("""
                SELECT u.file, u.name, u.unit_type, u.line, u.end_line
                FROM units u JOIN unit_content c ON c.doc_id = u.doc_id WHERE u.doc_id = ?
                """)
            var locations: [UnitLocation] = []
            locations.reserveCapacity(docIDs.count)
            for docID in docIDs {
                statement.bind(1, docID)
                defer { statement.reset() }
                guard try statement.step() else { continue }
                locations.append(UnitLocation(docID: docID, file: statement.text(0), name: statement.text(1),
                                              unitType: statement.text(2), line: statement.int(3), endLine: statement.int(4)))
            }
            return locations
        }
    }

    /// BM25 keyword search (reference §2.5): the query is an OR of the quoted identifier tokens of
    /// `query` (`IdentifierTokenizer`), scores are FTS5's `bm25()` negated (higher is better),
    /// best first, at most `limit`, restricted to `subset` when given.
    public func bm25(query: String, limit: Int, within subset: Set<Int64>?) throws -> [(docID: Int64, score: Double)] {
        guard limit > 0, let match = Self.keywordQuery(query) else { return [] }
        if let subset, subset.isEmpty { return [] }
        return try bm25(match: match, limit: limit, within: subset)
    }

    /// `bm25(query:…)` for a raw FTS5 MATCH expression. With several shards each shard's rows are scored
    /// with the store-wide figures (`KeywordRanking`) and the per-shard lists merged by the same order
    /// (score, then rowid): the single table's ranking.
    func bm25(match: String, limit: Int, within subset: Set<Int64>?) throws -> [(docID: Int64, score: Double)] {
        try readKeywords {
            if shards.count == 1 {
                return try rankedRows(connection, table: "keyword_index", score: "bm25(keyword_index)",
                                      bind: { $0.bind(1, match) }, limit: limit, within: subset)
            }
            // Each shard's statistics, then each shard's ranked rows: every shard at once (a connection
            // of its own each), combined in shard order as a serial loop would.
            let shardFigures = try eachKeywordShardConcurrently { shard, shardConnection -> [Int64] in
                let table = KeywordShards.tableName(shard)
                let matched = try shardConnection.statement(
                    "SELECT \(KeywordRanking.statsFunction)(\(table)) FROM \(table) WHERE \(table) MATCH ?1 LIMIT 1")
                defer { matched.reset() }
                matched.bind(1, match)
                if try matched.step() { return matched.withBytes(0, KeywordRanking.decodeStats) }
                // No row of this shard matches: its rows and tokens still count.
                let scan = try shardConnection.statement("SELECT \(KeywordRanking.statsFunction)(\(table)) FROM \(table) LIMIT 1")
                defer { scan.reset() }
                return try scan.step() ? scan.withBytes(0, KeywordRanking.decodeStats) : []
            }
            var rows: Int64 = 0, tokens: Int64 = 0
            var hits: [Int64]?
            for (shard, figures) in zip(shards.indexes, shardFigures) {
                guard figures.isEmpty || figures.count >= 2 else {
                    throw StoreError.corrupt(path: path.path, reason: "keyword shard \(shard) reported no statistics")
                }
                if figures.isEmpty { continue }
                rows += figures[0]
                tokens += figures[1]
                let phraseHits = figures.dropFirst(2)
                if phraseHits.isEmpty { continue }
                if var sum = hits {
                    guard sum.count == phraseHits.count else {
                        throw StoreError.corrupt(path: path.path, reason: "keyword shards disagree on the query's phrases")
                    }
                    for (index, value) in phraseHits.enumerated() { sum[index] += value }
                    hits = sum
                } else {
                    hits = Array(phraseHits)
                }
            }
            guard let hits else { return [] }
            let hitBytes = hits.withUnsafeBytes { Array($0) }
            let totals = (rows: rows, tokens: tokens)
            var merged: [(docID: Int64, score: Double)] = try eachKeywordShardConcurrently { shard, shardConnection in
                let table = KeywordShards.tableName(shard)
                return try rankedRows(shardConnection, table: table,
                                      score: "\(KeywordRanking.scoreFunction)(\(table), ?2, ?3, ?4)", bind: {
                                          $0.bind(1, match)
                                          $0.bind(2, totals.rows)
                                          $0.bind(3, totals.tokens)
                                          $0.bind(4, blob: hitBytes)
                                      }, limit: limit, within: subset)
            }.flatMap { $0 }
            // The rows come negated (higher is better): best first, ties by rowid, as one table orders them.
            merged.sort { $0.score != $1.score ? $0.score > $1.score : $0.docID < $1.docID }
            return Array(merged.prefix(limit))
        }
    }

    /// `body` for every keyword shard at once, each on its shard file's own connection (inside the read
    /// transactions `readKeywords` opened); results in shard order, the lowest failing shard's error
    /// thrown. A query's keyword part ran shard after shard: on 64 cores (16 shards) ten one-shot hybrid
    /// searches took 2.07–2.29 s against 1.92–2.07 s with 4 shards (docs/PERFORMANCE.md, session 19).
    private func eachKeywordShardConcurrently<T>(_ body: (Int, SQLiteConnection) throws -> T) throws -> [T] {
        let indexes = shards.indexes
        let connections = indexes.map { shards.connection($0, main: connection) }
        return try ResultSlots.sideBySide(indexes.count) { try body(indexes[$0], connections[$0]) }
    }

    /// One table's matches ranked by `score` (an FTS5 rank expression: lower is better), ties by rowid,
    /// at most `limit`, restricted to `subset` when given; scores negated (higher is better).
    private func rankedRows(_ shardConnection: SQLiteConnection, table: String, score: String, bind: (Statement) -> Void,
                            limit: Int, within subset: Set<Int64>?) throws -> [(docID: Int64, score: Double)] {
        // Ties go by rowid, so a deeper list (a traced search's) starts with the shallower one.
        // Without a subset SQLite stops at `limit`; with one, rows outside it are skipped in
        // rank order (FTS5 scores every match to sort anyway, so this costs no extra scoring).
        let limitParameter = subset == nil ? " LIMIT ?9" : ""
        let statement = try shardConnection.statement(
            "SELECT rowid, \(score) FROM \(table) WHERE \(table) MATCH ?1 ORDER BY \(score), rowid\(limitParameter)")
        defer { statement.reset() }
        bind(statement)
        if subset == nil { statement.bind(9, limit) }
        var results: [(docID: Int64, score: Double)] = []
        while results.count < limit, try statement.step() {
            let docID = statement.int64(0)
            if let subset, !subset.contains(docID) { continue }
            results.append((docID, -statement.double(1)))
        }
        return results
    }

    /// The FTS5 MATCH expression for a keyword query (`KeywordQuery.match`).
    static func keywordQuery(_ query: String) -> String? {
        KeywordQuery.match(query)
    }

    /// Documents whose code matches `pattern` (ICU syntax) anywhere, with `^`/`$` matching at line
    /// boundaries, case-insensitive unless `caseSensitive`. Rows whose match runs past the time limit
    /// count as no match (see `regexTimeouts`).
    /// - Throws: `StoreError.invalidRegex` when the pattern does not compile.
    public func docIDs(whereCodeMatches pattern: String, caseSensitive: Bool) throws -> Set<Int64> {
        let full = (caseSensitive ? "(?m)" : "(?mi)") + pattern
        return try read {
            _ = try regex.compile(full)
            regex.resetQueryBudget()
            return Set(try ids("SELECT doc_id FROM unit_content WHERE regexp(?, code)", full))
        }
    }

    /// Documents whose code contains `literal` byte for byte (case-sensitive). The same set as
    /// `docIDs(whereCodeMatches:)` with the literal's escaped pattern — UTF-8 is self-synchronising, so a
    /// byte match is a match of whole characters — found with a byte search of each row's code, without a
    /// `String` or an ICU matcher per row (a search looks for its query verbatim, §2.2 step 9).
    ///
    /// Rows are first narrowed with the keyword index when the literal holds identifiers that any code
    /// containing it must hold whole (`KeywordQuery.wholeIdentifierTokens`): the index has every token of
    /// every unit's code, so only the units with all of them can contain the literal. Those few are then
    /// checked byte for byte; other literals (one word, or when most units qualify) scan every row.
    public func docIDs(whereCodeContains literal: String) throws -> Set<Int64> {
        try docIDs(whereCodeContains: literal, spreadFrom: Self.literalCandidatesPerReader)
    }

    /// Keyword candidates per extra reader from which a read-only store checks them side by side.
    static let literalCandidatesPerReader = 1024

    /// `docIDs(whereCodeContains:)`; a read-only store checks `spreadFrom` or more candidates per
    /// connection on several connections at once (tests lower it).
    func docIDs(whereCodeContains literal: String, spreadFrom: Int) throws -> Set<Int64> {
        let needle = Array(literal.utf8)
        let required = KeywordQuery.wholeIdentifierTokens(of: literal)
        return try readKeywords {
            if !required.isEmpty {
                let match = required.map { "\"\($0)\"" }.joined(separator: " AND ")
                // Every shard's matches at once; then read in doc id order, so the content pages are
                // visited front to back (each shard's list is in rowid order, the shards interleave).
                let candidates = try eachKeywordShardConcurrently { shard, shardConnection -> [Int64] in
                    let table = KeywordShards.tableName(shard)
                    let statement = try shardConnection.statement("SELECT rowid FROM \(table) WHERE \(table) MATCH ?")
                    defer { statement.reset() }
                    statement.bind(1, match)
                    var rows: [Int64] = []
                    while try statement.step() { rows.append(statement.int64(0)) }
                    return rows
                }.flatMap { $0 }.sorted()
                let units = Int(try connection.scalarInt("SELECT count(*) FROM units") ?? 0)
                if candidates.count * 2 <= units {
                    return try codeContains(needle, candidates: candidates, spreadFrom: spreadFrom)
                }
            }
            return try everyCodeContains(needle, spreadFrom: spreadFrom)
        }
    }

    /// The documents whose code holds `needle`, every row checked, inside the open read. A literal of two words
    /// (no identifier lies wholly inside it) or of common ones reads every row: ~100 MB of code on a 113k-unit
    /// index. A read-only store with many rows splits the doc id range into runs scanned side by side, as
    /// `codeContains` splits candidates (four times as many rows per connection: a row scan is cheaper per row
    /// than a lookup).
    private func everyCodeContains(_ needle: [UInt8], spreadFrom: Int) throws -> Set<Int64> {
        func scan(_ range: ClosedRange<Int64>?, on reader: SQLiteConnection) throws -> Set<Int64> {
            let statement = try reader.statement(range == nil ? "SELECT doc_id, code FROM unit_content"
                                                               : "SELECT doc_id, code FROM unit_content WHERE doc_id BETWEEN ? AND ?")
            defer { statement.reset() }
            if let range {
                statement.bind(1, range.lowerBound)
                statement.bind(2, range.upperBound)
            }
            var found = Set<Int64>()
            while try statement.step() {
                if statement.withBytes(1, { RegexPrefilter.contains(needle, in: $0) }) { found.insert(statement.int64(0)) }
            }
            return found
        }
        // The id range (two rowid lookups) sizes the split: ids are dense (consecutive per run, gaps only where
        // files left), and a count(*) would walk every leaf page of this table of code.
        guard isReadOnly, let low = try connection.scalarInt("SELECT min(doc_id) FROM unit_content"),
              let high = try connection.scalarInt("SELECT max(doc_id) FROM unit_content") else {
            return try scan(nil, on: connection)
        }
        let span = high - low + 1
        let workers = literalWorkers(Int(clamping: span), perWorker: spreadFrom > Int.max / 4 ? Int.max : spreadFrom * 4)
        guard workers > 1 else { return try scan(nil, on: connection) }
        let ranges = (0..<Int64(workers)).map { w in
            (low + span * w / Int64(workers))...(low + span * (w + 1) / Int64(workers) - 1)
        }
        return try onLiteralReaders(workers) { w, reader in try scan(ranges[w], on: reader) }
    }

    /// The `candidates` (in doc id order) whose code holds `needle`, inside the open read. A read-only store
    /// with many candidates splits them into runs checked side by side, each on a connection of its own
    /// (kept with the store): on a 113k-unit index a common two-word query had thousands, checked for
    /// 60–130 ms while the search's other store reads waited (docs/PERFORMANCE.md, session 19). The extra
    /// connections read the last committed state, as this one does unless a writer commits in between.
    private func codeContains(_ needle: [UInt8], candidates: [Int64], spreadFrom: Int) throws -> Set<Int64> {
        let workers = literalWorkers(candidates.count, perWorker: spreadFrom)
        func check(_ run: ArraySlice<Int64>, on reader: SQLiteConnection) throws -> Set<Int64> {
            let statement = try reader.statement("SELECT code FROM unit_content WHERE doc_id = ?")
            var found = Set<Int64>()
            for docID in run {
                statement.bind(1, docID)
                defer { statement.reset() }
                if try statement.step(), statement.withBytes(0, { RegexPrefilter.contains(needle, in: $0) }) { found.insert(docID) }
            }
            return found
        }
        guard workers > 1 else { return try check(candidates[...], on: connection) }
        let runs = (0..<workers).map { w in candidates[(candidates.count * w / workers)..<(candidates.count * (w + 1) / workers)] }
        return try onLiteralReaders(workers) { w, reader in try check(runs[w], on: reader) }
    }

    /// Connections a literal check of `items` rows or candidates spreads over: one per `perWorker`, up to
    /// `maximumLiteralReaders` and the cores, in a read-only store only (a writer's store keeps one connection).
    private func literalWorkers(_ items: Int, perWorker: Int) -> Int {
        guard isReadOnly else { return 1 }
        return max(1, min(Self.maximumLiteralReaders, ProcessInfo.processInfo.activeProcessorCount, items / max(1, perWorker)))
    }

    /// Runs `body(w, reader)` for `w` in `0..<workers` side by side, each on a connection of its own: the
    /// store's (already in its read) and extra read-only ones kept with the store, which open their own reads
    /// (they read the last committed state, as the store's does unless a writer commits in between). The union
    /// of the results.
    private func onLiteralReaders(_ workers: Int, _ body: (Int, SQLiteConnection) throws -> Set<Int64>) throws -> Set<Int64> {
        while literalReaders.count < workers - 1 {
            let reader = try SQLiteConnection(path: path.path, readOnly: true)
            try Self.applyPragmas(reader, readOnly: true)
            literalReaders.append(reader)
        }
        let readers = [connection] + literalReaders.prefix(workers - 1)
        return try ResultSlots.sideBySide(workers) { w in
            w == 0 ? try body(w, readers[w]) : try readers[w].readTransaction { try body(w, readers[w]) }
        }.reduce(into: Set<Int64>()) { $0.formUnion($1) }
    }

    /// Most connections a literal check spreads over (the store's own included).
    static let maximumLiteralReaders = 8

    /// Documents whose file path matches `fileMatchingRegex` (ICU syntax, case-sensitive; the
    /// product's `--include` / `--exclude` globs compile to these).
    public func docIDs(fileMatchingRegex pattern: String) throws -> Set<Int64> {
        try read {
            _ = try regex.compile(pattern)
            regex.resetQueryBudget()
            return Set(try ids("SELECT doc_id FROM units WHERE regexp(?, file)", pattern))
        }
    }

    /// Documents whose file path starts with `filePrefix` (byte-wise, no wildcards; the subdirectory
    /// filter: pass `"sub/dir/"`).
    public func docIDs(filePrefix: String) throws -> Set<Int64> {
        if filePrefix.isEmpty { return try allDocIDs() }
        return try read {
            // A range over the file index: every string with the prefix sorts in [prefix, prefix + U+10FFFF).
            Set(try ids("SELECT doc_id FROM units WHERE file >= ?1 AND file < ?1 || char(1114111)", filePrefix))
        }
    }

    /// Rows that hit the regex time limit during the last regex query (0 when all finished).
    public var regexTimeouts: Int {
        lock.withLock { regex.timeouts }
    }

    /// Every document id.
    public func allDocIDs() throws -> Set<Int64> {
        try read { try allDocIDsUnlocked() }
    }

    private func allDocIDsUnlocked() throws -> Set<Int64> {
        Set(try ids("SELECT doc_id FROM units", nil))
    }

    /// The largest document id in the store (nil when empty).
    public func maxDocID() throws -> Int64? {
        try read { try connection.scalarInt("SELECT max(doc_id) FROM units") }
    }

    /// Distinct file paths, sorted.
    public func allFiles() throws -> [String] {
        try read {
            let statement = try connection.statement("SELECT DISTINCT file FROM units ORDER BY file")
            defer { statement.reset() }
            var files: [String] = []
            while try statement.step() { files.append(statement.text(0)) }
            return files
        }
    }

    /// Number of documents.
    public var count: Int {
        get throws { try read { Int(try connection.scalarInt("SELECT count(*) FROM units") ?? 0) } }
    }

    /// `(docID, name, calls)` of every document, ascending by id — or, with `callingAnyOf`, only of the
    /// documents that call one of those names (filtered inside SQLite, so an update of one file reads the
    /// few callers it needs instead of decoding every document's calls).
    public func namesAndCalls(callingAnyOf names: Set<String>? = nil) throws -> [(docID: Int64, name: String, calls: [String])] {
        if let names, names.isEmpty { return [] }
        return try read {
            let filter = names == nil ? "" : """
                 WHERE EXISTS (SELECT 1 FROM json_each(c.calls) j WHERE j.value IN (SELECT value FROM json_each(?1)))
                """
            let statement = try connection.statement(
                "SELECT u.doc_id, u.name, c.calls FROM units u JOIN unit_content c ON c.doc_id = u.doc_id\(filter) ORDER BY u.doc_id")
            defer { statement.reset() }
            if let names { statement.bind(1, StringArrayJSON.encode(names.sorted())) }
            var rows: [(docID: Int64, name: String, calls: [String])] = []
            while try statement.step() {
                let docID = statement.int64(0)
                guard let calls = statement.withBytes(2, StringArrayJSON.decode) else {
                    throw StoreError.corrupt(path: path.path, reason: "column calls of document \(docID) is not a JSON array")
                }
                rows.append((docID, statement.text(1), calls))
            }
            return rows
        }
    }

    /// `(docID, name)` of the documents whose name is one of `names`, ascending by id.
    public func docIDs(namedAnyOf names: Set<String>) throws -> [(docID: Int64, name: String)] {
        guard !names.isEmpty else { return [] }
        return try read {
            let statement = try connection.statement(
                "SELECT doc_id, name FROM units WHERE name IN (SELECT value FROM json_each(?1)) ORDER BY doc_id")
            defer { statement.reset() }
            statement.bind(1, StringArrayJSON.encode(names.sorted()))
            var rows: [(docID: Int64, name: String)] = []
            while try statement.step() { rows.append((statement.int64(0), statement.text(1))) }
            return rows
        }
    }

    // MARK: - product key/value

    /// A value the product stored under `key` (nil when absent).
    public func value(forKey key: String) throws -> String? {
        try read {
            let statement = try connection.statement("SELECT value FROM kv WHERE key = ?")
            defer { statement.reset() }
            statement.bind(1, key)
            return try statement.step() ? statement.text(0) : nil
        }
    }

    /// Stores (or with nil removes) a product value, in its own transaction.
    public func setValue(_ value: String?, forKey key: String) throws {
        try write {
            let statement = try connection.statement(
                value == nil ? "DELETE FROM kv WHERE key = ?1" : "INSERT OR REPLACE INTO kv(key, value) VALUES(?1, ?2)")
            statement.bind(1, key)
            if let value { statement.bind(2, value) }
            try statement.run()
        }
    }

    // MARK: - integrity

    /// Full check: SQLite `quick_check` and, on a writable store, FTS5's own integrity check of the
    /// keyword index's structure. Slow on big stores: for repair commands, not searches.
    /// - Throws: `StoreError.corrupt` with what was found.
    public func verifyIntegrity() throws {
        try lock.withLock {
            settleLookahead()
            if let problems = integrityProblems() {
                throw StoreError.corrupt(path: path.path, reason: "quick_check: \(problems)")
            }
            for (index, file) in shards.files.enumerated() {
                if let problems = integrityProblems(file) {
                    throw StoreError.corrupt(path: file.path, reason: "keyword shard \(index + 1): quick_check: \(problems)")
                }
            }
            guard !isReadOnly else { return }
            for shard in shards.indexes {
                let table = KeywordShards.tableName(shard)
                do {
                    try shards.connection(shard, main: connection).execute("INSERT INTO \(table)(\(table)) VALUES('integrity-check')")
                } catch let error as StoreError {
                    throw StoreError.corrupt(path: path.path, reason: "keyword index shard \(shard): \(error)")
                }
            }
        }
    }

    /// `quick_check` findings, or nil when the database is sound.
    private func integrityProblems(_ database: SQLiteConnection? = nil) -> String? {
        do {
            let statement = try (database ?? connection).statement("PRAGMA quick_check(5)")
            defer { statement.reset() }
            var lines: [String] = []
            while try statement.step() { lines.append(statement.text(0)) }
            return lines == ["ok"] ? nil : lines.joined(separator: "; ")
        } catch let StoreError.corrupt(_, reason) {
            return reason
        } catch let StoreError.sqlite(_, _, message) {
            return message
        } catch {
            return "\(error)"
        }
    }

    // MARK: - plumbing

    func ids(_ sql: String, _ argument: String?) throws -> [Int64] {
        let statement = try connection.statement(sql)
        defer { statement.reset() }
        if let argument { statement.bind(1, argument) }
        var result: [Int64] = []
        while try statement.step() { result.append(statement.int64(0)) }
        return result
    }

    static func jsonArray(_ ids: [Int64]) -> String {
        "[" + ids.map(String.init).joined(separator: ",") + "]"
    }

    private func read<T>(_ body: () throws -> T) throws -> T {
        try lock.withLock { try withCorruptionCheck { try connection.readTransaction(body) } }
    }

    /// `read` for the keyword index: with several shards, one read transaction per shard file inside the
    /// main database's, retried while a shard's generation is not the one the main database records (a
    /// writer between its shard commits and its main commit); still out of step after a second, the
    /// store needs a writer's repair (`.needsMigration`), never a result from mismatched files.
    private func readKeywords<T>(_ body: () throws -> T) throws -> T {
        guard shards.count > 1 else { return try read(body) }
        return try lock.withLock {
            settleLookahead()
            return try withCorruptionCheck {
                for attempt in 0..<200 {
                    if attempt > 0 { usleep(5_000) }
                    let result: T? = try connection.readTransaction {
                        let expected = try shards.fileIndexes.map { try meta(KeywordShards.generationKey($0)) }
                        return try inShardReads(from: 1) {
                            for shard in shards.fileIndexes where try KeywordShards.meta(shards.files[shard - 1], "generation") != expected[shard - 1] {
                                return nil
                            }
                            return try body()
                        }
                    }
                    if let result { return result }
                }
                throw StoreError.needsMigration(path: path.path, reason: "its keyword shards are out of step with its rows (an interrupted write); a writer repairs them")
            }
        }
    }

    /// Runs `body` inside read transactions on shard files `from`…`count`.
    private func inShardReads<T>(from shard: Int, _ body: () throws -> T?) throws -> T? {
        guard shard <= shards.files.count else { return try body() }
        return try shards.files[shard - 1].readTransaction { try inShardReads(from: shard + 1, body) }
    }

    /// Runs a write under the store's lock; keyword rows inserted ahead for a write that this is not are
    /// dropped first (`KeywordLookahead`: nothing else may use the shard files' connections meanwhile).
    private func write<T>(_ body: () throws -> T) throws -> T {
        try writeKeepingLookahead {
            settleLookahead()
            return try body()
        }
    }

    /// `write` for the insert that may consume the pending lookahead (`insertWithLookahead`).
    func writeKeepingLookahead<T>(_ body: () throws -> T) throws -> T {
        guard !isReadOnly else { throw StoreError.readOnly(path: path.path) }
        return try lock.withLock { try withCorruptionCheck(body) }
    }

    /// Adds `quick_check`'s findings to a corruption error SQLite reported mid-query.
    private func withCorruptionCheck<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let StoreError.corrupt(file, reason) {
            let details = integrityProblems().map { "; quick_check: \($0)" } ?? ""
            throw StoreError.corrupt(path: file, reason: reason + details)
        }
    }
}
