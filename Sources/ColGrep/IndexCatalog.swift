import Foundation

/// The index folders under `<data>/indices`, and which one serves a given path.
public struct IndexCatalog {
    public let paths: DataPaths

    public init(paths: DataPaths) {
        self.paths = paths
    }

    /// One index folder with its `project.json`.
    public struct Entry: Sendable, Equatable {
        public var directory: URL
        public var project: ProjectInfo?
        public var layout: IndexLayout { IndexLayout(directory: directory) }
    }

    /// Every index folder (legacy ones without `project.json` included, with `project == nil`).
    public func entries() -> [Entry] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: paths.indicesDirectory.path) else { return [] }
        return names.sorted().compactMap { name in
            let dir = paths.indicesDirectory.appendingPathComponent(name, isDirectory: true)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else { return nil }
            let project = (try? AtomicFile.readJSON(ProjectInfo.self, from: IndexLayout(directory: dir).projectFile)) ?? nil
            return Entry(directory: dir, project: project)
        }
    }

    /// Where a search or index of `path` goes: the exact (path, model) index, else the deepest
    /// existing index of an enclosing project for the same model (reference §1.1 parent reuse).
    public struct Location: Sendable, Equatable {
        /// Root of the indexed project.
        public var projectRoot: String
        public var layout: IndexLayout
        /// `path` relative to the project root when a parent index serves it ("" for the root itself).
        public var subdirectory: String
        public var exists: Bool
    }

    public func locate(path: String, model: String) -> Location {
        let exact = paths.indexDirectory(projectPath: path, model: model)
        if isUsable(IndexLayout(directory: exact)) {
            return Location(projectRoot: path, layout: IndexLayout(directory: exact), subdirectory: "", exists: true)
        }
        var best: (String, URL)?
        for entry in entries() {
            guard let project = entry.project, project.model == model else { continue }
            let root = project.projectPath
            guard path.hasPrefix(root.hasSuffix("/") ? root : root + "/") else { continue }
            guard isUsable(entry.layout) else { continue }
            if best == nil || root.count > best!.0.count { best = (root, entry.directory) }
        }
        if let (root, dir) = best {
            let rel = String(path.dropFirst(root.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            return Location(projectRoot: root, layout: IndexLayout(directory: dir), subdirectory: rel, exists: true)
        }
        return Location(projectRoot: path, layout: IndexLayout(directory: exact), subdirectory: "", exists: false)
    }

    /// An index that has been built at least partly (state written).
    func isUsable(_ layout: IndexLayout) -> Bool {
        FileManager.default.fileExists(atPath: layout.stateFile.path)
    }
}

/// Resolves a user path to an absolute, symlink-free folder (or file) path, with the reference's
/// message for a missing path: the closest existing parent and up to 30 of its entries.
public enum PathResolver {
    public static func canonical(_ path: String, currentDirectory: String = FileManager.default.currentDirectoryPath) throws -> (path: String, isDirectory: Bool) {
        let expanded = (path as NSString).expandingTildeInPath
        let absolute = expanded.hasPrefix("/") ? expanded : (currentDirectory as NSString).appendingPathComponent(expanded)
        let standardized = (absolute as NSString).standardizingPath
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: standardized, isDirectory: &isDir) else {
            throw ColGrepError.notFound(missingMessage(path: path, absolute: standardized))
        }
        let resolved = (standardized as NSString).resolvingSymlinksInPath
        return (resolved, isDir.boolValue)
    }

    static func missingMessage(path: String, absolute: String) -> String {
        var parent = (absolute as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        while parent != "/" && !(FileManager.default.fileExists(atPath: parent, isDirectory: &isDir) && isDir.boolValue) {
            parent = (parent as NSString).deletingLastPathComponent
        }
        var message = "Path not found: \(path)"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: parent) {
            let shown = names.filter { !$0.hasPrefix(".") }.sorted()
            message += "\nClosest existing parent: \(parent)"
            for name in shown.prefix(30) { message += "\n  \(name)" }
            if shown.count > 30 { message += "\n  … (\(shown.count - 30) more)" }
        }
        return message
    }
}
