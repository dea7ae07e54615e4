import Foundation

/// The Hugging Face Hub cache layout, shared with Python's `huggingface_hub`:
/// `<cache>/models--owner--name/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>,
/// refs/<revision> (holding the commit), .no_exist/<commit>/<file>}`.
struct HubCache {
    let root: URL
    let repo: String

    var repoFolder: URL {
        root.appendingPathComponent("models--" + repo.replacingOccurrences(of: "/", with: "--"), isDirectory: true)
    }

    func blob(_ etag: String) -> URL { repoFolder.appendingPathComponent("blobs/\(etag)") }
    func incompleteBlob(_ etag: String) -> URL { repoFolder.appendingPathComponent("blobs/\(etag).incomplete") }
    func snapshot(_ commit: String) -> URL { repoFolder.appendingPathComponent("snapshots/\(commit)", isDirectory: true) }
    func pointer(_ commit: String, _ file: String) -> URL { snapshot(commit).appendingPathComponent(file) }
    func ref(_ revision: String) -> URL { repoFolder.appendingPathComponent("refs/\(revision)") }
    func noExist(_ commit: String, _ file: String) -> URL { repoFolder.appendingPathComponent(".no_exist/\(commit)/\(file)") }

    static func isCommitHash(_ revision: String) -> Bool {
        revision.utf8.count == 40 && revision.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// The commit a revision points to in the cache, if known.
    func cachedCommit(for revision: String) -> String? {
        if Self.isCommitHash(revision) { return revision }
        guard let text = try? String(contentsOf: ref(revision), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.isEmpty ? nil : commit
    }

    func writeRef(_ revision: String, commit: String) throws {
        guard revision != commit else { return }
        let url = ref(revision)
        if cachedCommit(for: revision) == commit { return }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: url, options: .atomic)
    }

    /// Links `snapshots/<commit>/<file>` to `blobs/<etag>` with a relative symlink (as huggingface_hub).
    func link(commit: String, file: String, etag: String) throws {
        let fm = FileManager.default
        let pointer = pointer(commit, file)
        try fm.createDirectory(at: pointer.deletingLastPathComponent(), withIntermediateDirectories: true)
        if (try? pointer.checkResourceIsReachable()) == true { return }
        try? fm.removeItem(at: pointer)  // a dangling link
        let depth = file.split(separator: "/").count + 1  // snapshots/<commit>/<dirs...>
        let relative = String(repeating: "../", count: depth) + "blobs/\(etag)"
        try fm.createSymbolicLink(atPath: pointer.path, withDestinationPath: relative)
    }

    func markMissing(commit: String, file: String) {
        let url = noExist(commit, file)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: url.path, contents: Data())
    }

    func has(commit: String, file: String) -> Bool {
        FileManager.default.fileExists(atPath: pointer(commit, file).path)
    }
}
