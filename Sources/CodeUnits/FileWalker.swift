import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options of a walk: the config's `force_include` / `extra_ignore` and the size cap (reference §1.2).
public struct WalkOptions: Sendable {
    public var forceInclude: [String]
    public var extraIgnore: [String]
    public var maxFileSize: Int

    public init(forceInclude: [String] = [], extraIgnore: [String] = [], maxFileSize: Int = 512 * 1024) {
        self.forceInclude = forceInclude
        self.extraIgnore = extraIgnore
        self.maxFileSize = maxFileSize
    }
}

/// A file the walker accepted: path relative to the root, size and modification time from `lstat`.
public struct WalkedFile: Sendable, Equatable {
    public var relativePath: String
    public var size: Int64
    public var mtimeNanoseconds: Int64
    public var language: Language
}

/// A path the walker (or the extractor) left out, and why — counted in the summary.
public struct SkippedPath: Sendable, Equatable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Errors that stop a walk before it starts.
public enum WalkError: Error, CustomStringConvertible {
    case rootNotDirectory(String)

    public var description: String {
        switch self {
        case .rootNotDirectory(let p): return "\(p): not a directory (pass the project folder to index)"
        }
    }
}

/// Lists the files to index under a root with ColGREP's rules: ignore files with git semantics
/// (inside git repositories), hidden and build-directory rules, force-include / extra-ignore, the size
/// cap, known languages only, symlinks never followed (so paths stay under the root and loops are
/// impossible). Directories of one depth are read in parallel.
public struct FileWalker: Sendable {
    public let root: URL
    public let options: WalkOptions

    /// Environment read for the global excludes file (`HOME`, `XDG_CONFIG_HOME`); tests pass their own.
    let environment: [String: String]

    public init(root: URL, options: WalkOptions = WalkOptions()) {
        self.init(root: root, options: options, environment: ProcessInfo.processInfo.environment)
    }

    init(root: URL, options: WalkOptions, environment: [String: String]) {
        self.root = root
        self.options = options
        self.environment = environment
    }

    private struct PendingDirectory {
        let relativePath: String  // "" for the root, else "a/b"
        let rules: IgnoreRules
    }

    private struct DirectoryResult {
        var files: [WalkedFile] = []
        var skipped: [SkippedPath] = []
        var subdirectories: [PendingDirectory] = []
    }

    /// Walks the tree. Sorted by path. Throws only when the root itself is not a readable directory.
    public func walk() throws -> (files: [WalkedFile], skipped: [SkippedPath]) {
        let rootURL = root.standardizedFileURL.resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: rootURL.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw WalkError.rootNotDirectory(root.path)
        }
        let (baseRules, _, rootPrefix) = IgnoreRules.forWalk(root: rootURL, environment: environment)
        let filter = PathFilter(forceInclude: options.forceInclude, extraIgnore: options.extraIgnore)
        var level = [PendingDirectory(relativePath: "", rules: baseRules)]
        var files: [WalkedFile] = []
        var skipped: [SkippedPath] = []
        while !level.isEmpty {
            let current = level
            let results = Parallel.map(current.count) { i in
                readDirectory(current[i], rootURL: rootURL, rootPrefix: rootPrefix, filter: filter)
            }
            level = []
            for r in results {
                files.append(contentsOf: r.files)
                skipped.append(contentsOf: r.skipped)
                level.append(contentsOf: r.subdirectories)
            }
        }
        files.sort { $0.relativePath < $1.relativePath }
        skipped.sort { $0.path < $1.path }
        return (files, skipped)
    }

    private func readDirectory(_ directory: PendingDirectory, rootURL: URL, rootPrefix: String, filter: PathFilter) -> DirectoryResult {
        var result = DirectoryResult()
        let directoryURL = directory.relativePath.isEmpty ? rootURL : rootURL.appendingPathComponent(directory.relativePath)
        let base = rootPrefix + (directory.relativePath.isEmpty ? "" : directory.relativePath + "/")
        guard let handle = opendir(directoryURL.path) else {
            let reason = errno == ENOENT ? "vanished during the walk" : "unreadable directory: \(String(cString: strerror(errno)))"
            result.skipped.append(SkippedPath(path: directory.relativePath.isEmpty ? "." : directory.relativePath, reason: reason))
            return result
        }
        // Names with their d_type, so directories and links need no stat call.
        var entries: [(name: String, type: UInt8)] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { ptr in
                ptr.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            entries.append((name, entry.pointee.d_type))
        }
        closedir(handle)
        // Ignore files are read only when the listing shows them.
        var rules = directory.rules
        if entries.contains(where: { $0.name == ".ignore" || $0.name == ".gitignore" }) {
            rules = rules.entering(directory: directoryURL, relativeToMatchRoot: base)
        }
        let directoryPath = directoryURL.path
        for (name, entryType) in entries {
            let relative = directory.relativePath.isEmpty ? name : directory.relativePath + "/" + name
            if filter.shouldIgnore(entry: name, relativePath: relative) { continue }
            let fullPath = directoryPath + "/" + name
            var type = entryType
            var info = stat()
            var haveInfo = false
            if type == UInt8(DT_UNKNOWN) {
                // Some file systems do not fill d_type: fall back to lstat.
                guard lstat(fullPath, &info) == 0 else {
                    result.skipped.append(SkippedPath(path: relative, reason: statFailure()))
                    continue
                }
                haveInfo = true
                switch info.st_mode & S_IFMT {
                case S_IFDIR: type = UInt8(DT_DIR)
                case S_IFLNK: type = UInt8(DT_LNK)
                case S_IFREG: type = UInt8(DT_REG)
                default: type = UInt8(DT_FIFO)
                }
            }
            let matchPath = rules.isEmpty ? [] : Array((rootPrefix + relative).utf8)
            if type == UInt8(DT_DIR) {
                if !rules.isEmpty && rules.isIgnored(matchPath, isDirectory: true) { continue }
                result.subdirectories.append(PendingDirectory(relativePath: relative, rules: rules))
                continue
            }
            if !rules.isEmpty && rules.isIgnored(matchPath, isDirectory: false) { continue }
            if type == UInt8(DT_LNK) {
                if Language.detect(path: relative) != nil || isDirectoryTarget(fullPath) {
                    result.skipped.append(SkippedPath(path: relative, reason: "symbolic link (not followed)"))
                }
                continue
            }
            guard let language = Language.detect(path: relative) else { continue }
            guard type == UInt8(DT_REG) else {
                result.skipped.append(SkippedPath(path: relative, reason: "not a regular file"))
                continue
            }
            if !haveInfo && lstat(fullPath, &info) != 0 {
                result.skipped.append(SkippedPath(path: relative, reason: statFailure()))
                continue
            }
            if (info.st_mode & S_IFMT) != S_IFREG {
                result.skipped.append(SkippedPath(path: relative, reason: "not a regular file"))
                continue
            }
            let size = Int64(info.st_size)
            if size > Int64(options.maxFileSize) {
                result.skipped.append(SkippedPath(path: relative, reason: "larger than \(options.maxFileSize / 1024) KiB (\(size) bytes)"))
                continue
            }
            #if canImport(Darwin)
            let mtime = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
            #else
            let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            #endif
            result.files.append(WalkedFile(relativePath: relative, size: size, mtimeNanoseconds: mtime, language: language))
        }
        return result
    }

    private func statFailure() -> String {
        errno == ENOENT ? "vanished during the walk" : "cannot stat: \(String(cString: strerror(errno)))"
    }

    /// Whether a symlink points at a directory (a possible loop), so it is reported rather than dropped.
    private func isDirectoryTarget(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 ? (info.st_mode & S_IFMT) == S_IFDIR : false
    }
}
