import CXXHash
import Foundation

/// Where colgrep keeps its data: `$COLGREP_DATA_DIR`, else `$XDG_DATA_HOME/colgrep`, else
/// `~/.local/share/colgrep`. Indices live in `<root>/indices`, the config in `<root>/config.json`
/// (reference §1.12 and §5.3: the config sits next to the indices, `XDG_CONFIG_HOME` is never read).
public struct DataPaths: Sendable, Equatable {
    /// The colgrep data root.
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// Resolves the data root from the environment.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> DataPaths {
        if let dir = env["COLGREP_DATA_DIR"], !dir.isEmpty {
            return DataPaths(root: URL(fileURLWithPath: dir, isDirectory: true))
        }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty {
            return DataPaths(root: URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("colgrep", isDirectory: true))
        }
        let home = env["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return DataPaths(root: home.appendingPathComponent(".local/share/colgrep", isDirectory: true))
    }

    /// Folder holding one sub-folder per (project, model) index.
    public var indicesDirectory: URL { root.appendingPathComponent("indices", isDirectory: true) }

    /// The persisted settings file.
    public var configFile: URL { root.appendingPathComponent("config.json") }

    /// The index folder of `projectPath` (absolute, canonical) for `model`.
    public func indexDirectory(projectPath: String, model: String) -> URL {
        indicesDirectory.appendingPathComponent(IndexNaming.directoryName(projectPath: projectPath, model: model), isDirectory: true)
    }
}

/// The reference's index folder naming: sanitized project basename, `-`, then the first 8 hex digits
/// of `xxh3_64(path + "|" + model)`.
public enum IndexNaming {
    public static func directoryName(projectPath: String, model: String) -> String {
        let base = (projectPath as NSString).lastPathComponent
        let sanitized = String(base.map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-")) ? c : "_"
        })
        let hash = xxh3(projectPath + "|" + model)
        let hex = String(format: "%016llx", hash)
        return sanitized + "-" + String(hex.prefix(8))
    }

    /// xxh3_64 of a string's UTF-8 bytes.
    public static func xxh3(_ text: String) -> UInt64 {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { XXH3_64bits($0.baseAddress, $0.count) }
    }
}

/// Files inside one index folder.
public struct IndexLayout: Sendable, Equatable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public var projectFile: URL { directory.appendingPathComponent("project.json") }
    public var stateFile: URL { directory.appendingPathComponent("state.json") }
    /// Search counter, kept apart from `state.json` so a search never rewrites the state.
    public var statsFile: URL { directory.appendingPathComponent("stats.json") }
    public var lockFile: URL { directory.appendingPathComponent(".lock") }
    /// Present while a first build is in progress (resumable).
    public var buildingMarker: URL { directory.appendingPathComponent(".building") }
    /// The PLAID vector index folder.
    public var vectorDirectory: URL { directory.appendingPathComponent("index", isDirectory: true) }
    /// The SQLite metadata + FTS5 store.
    public var metadataFile: URL { directory.appendingPathComponent("metadata.db") }
}

/// `project.json`: which project and model an index folder belongs to.
public struct ProjectInfo: Codable, Sendable, Equatable {
    public var projectPath: String
    public var projectName: String
    public var model: String

    enum CodingKeys: String, CodingKey {
        case projectPath = "project_path"
        case projectName = "project_name"
        case model
    }

    public init(projectPath: String, model: String) {
        self.projectPath = projectPath
        self.projectName = (projectPath as NSString).lastPathComponent
        self.model = model
    }
}
