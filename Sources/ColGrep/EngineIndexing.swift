import CodeUnits
import Foundation

extension Engine {
    /// `colgrep init`: build or update `root`'s index (waits up to 5 s for the lock).
    public func index(root: String, options: IndexOptions, progress: Progress) throws -> IndexSummary {
        let layout = IndexLayout(directory: paths.indexDirectory(projectPath: root, model: options.model))
        try ensureWritable(layout.directory.deletingLastPathComponent())
        let lock = try IndexLock.acquire(layout.lockFile)
        defer { lock.release() }
        InterruptFlag.shared.install()
        let model = ModelRuntime(modelID: options.model, acceleration: options.acceleration)
        if options.acceleration == .forceGPU { try Profiler.shared.measure("model: ensure loaded") { try model.ensureLoaded() } }
        let indexer = ProjectIndexer(root: root, layout: layout, options: options, config: config, model: model, progress: progress)
        return try Profiler.shared.measure("index: run") { try indexer.run() }
    }

    /// `init --dry-run` / `--list-files`: walk (and parse for the unit count) without writing.
    public func preview(root: String, options: IndexOptions, countUnits: Bool) throws -> IndexPreview {
        let layout = IndexLayout(directory: paths.indexDirectory(projectPath: root, model: options.model))
        let indexer = ProjectIndexer(root: root, layout: layout, options: options, config: config,
                                     model: ModelRuntime(modelID: options.model, acceleration: options.acceleration), progress: .silent)
        var preview = try indexer.preview()
        if countUnits { preview.units = try indexer.countUnits(preview.files) }
        return preview
    }

    func ensureWritable(_ dir: URL) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw ColGrepError.io("cannot create the colgrep data folder \(dir.path): \(error.localizedDescription). Set COLGREP_DATA_DIR to a writable folder.")
        }
        guard fm.isWritableFile(atPath: dir.path) else {
            throw ColGrepError.io("the colgrep data folder \(dir.path) is not writable. Set COLGREP_DATA_DIR to a writable folder.")
        }
    }

    /// The default command: per PATH locate (or build) the index, update it unless `--no-update`,
    /// search, then merge the PATHs' results by score.
    public func search(_ request: SearchRequest, acceleration: AccelerationMode, progress: Progress) throws -> SearchOutcome {
        let modelID = config.model(override: request.model)
        let model = ModelRuntime(modelID: modelID, acceleration: acceleration)
        searchResources.append(model)
        if acceleration == .forceGPU { try model.ensureLoaded() }
        // The model load and the query's encoding (most of a one-shot search) overlap the freshness
        // check and the index open below.
        if let text = ProjectSearcher.queryToEncode(for: request) { model.prefetchQuery(text) }
        let topK = request.topK(config: config)
        var all: [SearchHit] = []
        for path in request.paths {
            let (abs, isDir) = try PathResolver.canonical(path)
            let dir = isDir ? abs : (abs as NSString).deletingLastPathComponent
            var location = catalog.locate(path: dir, model: modelID)
            var file: String?
            if !isDir {
                let rel = OutputFormatter.relativePath(abs, from: location.projectRoot)
                file = rel
            }
            location = try update(location: location, request: request, model: model, modelID: modelID, progress: progress)
            let hits = try searchWithRepair(location: location, request: request, model: model, modelID: modelID,
                                            topK: topK, file: file, progress: progress)
            all += hits
            SearchStats.increment(location.layout)
        }
        all.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.absolutePath != b.absolutePath { return a.absolutePath < b.absolutePath }
            return a.unit.line < b.unit.line
        }
        if request.codeOnly { all = all.filter { $0.unit.unitType != .document } }
        return SearchOutcome(hits: Array(all.prefix(topK)))
    }

    /// Auto-update before searching: non-blocking lock; if another process holds it, search the
    /// existing index (or fail if there is none yet).
    private func update(location: IndexCatalog.Location, request: SearchRequest, model: ModelRuntime, modelID: String,
                        progress: Progress) throws -> IndexCatalog.Location {
        if request.noUpdate && location.exists { return location }
        try ensureWritable(location.layout.directory.deletingLastPathComponent())
        // A query server that watched the project since its last check skips the walk when nothing changed.
        let watch = location.exists && !request.keywordOnly
            ? ResidentCache.shared.freshnessWatch(root: location.projectRoot, layout: location.layout,
                                                  forceInclude: config.forceInclude ?? [], extraIgnore: config.extraIgnore ?? [])
            : nil
        let stamp = { FreshnessWatch.Stamp.current(layout: location.layout, root: location.projectRoot, environment: self.environment) }
        guard let lock = try IndexLock.tryAcquire(location.layout.lockFile) else {
            if location.exists && !FileManager.default.fileExists(atPath: location.layout.buildingMarker.path) {
                FileHandle.standardError.write(Data("Index is being updated by another process, searching existing index…\n".utf8))
                return location
            }
            throw ColGrepError.locked("colgrep index is currently being built, rely on grep for now.")
        }
        defer { lock.release() }
        if let watch {
            if Profiler.shared.measure("freshness: watch", { watch.isUnchanged(stamp: stamp()) }) { return location }
            watch.beginFullCheck()
        }
        InterruptFlag.shared.install()
        var options = IndexOptions(model: modelID, poolFactor: config.poolFactor(noPool: request.noPool, override: request.poolFactor))
        options.assumeYes = request.yes
        options.acceleration = model.acceleration
        options.keywordOnly = request.keywordOnly
        options.residualBits = config.residualBits
        let indexer = ProjectIndexer(root: location.projectRoot, layout: location.layout, options: options, config: config,
                                     model: model, progress: progress)
        let summary = try indexer.run()
        watch?.finishFullCheck(stamp: stamp())
        if !summary.upToDate { FileHandle.standardError.write(Data((summary.line + "\n").utf8)) }
        var updated = location
        updated.exists = true
        return updated
    }

    /// Searches; an index that fails to load is deleted (under the lock) and rebuilt once.
    private func searchWithRepair(location: IndexCatalog.Location, request: SearchRequest, model: ModelRuntime, modelID: String,
                                  topK: Int, file: String?, progress: Progress) throws -> [SearchHit] {
        do {
            let searcher = try ProjectSearcher(projectRoot: location.projectRoot, layout: location.layout, model: model,
                                               config: config, environment: environment)
            searchResources.append(searcher)
            return try searcher.search(request: request, topK: topK, subdirectory: location.subdirectory, file: file)
        } catch let error as ColGrepError {
            guard case .corrupt(let message) = error else { throw error }
            FileHandle.standardError.write(Data(ColGrepError.rebuildNotice(root: location.projectRoot, message: message).utf8))
            guard let lock = try IndexLock.tryAcquire(location.layout.lockFile) else {
                throw ColGrepError.locked("the index of \(location.projectRoot) is damaged and another process holds its lock; retry in a moment.")
            }
            for name in ["index", "metadata.db", "metadata.db-wal", "metadata.db-shm", "state.json", ".building"] {
                try? FileManager.default.removeItem(at: location.layout.directory.appendingPathComponent(name))
            }
            lock.release()
            var fresh = location
            fresh.exists = false
            var rebuildRequest = request
            rebuildRequest.noUpdate = false
            fresh = try update(location: fresh, request: rebuildRequest, model: model, modelID: modelID, progress: progress)
            let searcher = try ProjectSearcher(projectRoot: fresh.projectRoot, layout: fresh.layout, model: model,
                                               config: config, environment: environment)
            return try searcher.search(request: request, topK: topK, subdirectory: fresh.subdirectory, file: file)
        }
    }
}
