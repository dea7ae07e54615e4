import Foundation

/// A file found by the walk, with what `stat` said about it.
public struct ScannedFile: Sendable, Equatable {
    public var relativePath: String
    public var mtime: Int64
    public var size: Int64

    public init(relativePath: String, mtime: Int64, size: Int64) {
        self.relativePath = relativePath
        self.mtime = mtime
        self.size = size
    }
}

/// What an update has to do (reference §1.12 `compute_update_plan`).
public struct UpdatePlan: Sendable, Equatable {
    public var added: [String] = []
    public var changed: [String] = []
    public var deleted: [String] = []
    public var unchanged: [String] = []
    /// Unchanged content whose stat changed: the new stamps are persisted so the next run takes the fast path.
    public var touched: [String: FileStamp] = [:]
    /// Hashes computed while planning, reused when the file is indexed.
    public var hashes: [String: UInt64] = [:]

    public var hasWork: Bool { !added.isEmpty || !changed.isEmpty || !deleted.isEmpty }

    public init() {}

    /// Compares the walk with the state: equal mtime (ns) and size → unchanged without reading;
    /// otherwise the content hash decides. `hash` returns nil for a file that vanished meanwhile.
    public static func compute(scanned: [ScannedFile], state: IndexState, hash: (String) -> UInt64?) -> UpdatePlan {
        var plan = UpdatePlan()
        let ignored = Set(state.ignoredFiles)
        var seen = Set<String>()
        for file in scanned.sorted(by: { $0.relativePath < $1.relativePath }) {
            seen.insert(file.relativePath)
            if ignored.contains(file.relativePath) { continue }
            if let known = state.files[file.relativePath] {
                if known.mtime == file.mtime && known.size == file.size {
                    plan.unchanged.append(file.relativePath)
                    continue
                }
                guard let digest = hash(file.relativePath) else { continue }
                plan.hashes[file.relativePath] = digest
                if digest == known.contentHash {
                    plan.unchanged.append(file.relativePath)
                    plan.touched[file.relativePath] = FileStamp(contentHash: digest, mtime: file.mtime, size: file.size)
                } else {
                    plan.changed.append(file.relativePath)
                }
            } else {
                guard let digest = hash(file.relativePath) else { continue }
                plan.hashes[file.relativePath] = digest
                plan.added.append(file.relativePath)
            }
        }
        plan.deleted = state.files.keys.filter { !seen.contains($0) }.sorted()
        return plan
    }
}
