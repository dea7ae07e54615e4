import CXXHash
import Foundation

/// Cost models on disk: one JSON file per `CostModelKey` under `$XDG_CACHE_HOME/colgrep/costmodel/`.
/// A missing, unreadable, corrupt or stale file (another key or format) reads as absent, so the
/// caller recalibrates and overwrites it.
public struct CostModelStore: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// `$XDG_CACHE_HOME/colgrep/costmodel`, else `~/.cache/colgrep/costmodel`.
    public static func defaultDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let cache: URL
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            cache = URL(fileURLWithPath: xdg, isDirectory: true)
        } else {
            let home = env["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
                ?? FileManager.default.homeDirectoryForCurrentUser
            cache = home.appendingPathComponent(".cache", isDirectory: true)
        }
        return cache.appendingPathComponent("colgrep/costmodel", isDirectory: true)
    }

    /// The file for `key`: a hash of every key part, so a changed part means another file.
    public func url(for key: CostModelKey) -> URL {
        var text = Array("\(key.machine)\u{1}\(key.gpu)\u{1}\(key.model)\u{1}\(key.engine)\u{1}\(CostModelKey.formatVersion)".utf8)
        let hash = text.withUnsafeMutableBytes { XXH3_64bits($0.baseAddress, $0.count) }
        return directory.appendingPathComponent("costmodel-" + String(format: "%016llx", hash) + ".json")
    }

    /// What `load` found.
    public enum Lookup: Sendable, Equatable {
        case found(CostModel)
        case missing
        /// A file was there but unusable (the reason); it will be replaced.
        case unusable(String)
    }

    public func load(_ key: CostModelKey) -> Lookup {
        let url = url(for: key)
        guard let data = FileManager.default.contents(atPath: url.path) else { return .missing }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let model = try? decoder.decode(CostModel.self, from: data) else {
            return .unusable("\(url.path) is not a valid cost model")
        }
        guard model.format == CostModelKey.formatVersion, model.key == key else {
            return .unusable("\(url.path) was calibrated for another machine, GPU, model or version")
        }
        guard model.isPlausible else {
            return .unusable("\(url.path) holds impossible figures")
        }
        return .found(model)
    }

    public func save(_ model: CostModel) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(model)
        try AtomicFile.write(data, to: url(for: model.key))
        try AtomicFile.write(data, to: latestURL(machine: model.key.machine, model: model.key.model, engine: model.key.engine))
    }

    /// The model saved last on this machine for this model and engine, whatever its GPUs: read
    /// before probing any GPU (the probe alone costs a driver start), so its GPU part may be stale.
    public func latest(machine: String, model: String, engine: String) -> CostModel? {
        let url = latestURL(machine: machine, model: model, engine: engine)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let found = try? decoder.decode(CostModel.self, from: data), found.format == CostModelKey.formatVersion,
              found.key.machine == machine, found.key.model == model, found.key.engine == engine, found.isPlausible else { return nil }
        return found
    }

    private func latestURL(machine: String, model: String, engine: String) -> URL {
        var text = Array("latest\u{1}\(machine)\u{1}\(model)\u{1}\(engine)\u{1}\(CostModelKey.formatVersion)".utf8)
        let hash = text.withUnsafeMutableBytes { XXH3_64bits($0.baseAddress, $0.count) }
        return directory.appendingPathComponent("latest-" + String(format: "%016llx", hash) + ".json")
    }
}

extension CostModel {
    /// Every figure finite and non-negative, every rate positive: a hand-edited or truncated-but-
    /// parsable file must not steer the planner.
    var isPlausible: Bool {
        func ok(_ cost: DeviceCost) -> Bool {
            [cost.coldStartSeconds, cost.perBatchSeconds, cost.perTokenSeconds].allSatisfy { $0.isFinite && $0 >= 0 }
                && cost.perTokenSeconds > 0
        }
        let gpusOK = gpus.allSatisfy { gpu in
            ok(gpu.cost) && gpu.tokenBudget > 0
                && [gpu.contextSeconds, gpu.weightUploadSeconds, gpu.kernelCompileSeconds ?? 0, gpu.kernelCacheLoadSeconds ?? 0]
                    .allSatisfy { $0.isFinite && $0 >= 0 }
        }
        let driverOK = driverInitSecondsPerGPU.map { $0.isFinite && $0 >= 0 } ?? true
        return ok(cpu.cost) && cpu.threads > 0 && cpu.tokenBudget > 0 && gpusOK && driverOK
    }
}
