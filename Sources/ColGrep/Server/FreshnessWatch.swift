import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A query server's proof that a project has not changed since its last freshness check: inotify
/// watches on the project's folders, plus the identities of the index files and of the ignore files
/// outside the tree that the walk reads. While nothing was reported and nothing of those changed, the
/// walk, the state load and the update plan of the next search's freshness check are skipped (they were
/// ~10 % of a served search's CPU on a 9.6k-unit index); any doubt means the full check.
///
/// The protocol: `beginFullCheck()` before the walk (it drains what is queued, adds watches for new
/// folders, and disarms), then `finishFullCheck(stamp:)` once the check left the index up to date; a
/// later `isUnchanged(stamp:)` is true only if no event arrived since `beginFullCheck` and the stamp is
/// the same. Events that arrive during the walk stay queued and disarm the next check, so a change made
/// while the walk runs is never lost.
///
/// Used only where change reports are complete: local file systems (ext4, xfs, btrfs, tmpfs, overlayfs,
/// zfs, f2fs), no `force_include` (then every folder matters), at most `maxFolders` folders, and for at
/// most `maxAgeSeconds` after the last full check (a safety net for what inotify cannot see: writes
/// through a shared memory map, a custom global excludes file).
final class FreshnessWatch {
    /// Identities of what a freshness check reads besides the tree (see `Stamp.current`).
    struct Stamp: Equatable {
        var files: [FileIdentity]
    }

    static let maxFolders = 20_000
    static let maxAgeSeconds = 60.0
    /// Folder names the walk never enters (a subset of `PathFilter`'s rules: hidden folders other
    /// than the CI ones, and its fixed build / vendor names), so their churn (a build, `git`) does not
    /// disarm the watch. Watching more than the walk reads is always safe; watching less is not.
    static let skippedNames: Set<String> = [
        "node_modules", "vendor", "third_party", "third-party", "external", "target", "build", "dist", "out", "bin", "obj",
        "__pycache__", "venv", "env", "coverage", "htmlcov", "tmp", "temp", "logs",
    ]
    static let allowedHidden: Set<String> = [".github", ".gitlab", ".circleci", ".buildkite", ".claude", ".claude-plugin"]

    let root: String
    private var fd: Int32 = -1
    /// Watch descriptor → folder path (for the folders created under it).
    private var folders: [Int32: String] = [:]
    private var armed = false
    private var broken = false
    private var stamp: Stamp?
    private var checkedAt: UInt64 = 0

    /// A watch for `root`, or nil where change reports could be incomplete (see the type's notes).
    init?(root: String) {
        self.root = root
        guard let type = Self.fileSystemType(root), Self.localFileSystems.contains(type) else { return nil }
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// `statfs(path).f_type` (the Glibc module does not export `statfs`: it is looked up at run time; on
    /// Linux `f_type` is the structure's first word).
    static func fileSystemType(_ path: String) -> UInt? {
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "statfs") else { return nil }
        typealias StatFS = @convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        guard unsafeBitCast(symbol, to: StatFS.self)(path, buffer) == 0 else { return nil }
        return UInt(truncatingIfNeeded: buffer.load(as: Int.self))
    }

    /// ext4/ext2/ext3, xfs, btrfs, tmpfs, overlayfs, zfs, f2fs.
    static let localFileSystems: Set<UInt> = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630, 0x2FC1_2FC1, 0xF2F5_2010]

    /// True when nothing under the root changed since the last finished full check and `stamp` is the
    /// stamp it recorded.
    func isUnchanged(stamp current: Stamp) -> Bool {
        guard armed, !broken, let stamp, stamp == current,
              ProfileClock.seconds(since: checkedAt) < Self.maxAgeSeconds else { return false }
        if drain() { armed = false }
        return armed
    }

    /// Before a full check: handles what is queued (new folders get watches), watches the whole tree the
    /// first time, and disarms. False when the watch cannot be trusted any more (too many folders, a
    /// watch that could not be added, a lost event queue).
    @discardableResult
    func beginFullCheck() -> Bool {
        armed = false
        guard !broken else { return false }
        if folders.isEmpty { watchTree(root) }
        _ = drain()
        return !broken
    }

    /// After a full check that left the index up to date (nothing to do, or an update that finished).
    func finishFullCheck(stamp: Stamp) {
        guard !broken else { return }
        self.stamp = stamp
        checkedAt = ProfileClock.now()
        armed = true
    }

    /// Reads every queued event; true when there was one. Folders created under a watched one are
    /// watched (with what they already hold); a lost queue or a moved folder (whose recorded paths are
    /// then wrong) makes the watch start over from the root.
    private func drain() -> Bool {
        var changed = false
        var restart = false
        var created: [String] = []
        let capacity = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, capacity)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            changed = true
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameLength = Int(event.len)
                let mask = event.mask
                if mask & UInt32(IN_Q_OVERFLOW) != 0 || mask & UInt32(IN_MOVE_SELF) != 0 { restart = true }
                if mask & UInt32(IN_ISDIR) != 0 {
                    if mask & UInt32(IN_MOVED_FROM | IN_MOVED_TO) != 0 { restart = true }
                    if mask & UInt32(IN_CREATE) != 0, nameLength > 0, let parent = folders[event.wd] {
                        let name = String(cString: (buffer + offset + MemoryLayout<inotify_event>.size).assumingMemoryBound(to: CChar.self))
                        created.append(parent + "/" + name)
                    }
                }
                if mask & UInt32(IN_IGNORED) != 0 { folders[event.wd] = nil }
                offset += MemoryLayout<inotify_event>.size + nameLength
            }
        }
        if restart {
            close(fd)
            folders = [:]
            fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            if fd < 0 { broken = true } else { watchTree(root) }
        } else {
            for folder in created where !broken { watchTree(folder) }
        }
        return changed
    }

    private static let events = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
                                           | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

    /// Watches `top` and every folder under it the walk may enter (symbolic links are not followed, as
    /// the walk does not follow them).
    private func watchTree(_ top: String) {
        var pending = [top]
        while let folder = pending.popLast() {
            guard !broken else { return }
            guard folders.count < Self.maxFolders else { broken = true; return }
            let wd = inotify_add_watch(fd, folder, Self.events)
            guard wd >= 0 else {
                // A folder that vanished meanwhile was reported by its parent's watch; anything else
                // (the watch limit) leaves part of the tree unwatched.
                if errno != ENOENT && errno != ENOTDIR { broken = true }
                continue
            }
            folders[wd] = folder
            guard let handle = opendir(folder) else { continue }
            while let entry = readdir(handle) {
                guard entry.pointee.d_type == UInt8(DT_DIR) || entry.pointee.d_type == UInt8(DT_UNKNOWN) else { continue }
                let name = withUnsafePointer(to: entry.pointee.d_name) { ptr in
                    ptr.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
                }
                if name == "." || name == ".." || Self.skipped(name) { continue }
                let path = folder + "/" + name
                if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
                    var info = stat()
                    guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
                }
                pending.append(path)
            }
            closedir(handle)
        }
    }

    static func skipped(_ name: String) -> Bool {
        if name.hasPrefix(".") { return !allowedHidden.contains(name) }
        return skippedNames.contains(name) || name.hasSuffix(".egg-info")
    }
}

extension FreshnessWatch.Stamp {
    /// What a freshness check reads besides the tree: the index's state, store, vector manifest, project
    /// file and build marker, and the ignore inputs above the project root (each ancestor's `.gitignore`,
    /// `.ignore`, `.git/info/exclude`, `.git/config` and whether it has a `.git`) and git's global config
    /// and default excludes file.
    static func current(layout: IndexLayout, root: String, environment: [String: String]) -> FreshnessWatch.Stamp {
        var urls: [URL] = [layout.stateFile, layout.metadataFile, URL(fileURLWithPath: layout.metadataFile.path + "-wal"),
                           layout.vectorDirectory.appendingPathComponent("manifest.plaid"), layout.projectFile, layout.buildingMarker]
        // A `.git` entry counts by its identity alone: git changes the folder's modification time all the time.
        var repositories: [FileIdentity] = []
        var folder = URL(fileURLWithPath: root)
        while true {
            for name in [".gitignore", ".ignore", ".git/info/exclude", ".git/config"] {
                urls.append(folder.appendingPathComponent(name))
            }
            var git = FileIdentity(folder.appendingPathComponent(".git"))
            git.size = 0
            git.modified = 0
            repositories.append(git)
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path || folder.path == "/" { break }
            folder = parent
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let xdg = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
        for path in [xdg + "/git/config", xdg + "/git/ignore", home + "/.gitconfig"] { urls.append(URL(fileURLWithPath: path)) }
        return FreshnessWatch.Stamp(files: urls.map(FileIdentity.init) + repositories)
    }
}
