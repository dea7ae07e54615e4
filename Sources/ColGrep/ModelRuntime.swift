import Encoder
import Foundation
import Tensor

/// Lazily loaded encoder: nothing is read from disk until a text needs encoding, so a search with
/// nothing to update and no semantic part (regex-only, keyword-only) never loads the model.
/// Documents are routed over the CPU and GPUs by `RoutedEncoder` (Acceleration/); queries stay on
/// the CPU unless `--force-gpu`.
final class ModelRuntime {
    let modelID: String
    let acceleration: AccelerationMode
    /// The document encoder (and, under `--force-gpu`, the query encoder).
    private var encoder: RoutedEncoder?
    /// The CPU query encoder (fp32, no GPU inventory).
    private var queryEncoder: RoutedEncoder?
    private(set) var resolvedDirectory: URL?
    /// Work started on a background thread (`prefetchQuery`, `prepareIndexing`); every other use of
    /// the runtime waits for it first, so the runtime is never used from two threads at once.
    private var background: BackgroundWork?
    /// A prefetched query vector, kept when other work joined the prefetch first (an update that
    /// encodes documents before the search), so the query is not encoded twice.
    private var prefetchedQuery: (text: String, vector: Result<HostMatrix, Error>)?
    /// The "🤖 Model: …" line of a load, printed by the caller's thread when it first uses the runtime
    /// after the load (`showNotice`), never by the background thread: a search that fails before it needs
    /// the model (a missing path) prints no notice whether the load had finished or not, so an in-process
    /// search and a query server's (whose load is already done) print the same bytes.
    private var pendingNotice: String?

    init(modelID: String, acceleration: AccelerationMode) {
        self.modelID = modelID
        self.acceleration = acceleration
    }

    /// Starts loading the query encoder and encoding `text` on a background thread, so that the model
    /// load and the query's forward pass overlap the freshness check, the index open and the keyword
    /// search (a one-shot search's two largest costs run side by side). `encodeQuery(text)` then returns
    /// the result — or throws its error: a failure surfaces only if the query vector is really needed.
    func prefetchQuery(_ text: String) {
        guard background == nil, encoder == nil, queryEncoder == nil, !text.isEmpty, acceleration != .forceGPU else { return }
        let work = BackgroundWork(query: text)
        start(work) { runtime in
            work.query = Result { try runtime.encodeQueryNow(text) }
        }
    }

    /// Starts loading the document encoder and planning the run (`planIndexing`) on a background
    /// thread, so that the model load overlaps parsing and the index's deletes. Its error, if any, is
    /// thrown by the next call that needs the encoder.
    func prepareIndexing(fileBytes: [Int]) {
        join()
        guard background == nil else { return }
        let work = BackgroundWork(query: nil)
        start(work) { runtime in
            do {
                try runtime.planIndexingNow(fileBytes: fileBytes)
            } catch {
                work.failure = error
            }
        }
    }

    private func start(_ work: BackgroundWork, _ body: @escaping @Sendable (ModelRuntime) -> Void) {
        background = work
        let runtime = UncheckedRuntime(runtime: self)
        DispatchQueue.global(qos: .userInitiated).async(group: work.group) { body(runtime.runtime) }
    }

    /// Waits for background work; returns it (once) so `encodeQuery` can use its result.
    @discardableResult
    private func join() -> BackgroundWork? {
        guard let work = background else { return nil }
        Profiler.shared.measure("model: wait for background load") { work.group.wait() }
        background = nil
        if let text = work.queryText, let vector = work.query { prefetchedQuery = (text, vector) }
        showNotice()
        return work
    }

    /// Prints the pending load notice (on the thread that owns the runtime).
    private func showNotice() {
        guard let notice = pendingNotice else { return }
        pendingNotice = nil
        FileHandle.standardError.write(Data(notice.utf8))
    }

    /// `join`, rethrowing the failure of a background document load.
    private func joinThrowing() throws {
        if let failure = join()?.failure { throw failure }
    }

    /// The folder the model id resolves to (local folder, Hub cache, else the bundled fallback).
    func directory() throws -> URL {
        if let resolvedDirectory { return resolvedDirectory }
        let url = try ModelLocator.resolve(modelID, fallback: Self.fallbackModelDirectory())
        resolvedDirectory = url
        return url
    }

    /// Loads the model if needed (used up front by `--force-gpu` to fail early: without a usable
    /// GPU that is an error naming the cause).
    func ensureLoaded() throws {
        try joinThrowing()
        if acceleration == .forceGPU {
            let gpus = GPUProbe.measured { GPUInventory.current() }
            if gpus.count == 0 { throw ColGrepError.gpuUnavailable(gpus.unavailableReason ?? "no CUDA device") }
        }
        _ = try load()
    }

    /// Plans document encoding for a run over files of these sizes (known after the walk): CPU, GPU
    /// or both, and starts the chosen GPUs' cold starts so they overlap parsing. About 4 bytes of
    /// code per token, a unit per 600 bytes: only the order of magnitude matters to the planner.
    func planIndexing(fileBytes: [Int]) throws {
        try joinThrowing()
        defer { showNotice() }
        try planIndexingNow(fileBytes: fileBytes)
    }

    private func planIndexingNow(fileBytes: [Int]) throws {
        let bytes = fileBytes.reduce(0, +)
        guard bytes > 0 else { return }
        let before = GPUCountPlanner.secondsBeforeEncoding(bytes: bytes, cores: UsableCores.count)
        try loadNow(documents: true).plan(units: max(fileBytes.count, bytes / 600), estimatedTokens: bytes / 4, secondsBeforeEncoding: before)
    }

    /// The backend for k-means and codec assignment (nil: the CPU).
    func computeBackend() throws -> (any Backend)? {
        try joinThrowing()
        return try encoder?.computeBackend()
    }

    /// Stops the encode devices and records the routing outcome in the profile.
    func finishIndexing() {
        Profiler.shared.measure("model: finish indexing") {
            join()
            encoder?.finish()
        }
    }

    /// Token ids of documents (for a pipeline that tokenizes the next chunk while this one encodes).
    func tokenizeDocuments(_ texts: [String]) throws -> [[Int32]] {
        try load().tokenizeDocuments(texts)
    }

    /// Encodes documents tokenized by `tokenizeDocuments`; once `shouldStop` says so, throws
    /// `ColGrepError.interrupted` instead of starting further batches.
    func encodeDocuments(prepared ids: [[Int32]], shouldStop: (() -> Bool)? = nil) throws -> [HostMatrix] {
        let encoder = try load()
        return try reportingEncoderErrors("encoding failed") { try encoder.encodeDocuments(prepared: ids, shouldStop: shouldStop) }
    }

    func encodeQuery(_ text: String) throws -> HostMatrix {
        join()
        if let done = prefetchedQuery, done.text == text { return try done.vector.get() }
        defer { showNotice() }
        return try encodeQueryNow(text)
    }

    private func encodeQueryNow(_ text: String) throws -> HostMatrix {
        let encoder = try loadNow(documents: false)
        return try reportingEncoderErrors("query encoding failed") { try encoder.encodeQuery(text) }
    }

    /// Product errors pass through; anything else from the encoder becomes one naming `what` failed.
    private func reportingEncoderErrors<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ColGrepError {
            throw error
        } catch {
            throw ColGrepError.other("\(what): \(error)")
        }
    }

    /// The encoder, loaded on first use. `documents: false` (a query) skips the GPU inventory: a
    /// process that starts cold encodes its query on the CPU anyway, and initialising a CUDA driver
    /// costs more than the whole query. If documents come later, the encoder is loaded again with it.
    func load(documents: Bool = true) throws -> RoutedEncoder {
        try joinThrowing()
        defer { showNotice() }
        return try loadNow(documents: documents)
    }

    private func loadNow(documents: Bool) throws -> RoutedEncoder {
        // Queries have an encoder of their own (unless `--force-gpu`, whose queries go where its documents go).
        let forQuery = !documents && acceleration != .forceGPU
        if forQuery, let queryEncoder { return queryEncoder }
        if !forQuery, let encoder { return encoder }
        let dir = try directory()
        // A query is a few dozen tokens: two threads encode it as fast as sixteen, and sixteen
        // OpenBLAS threads spinning after each GEMM burned ~2 s of CPU per one-shot search.
        let cores = max(1, UsableCores.count)
        let threads = documents ? cores : min(2, cores)
        let loaded: RoutedEncoder
        do {
            if forQuery {
                // Always fp32: a weight's int8 choice, once made by document encoding in this process, would
                // otherwise apply to every later query (`CPUBackend.int8Weight`), so a query's vector, and the
                // ranking, would depend on whether this process (a query server) had indexed before. Its products
                // run in the dot kernel (`CPUProductKernel.dot`): no weight packing per call, and a query vector that
                // does not depend on the thread count. A query server keeps this encoder between requests.
                loaded = try ResidentCache.shared.queryEncoder(directory: dir, mode: acceleration, threads: threads) {
                    try RoutedEncoder(modelDirectory: dir, mode: self.acceleration, hostThreads: threads,
                                      gpus: GPUInventory(ordinals: [], description: nil, unavailableReason: "not needed for a query"),
                                      preloaded: ColBERTEncoder(modelDirectory: dir, backend: CPUBackend(threads: threads, precision: .fp32, products: .dot)))
                }
            } else {
                // A query server keeps the CPU model of document encoders (the routed encoder itself is per
                // run: it is finished at the end of each indexing run).
                let preloaded = try ResidentCache.shared.documentModel(directory: dir, threads: threads) {
                    try ColBERTEncoder(modelDirectory: dir, backend: CPUBackend(threads: threads))
                }
                loaded = try RoutedEncoder(modelDirectory: dir, mode: acceleration, hostThreads: threads, preloaded: preloaded)
            }
        } catch {
            throw ColGrepError.other("cannot load the model at \(dir.path): \(error). Run scripts/setup.sh to install the fallback model, or pass --model <folder>.")
        }
        if encoder == nil && queryEncoder == nil {
            pendingNotice = "🤖 Model: \(modelID) → \(dir.lastPathComponent) (CPU, \(threads) threads)\n"
        }
        if forQuery { queryEncoder = loaded } else { encoder = loaded }
        return loaded
    }

    /// The runtime handed to the background thread: safe because the owner waits for that thread
    /// before touching the runtime again (`join`).
    private struct UncheckedRuntime: @unchecked Sendable {
        let runtime: ModelRuntime
    }

    /// `$COLGREP_FALLBACK_MODEL`, else `.deps/models/all-MiniLM-L6-v2` found walking up from the
    /// executable (a build tree) or the current folder.
    static func fallbackModelDirectory(env: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let path = env["COLGREP_FALLBACK_MODEL"], !path.isEmpty { return URL(fileURLWithPath: path, isDirectory: true) }
        let relative = ".deps/models/all-MiniLM-L6-v2"
        var starts: [URL] = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        starts.insert(exe.deletingLastPathComponent(), at: 0)
        if let bundle = Bundle.main.executableURL { starts.append(bundle.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for start in starts {
            var dir = start
            for _ in 0..<8 {
                let candidate = dir.appendingPathComponent(relative, isDirectory: true)
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("config.json").path) { return candidate }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        return nil
    }
}

/// One piece of background work: a query's encoding (with its text) or a document load and plan.
private final class BackgroundWork: @unchecked Sendable {
    let queryText: String?
    let group = DispatchGroup()
    /// Written by the background thread before `group` completes; read only after `group.wait()`.
    var query: Result<HostMatrix, Error>?
    var failure: Error?

    init(query: String?) {
        queryText = query
    }
}
