import Foundation
import Plaid

/// The product facade the CLI talks to: index management, status, stats, settings-related actions.
/// Indexing and search live in `Indexer` and `Searcher`; this type wires them to data paths and config.
public final class Engine {
    public let paths: DataPaths
    public private(set) var config: ColGrepConfig
    public let environment: [String: String]
    /// The model and index handles of this engine's searches, kept alive with it: a one-shot CLI ends
    /// with `exit` right after printing, so the model's weights, the tokenizer tables, the mapped index
    /// and the store connection are never torn down piece by piece (that teardown was ~8 % of a search's
    /// CPU). A long-lived engine frees them when it goes.
    var searchResources: [AnyObject] = []

    public init(paths: DataPaths = .fromEnvironment(), environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.paths = paths
        self.environment = environment
        self.config = try ColGrepConfig.load(from: paths)
    }

    public var catalog: IndexCatalog { IndexCatalog(paths: paths) }

    /// `status` text (reference §2.6).
    /// With `verify`, every index file's checksum is checked (opening trusts files unchanged since
    /// they were written); a damaged index is an error that says how to rebuild it.
    public func statusText(path: String, model: String?, verify: Bool = false) throws -> String {
        let model = config.model(override: model)
        let (abs, _) = try PathResolver.canonical(path)
        let location = catalog.locate(path: abs, model: model)
        guard location.exists else {
            return "No index found for \(abs) [\(model)]\nRun `colgrep <query>` to create one.\n"
        }
        var out = "Project: \(location.projectRoot)\n"
        if !location.subdirectory.isEmpty { out += "  Subdirectory: \(location.subdirectory)\n" }
        out += "Model:   \(model)\n"
        out += "Index:   \(location.layout.directory.path)\n\n"
        let building = FileManager.default.fileExists(atPath: location.layout.buildingMarker.path)
        out += building
            ? "The first build was interrupted; the next search or `colgrep init` resumes it.\n"
            : "Search with `colgrep \"<query>\"`; the index updates itself before each search.\n"
        if verify, !building, FileManager.default.fileExists(atPath: location.layout.vectorDirectory.path) {
            do {
                try PlaidIndex.verify(at: location.layout.vectorDirectory)
            } catch {
                throw ColGrepError.corrupt("\(location.layout.vectorDirectory.path): \(error). Rebuild it with `colgrep clear \(abs)` and `colgrep init \(abs)`.")
            }
            out += "Verified: every index file matches its checksum.\n"
        }
        return out
    }

    /// `clear [PATH]` / `clear --all`.
    public func clear(path: String, model: String?, all: Bool) throws -> String {
        if all {
            var count = 0
            var out = ""
            for entry in catalog.entries() {
                let lock = try IndexLock.acquire(entry.layout.lockFile)
                try FileManager.default.removeItem(at: entry.directory)
                lock.release()
                count += 1
                out += "🗑️  Cleared index for \(entry.project?.projectPath ?? entry.directory.lastPathComponent) [\(entry.project?.model ?? "unknown model")]\n"
            }
            return out + "✅ Cleared \(count) index(es)\n"
        }
        let model = config.model(override: model)
        let (abs, _) = try PathResolver.canonical(path)
        let dir = paths.indexDirectory(projectPath: abs, model: model)
        guard FileManager.default.fileExists(atPath: dir.path) else {
            return "No index found for \(abs) [\(model)]\n"
        }
        let lock = try IndexLock.acquire(IndexLayout(directory: dir).lockFile)
        try FileManager.default.removeItem(at: dir)
        lock.release()
        return "🗑️  Cleared index for \(abs) [\(model)]\n"
    }

    /// `set-model`: validates that the id resolves (a local folder, the Hub cache, or an id that
    /// falls back to the bundled model) and persists it.
    public func setModel(_ model: String) throws -> String {
        guard !model.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ColGrepError.usage("set-model needs a model id or folder")
        }
        var value = model
        let expanded = (model as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") || model.hasPrefix(".") {
            let (abs, isDir) = try PathResolver.canonical(model)
            guard isDir else { throw ColGrepError.usage("\(model) is not a model folder") }
            value = abs
        } else if model.split(separator: "/").count != 2 {
            throw ColGrepError.usage("\(model) is neither a Hugging Face id (owner/name) nor a folder")
        }
        config.defaultModel = value
        try config.save(to: paths)
        return "✅ Default model set to \(value)"
    }

    /// `--stats` text (reference §2.6).
    public func statsText() -> String {
        let entries = catalog.entries()
        if entries.isEmpty { return "No indexes found.\n" }
        var out = ""
        var functions = 0
        var searches = 0
        for entry in entries {
            let units = (try? IndexState.load(entry.layout))??.unitCount ?? 0
            let count = SearchStats.load(entry.layout).searchCount
            functions += units
            searches += count
            out += "Project: \(entry.project?.projectPath ?? entry.directory.path)\n"
            out += "  Model: \(entry.project?.model ?? "(unknown — legacy index)")\n"
            out += "  Functions indexed: \(units)\n"
            out += "  Search count: \(count)\n\n"
        }
        return out + "Total: \(entries.count) indexes, \(functions) functions, \(searches) searches\n"
    }

    /// `--reset-stats`.
    public func resetStats() -> String {
        let entries = catalog.entries()
        for entry in entries { SearchStats.reset(entry.layout) }
        return "✅ Reset search statistics for \(entries.count) index(es)\n"
    }
}
