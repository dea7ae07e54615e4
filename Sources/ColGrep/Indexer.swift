import CodeUnits
import Foundation
import Plaid
import Store
import Tensor

/// Settings of one indexing run.
public struct IndexOptions: Sendable {
    public var model: String
    public var poolFactor: Int
    public var assumeYes = false
    public var acceleration: AccelerationMode = .auto
    /// Units per encode chunk (reference: 1024).
    public var chunkSize = 1024
    /// Units per checkpoint of whole files (reference: 4096; `COLGREP_CHECKPOINT_UNITS` overrides).
    public var checkpointUnits = 4096
    /// Keyword index only (hidden `init --fts-only`, used for FTS tuning): units are stored without
    /// embeddings and the state records that, so a later normal update rebuilds with embeddings.
    /// Ignored for an index that already has embeddings (it is updated normally, vectors included).
    public var keywordOnly = false
    /// Residual bits of a newly created vector index: 1 with `settings --binary`, 2, 4 or 8 with
    /// `settings --nbits`; nil lets the model's width choose (`PlaidConfig.defaultBits(dimension:)`).
    public var residualBits: Int?

    public init(model: String, poolFactor: Int) {
        self.model = model
        self.poolFactor = max(1, poolFactor)
        if let text = ProcessInfo.processInfo.environment["COLGREP_CHECKPOINT_UNITS"], let n = Int(text), n > 0 {
            checkpointUnits = n
            chunkSize = min(chunkSize, n)
        }
    }
}

/// What an indexing run did, with the reference's summary line.
public struct IndexSummary: Sendable, Equatable {
    public var root: String
    public var added = 0
    public var changed = 0
    public var deleted = 0
    public var unchanged = 0
    public var fileCount = 0
    public var unitsEncoded = 0
    public var upToDate = false

    public var line: String {
        upToDate
            ? "Index is up to date for \(root) (\(fileCount) files)"
            : "Indexed \(root) (added: \(added), changed: \(changed), deleted: \(deleted), unchanged: \(unchanged))"
    }
}

/// Files that would be indexed and how many units they hold (`init --dry-run` / `--list-files`).
public struct IndexPreview: Sendable {
    public var files: [String]
    public var units: Int
}

/// Builds and updates one project's index: walk → plan → parse (parallel) → call graph → embedding
/// text → dedup → encode in chunks → pool → PLAID + SQLite, checkpointed per batch of whole files.
/// The caller holds the index lock.
final class ProjectIndexer: @unchecked Sendable {
    let root: String
    let layout: IndexLayout
    let options: IndexOptions
    let config: ColGrepConfig
    let model: ModelRuntime
    let progress: Progress

    init(root: String, layout: IndexLayout, options: IndexOptions, config: ColGrepConfig, model: ModelRuntime, progress: Progress) {
        self.root = root
        self.layout = layout
        self.options = options
        self.config = config
        self.model = model
        self.progress = progress
    }

    // MARK: walking and parsing

    func walk() throws -> [WalkedFile] {
        let walker = FileWalker(root: URL(fileURLWithPath: root, isDirectory: true),
                                options: WalkOptions(forceInclude: config.forceInclude ?? [], extraIgnore: config.extraIgnore ?? []))
        do {
            return try walker.walk().files
        } catch {
            throw ColGrepError.io("cannot walk \(root): \(error)")
        }
    }

    func makeExtractor() throws -> UnitExtractor {
        guard let grammars = GrammarLocator.defaultDirectory() else {
            throw ColGrepError.notFound("tree-sitter grammars not found: run scripts/setup.sh (or set COLGREP_GRAMMARS_DIR)")
        }
        let depth = Int(ProcessInfo.processInfo.environment["COLGREP_MAX_RECURSION_DEPTH"] ?? "")
            ?? config.maxRecursionDepth ?? ColGrepConfig.defaultMaxRecursionDepth
        return try UnitExtractor(grammarDirectory: grammars, maxRecursionDepth: depth)
    }

    /// Parses files in parallel; a file that cannot be read or parsed yields no units.
    /// Parses `paths` on every core. With their `sizes` (bytes, from the walk) the largest files start
    /// first, so that no large file starts last and runs alone after the others are done.
    func parse(_ paths: [String], sizes: [String: Int] = [:]) throws -> [String: [CodeUnit]] {
        let extractor = try makeExtractor()
        let results = ParallelResults<[CodeUnit]>(count: paths.count, initial: [])
        let root = self.root
        let order = sizes.isEmpty ? Array(paths.indices) : paths.indices.sorted { (sizes[paths[$0]] ?? 0) > (sizes[paths[$1]] ?? 0) }
        DispatchQueue.concurrentPerform(iterations: paths.count) { n in
            let i = order[n]
            let url = URL(fileURLWithPath: root).appendingPathComponent(paths[i])
            guard let data = FileManager.default.contents(atPath: url.path) else { return }
            results.set(i, extractor.extract(relativePath: paths[i], data: data).units)
        }
        var out: [String: [CodeUnit]] = [:]
        for (i, p) in paths.enumerated() { out[p] = results.values[i] }
        return out
    }

    func preview() throws -> IndexPreview {
        let files = try walk().map(\.relativePath).sorted()
        return IndexPreview(files: files, units: 0)
    }

    func countUnits(_ files: [String]) throws -> Int {
        try parse(files).values.reduce(0) { $0 + $1.count }
    }

    // MARK: the run

    /// Runs the update; a damaged index (state, store or vectors that cannot be read) is
    /// reported, removed and rebuilt from scratch once.
    func run() throws -> IndexSummary {
        do {
            return try runOnce()
        } catch let error as ColGrepError {
            guard case .corrupt(let message) = error else { throw error }
            try declineRepairInServer(message)
            FileHandle.standardError.write(Data(ColGrepError.rebuildNotice(root: root, message: message).utf8))
            resetIndexFiles()
            return try runOnce()
        }
    }

    private func runOnce() throws -> IndexSummary {
        let fm = FileManager.default
        try fm.createDirectory(at: layout.directory, withIntermediateDirectories: true)
        // Written once per index (not on every search: a write with fsync costs more than the check).
        let project = ProjectInfo(projectPath: root, model: options.model)
        if (try? AtomicFile.readJSON(ProjectInfo.self, from: layout.projectFile)) != project {
            try AtomicFile.writeJSON(project, to: layout.projectFile)
        }

        var state = try loadStateOrReset()
        // Keyword-only runs only start or continue keyword-only indexes; a normal run on one rebuilds.
        let keywordOnly = options.keywordOnly && (state.files.isEmpty || state.embeddingsAbsent == true)
        if !keywordOnly && state.embeddingsAbsent == true {
            FileHandle.standardError.write(Data("The index of \(root) has no embeddings (built with --fts-only); building them.\n".utf8))
            resetIndexFiles()
            state = IndexState()
        }
        state.embeddingsAbsent = keywordOnly ? true : nil
        let walked = try Profiler.shared.measure("walk") { try walk() }
        let scanned = walked.map { ScannedFile(relativePath: $0.relativePath, mtime: $0.mtimeNanoseconds, size: $0.size) }
        let plan = UpdatePlan.compute(scanned: scanned, state: state) { path in
            guard let data = fm.contents(atPath: (self.root as NSString).appendingPathComponent(path)) else { return nil }
            return ContentHash.xxh3(data)
        }
        var summary = IndexSummary(root: root)
        summary.fileCount = scanned.count
        let building = fm.fileExists(atPath: layout.buildingMarker.path)

        if !plan.hasWork && !state.dirty && !building {
            if !plan.touched.isEmpty {
                for (path, stamp) in plan.touched { state.files[path] = stamp }
                try state.save(layout)
            }
            summary.upToDate = true
            summary.unchanged = plan.unchanged.count
            return summary
        }

        let incoming = (plan.added + plan.changed).sorted()
        let fileSizes = Dictionary(walked.map { ($0.relativePath, Int($0.size)) }, uniquingKeysWith: { a, _ in a })
        // A query server leaves a long update of a client at a terminal to the client (its progress bar and
        // prompt need that terminal): declined here, before anything is written.
        if let served = ServedRequest.current {
            if served.declinesUpdate(incomingBytes: incoming.reduce(0) { $0 + (fileSizes[$1] ?? 0) }) {
                ResidentCache.shared.noteDecline()
                throw ColGrepError.other("query server: a long update for a terminal runs in the client")
            }
        }
        // The work is known after the walk: load the model and choose CPU, GPU or both on a background
        // thread now, so the load and the GPUs' cold starts overlap opening the index, deletes and parsing.
        if !keywordOnly && !incoming.isEmpty {
            model.prepareIndexing(fileBytes: incoming.map { fileSizes[$0] ?? 0 })
        }
        if state.files.isEmpty && !fm.fileExists(atPath: layout.vectorDirectory.path) {
            try Data().write(to: layout.buildingMarker)
        }
        let store = try openStore()
        let plaid = try openPlaid()
        if state.dirty && !keywordOnly { try reconcile(store: store, plaid: plaid) }
        state.dirty = true
        for (path, stamp) in plan.touched { state.files[path] = stamp }
        try state.save(layout)

        // Files leaving the index: deleted ones and changed ones (re-added below).
        let removed = plan.deleted + plan.changed
        if !removed.isEmpty {
            let ids = try store.docIDs(inFiles: removed)
            try plaid?.delete(ids: Set(ids))
            try store.delete(docIDs: ids)
            for path in plan.deleted { state.files[path] = nil }
            for path in plan.changed { state.files[path] = nil }
            state.unitCount = max(0, state.unitCount - ids.count)
        }

        // Files entering the index (added + changed); leftovers of an interrupted batch are removed first.
        if !incoming.isEmpty {
            let leftovers = try store.docIDs(inFiles: incoming)
            if !leftovers.isEmpty {
                try plaid?.delete(ids: Set(leftovers))
                try store.delete(docIDs: leftovers)
            }
        }
        defer { if !keywordOnly { model.finishIndexing() } }
        var unitsByFile = try Profiler.shared.measure("parse") { try parse(incoming, sizes: fileSizes) }
        let total = unitsByFile.values.reduce(0) { $0 + $1.count }
        if total > 30_000 && !options.assumeYes && isatty(STDIN_FILENO) == 1 {
            FileHandle.standardError.write(Data("About to index \(total) code units in \(root). Continue? [y/N] ".utf8))
            let answer = readLine()?.lowercased() ?? ""
            guard answer == "y" || answer == "yes" else { throw ColGrepError.other("Indexing cancelled.") }
        }
        try Profiler.shared.measure("call graph") { try resolveCallGraph(&unitsByFile, store: store) }

        let unitsBefore = state.unitCount
        let hashes = plan.hashes
        let stamps = Dictionary(uniqueKeysWithValues: walked.map { ($0.relativePath, $0) })
        @Sendable func stamp(_ path: String) -> FileStamp? {
            guard let w = stamps[path], let h = hashes[path] else { return nil }
            return FileStamp(contentHash: h, mtime: w.mtimeNanoseconds, size: w.size)
        }

        progress.begin(files: incoming.count, units: total)
        let pipeline = EncodePipeline(indexer: self, store: store, plaid: plaid, keywordOnly: keywordOnly)
        let batches = checkpointBatches(incoming, unitsByFile: unitsByFile)
        // Ids are consecutive in batch order; batch b's start at firstIDs[b].
        var starts: [Int64] = [state.nextDocID]
        for batch in batches {
            starts.append(starts[starts.count - 1] + Int64(batch.reduce(0) { $0 + (unitsByFile[$1]?.count ?? 0) }))
        }
        let firstIDs = starts
        let source = LockedValue(unitsByFile)
        unitsByFile = [:]
        let shared = LockedValue(state)
        let layout = self.layout, progress = self.progress
        try Profiler.shared.measure("pipeline: run") { try pipeline.run(batchCount: batches.count, plannedUnits: total, batch: { b in
            // Units leave the source as their batch starts, so what is held shrinks as the run goes.
            let units = source.withLock { all in
                batches[b].flatMap { path in
                    defer { all[path] = nil }
                    return all[path] ?? []
                }
            }
            return EncodePipeline.Batch(units: units, ids: (0..<units.count).map { firstIDs[b] + Int64($0) })
        }, checkpoint: { b in
            let files = batches[b]
            let unitCount = Int(firstIDs[b + 1] - firstIDs[b])
            shared.withLock { state in
                for path in files {
                    if let s = stamp(path) { state.files[path] = s }
                }
                state.nextDocID = firstIDs[b + 1]
                state.unitCount += unitCount
            }
            progress.advance(files: files.count)
        }, persist: {
            try shared.withLock { try $0.save(layout) }
        }, shouldStop: { InterruptFlag.shared.isRaised }) }
        state = shared.withLock { $0 }
        // A run that streamed batches has had this done by its pipeline, right behind the store's last write.
        if batches.isEmpty { _ = Profiler.shared.measure("store: last checkpoint") { store.finishCheckpoints() } }
        summary.unitsEncoded = state.unitCount - unitsBefore
        progress.finish()
        if InterruptFlag.shared.isRaised { throw ColGrepError.interrupted }

        state.dirty = false
        try state.save(layout)
        try? fm.removeItem(at: layout.buildingMarker)
        summary.added = plan.added.count
        summary.changed = plan.changed.count
        summary.deleted = plan.deleted.count
        summary.unchanged = plan.unchanged.count
        return summary
    }

    /// Loads `state.json`; a corrupt state, an older format or another encoder model means a rebuild
    /// from scratch (the folder's index files are removed; `project.json` stays).
    private func loadStateOrReset() throws -> IndexState {
        var state: IndexState?
        var reason: String?
        do {
            state = try IndexState.load(layout)
        } catch {
            reason = "the index state is corrupt"
        }
        if let s = state, s.indexFormatVersion != IndexState.formatVersion {
            reason = "the index was written by another colgrep version (format \(s.indexFormatVersion))"
            state = nil
        }
        if state == nil && (reason != nil || FileManager.default.fileExists(atPath: layout.vectorDirectory.path)) {
            try declineRepairInServer(reason ?? "the index state is missing")
            FileHandle.standardError.write(Data("Rebuilding the index of \(root): \(reason ?? "the index state is missing").\n".utf8))
            resetIndexFiles()
        }
        return state ?? IndexState()
    }

    /// A query server never repairs an index (nothing it kept may have caused the damage, and a rebuild is
    /// the client's to show): it declines the request, and the client's in-process search repairs.
    private func declineRepairInServer(_ reason: String) throws {
        guard ResidentCache.shared.isEnabled else { return }
        ResidentCache.shared.noteOpenFailure()
        throw ColGrepError.other("query server: the index of \(root) needs a rebuild (\(reason))")
    }

    func resetIndexFiles() {
        let fm = FileManager.default
        for url in [layout.vectorDirectory, layout.metadataFile, layout.stateFile,
                    URL(fileURLWithPath: layout.metadataFile.path + "-wal"), URL(fileURLWithPath: layout.metadataFile.path + "-shm")] {
            try? fm.removeItem(at: url)
        }
    }

    func openStore() throws -> MetadataStore {
        do {
            return try MetadataStore(path: layout.metadataFile, readOnly: false)
        } catch {
            throw ColGrepError.corrupt("cannot open \(layout.metadataFile.path): \(error)")
        }
    }

    func openPlaid() throws -> PlaidIndex? {
        guard FileManager.default.fileExists(atPath: layout.vectorDirectory.path) else { return nil }
        do {
            return try PlaidIndex.open(at: layout.vectorDirectory)
        } catch {
            throw ColGrepError.corrupt("cannot open \(layout.vectorDirectory.path): \(error)")
        }
    }

    /// After an interrupted update: drop ids present on one side only (ids are stable, so the two
    /// sides agree exactly on a consistent index).
    private func reconcile(store: MetadataStore, plaid: PlaidIndex?) throws {
        let storeIDs = try store.allDocIDs()
        let vectorIDs = Set(plaid?.documentIDs ?? [])
        let onlyVectors = vectorIDs.subtracting(storeIDs)
        let onlyStore = storeIDs.subtracting(vectorIDs)
        if !onlyVectors.isEmpty { try plaid?.delete(ids: onlyVectors) }
        if !onlyStore.isEmpty { try store.delete(docIDs: Array(onlyStore)) }
    }

    /// Units of the first, strided batch: what a new index's codec trains on at most (about K × 32
    /// pooled vectors at the largest K, for ~100 pooled vectors a unit), in whole chunks.
    var trainingBatchUnits: Int { 3 * max(1, options.chunkSize) }

    /// Batches of whole files of at least `checkpointUnits` units. The first batch is a strided
    /// sample of files across the project (`trainingBatchUnits` units) so that the codec trains on
    /// representative vectors.
    func checkpointBatches(_ files: [String], unitsByFile: [String: [CodeUnit]]) -> [[String]] {
        guard !files.isEmpty else { return [] }
        let total = files.reduce(0) { $0 + (unitsByFile[$1]?.count ?? 0) }
        var remaining = files
        var batches: [[String]] = []
        if total > trainingBatchUnits {
            let wanted = max(1, Int((Double(files.count) * Double(trainingBatchUnits) / Double(total)).rounded(.up)))
            let stride = max(1, files.count / wanted)
            var first: [String] = []
            var picked = Set<Int>()
            var i = 0
            while i < files.count {
                first.append(files[i])
                picked.insert(i)
                i += stride
            }
            batches.append(first)
            remaining = files.enumerated().filter { !picked.contains($0.offset) }.map(\.element)
        }
        var current: [String] = []
        var count = 0
        for f in remaining {
            current.append(f)
            count += unitsByFile[f]?.count ?? 0
            if count >= options.checkpointUnits {
                batches.append(current)
                current = []
                count = 0
            }
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// For every name the units call, the names of the units that call it. Built on every core in two
    /// passes: each worker deals the (callee, caller) pairs of its share of the files into one bucket per
    /// partition of the callee's hash, then each partition gathers its buckets into its own dictionary, so
    /// no two workers share a key and the dictionaries merge without conflicts. The stream of a cold index
    /// cannot start before this step ends. With one pass, where every worker scanned and hashed every call
    /// of the project to keep its own partition, the step took 72–105 ms on the 64-core GPU host (session
    /// 18) against 23–25 ms on 2 cores: the scans grew with the worker count.
    /// `maxWorkers` (the usable cores) bounds the shares and partitions.
    static func callersByCallee(_ lists: [[CodeUnit]], callsPerWorker: Int = 20_000, maxWorkers: Int = UsableCores.count) -> [String: Set<String>] {
        let callCounts = lists.map { units in units.reduce(0) { $0 + $1.calls.count } }
        let calls = callCounts.reduce(0, +)
        let workers = max(1, min(maxWorkers, calls / max(1, callsPerWorker)))
        guard workers > 1 else {
            var callers: [String: Set<String>] = [:]
            for units in lists {
                for u in units {
                    for callee in u.calls { callers[callee, default: []].insert(u.name) }
                }
            }
            return callers
        }
        // Contiguous shares of the files, of about equal call counts.
        var shares: [Range<Int>] = []
        var begin = 0, taken = 0
        for (i, count) in callCounts.enumerated() {
            taken += count
            if taken * workers >= calls * (shares.count + 1) || i == lists.count - 1 {
                shares.append(begin..<(i + 1))
                begin = i + 1
            }
        }
        let dealt = shares.parallelMap(minimumCount: 2) { share -> [[(callee: String, caller: String)]] in
            var buckets = [[(callee: String, caller: String)]](repeating: [], count: workers)
            for units in lists[share] {
                for u in units {
                    for callee in u.calls { buckets[(callee.hashValue & Int.max) % workers].append((callee, u.name)) }
                }
            }
            return buckets
        }
        let partitions = Array(0..<workers).parallelMap(minimumCount: 2) { partition -> [String: Set<String>] in
            var callers: [String: Set<String>] = [:]
            for buckets in dealt {
                for pair in buckets[partition] { callers[pair.callee, default: []].insert(pair.caller) }
            }
            return callers
        }
        guard var merged = partitions.first else { return [:] }
        merged.reserveCapacity(partitions.reduce(0) { $0 + $1.count })
        for partition in partitions.dropFirst() { merged.merge(partition) { first, _ in first } }
        return merged
    }

    /// `called_by` over the whole project (as `CallGraph.resolve` defines it, but incremental): new
    /// units see callers from unchanged files (names and calls come from the store), and unchanged
    /// units called from new code get updated rows.
    func resolveCallGraph(_ unitsByFile: inout [String: [CodeUnit]], store: MetadataStore) throws {
        let lists = Array(unitsByFile.values)
        var callersOf = Profiler.shared.measure("call graph: callers") { Self.callersByCallee(lists) }
        var newNames: Set<String> = []
        for units in lists {
            for u in units { newNames.insert(u.name) }
        }
        // A first build's store holds no unit yet: nothing stored calls the new names or is called by the new
        // code, so both lookups below and the name sets they take are skipped (with the large name sets of a
        // big project they took 30–50 ms each on the 64-core GPU host, docs/PERFORMANCE.md, session 20).
        let storeIsEmpty = try store.count == 0
        let newCalls = storeIsEmpty ? [] : Set(callersOf.keys)
        try Profiler.shared.measure("call graph: stored callers") {
            guard !storeIsEmpty else { return }
            // Only the callers of new units' names and of the names new code calls are read: an update of one
            // file must not build the caller sets of the whole project.
            let wanted = newNames.union(newCalls)
            for row in try store.namesAndCalls(callingAnyOf: wanted) {
                for callee in row.calls where wanted.contains(callee) { callersOf[callee, default: []].insert(row.name) }
            }
        }
        // Each name's callers sorted once, then each file's units, both on every core. Sorting per unit
        // sorted a shared name's set again for every unit of that name (`__init__`, `forward`: thousands of
        // units, each called by thousands) and was most of this step's time.
        let files = unitsByFile.map { (path: $0.key, units: $0.value) }
        let callers = callersOf
        let resolved = Profiler.shared.measure("call graph: called_by") {
            let called = Array(newNames.filter { callers[$0] != nil })
            let sortedLists = called.parallelMap(minimumCount: 64) { (callers[$0] ?? []).sorted() }
            let calledBy = Dictionary(uniqueKeysWithValues: zip(called, sortedLists))
            return files.parallelMap(minimumCount: 64) { file in
                file.units.map { u in
                    var u = u
                    u.calledBy = u.unitType == .rawcode ? [] : calledBy[u.name] ?? []
                    return u
                }
            }
        }
        for (file, units) in zip(files, resolved) { unitsByFile[file.path] = units }
        try Profiler.shared.measure("call graph: stored updates") {
            guard !storeIsEmpty else { return }
            var updates: [Int64: [String]] = [:]
            for row in try store.docIDs(namedAnyOf: newCalls) {
                updates[row.docID] = (callersOf[row.name] ?? []).sorted()
            }
            if !updates.isEmpty { try store.updateCalledBy(updates) }
        }
    }
}

/// Slots filled by concurrent workers (each index written once, read after the workers finish).
final class ParallelResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [T]

    init(count: Int, initial: T) {
        values = Array(repeating: initial, count: count)
    }

    func set(_ i: Int, _ value: T) {
        lock.lock()
        values[i] = value
        lock.unlock()
    }
}
