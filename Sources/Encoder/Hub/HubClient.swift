import Foundation

/// Downloads model files from the Hugging Face Hub into the standard cache that Python's
/// `huggingface_hub` uses, so either side reuses the other's downloads.
///
/// Honours `HF_ENDPOINT`, `HF_HOME` / `HF_HUB_CACHE`, `HF_TOKEN` (then `HUGGING_FACE_HUB_TOKEN`, then
/// `$HF_HOME/token`) and `HF_HUB_OFFLINE`. Revisions may be a branch, a tag or a commit hash.
/// Interrupted downloads resume from `blobs/<etag>.incomplete` with a Range request.
public struct HubClient: Sendable {
    /// The Hub's base URL (`HF_ENDPOINT`, default https://huggingface.co).
    public let endpoint: String
    /// The `hub` cache folder holding `models--owner--name` folders.
    public let cacheRoot: URL
    /// The token sent as `Authorization: Bearer`, if any.
    let token: String?
    /// `HF_HUB_OFFLINE`: never touch the network, use the cache only.
    public let offline: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ key: String) -> String? {
            guard let v = environment[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        var endpoint = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        let home = value("HOME") ?? NSHomeDirectory()
        let xdg = value("XDG_CACHE_HOME") ?? (home as NSString).appendingPathComponent(".cache")
        let hfHome = value("HF_HOME").map { ($0 as NSString).expandingTildeInPath }
            ?? (xdg as NSString).appendingPathComponent("huggingface")
        cacheRoot = URL(fileURLWithPath: value("HF_HUB_CACHE") ?? (hfHome as NSString).appendingPathComponent("hub"),
                        isDirectory: true)
        let tokenFile = value("HF_TOKEN_PATH") ?? (hfHome as NSString).appendingPathComponent("token")
        token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
            ?? (try? String(contentsOfFile: tokenFile, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        offline = ["1", "on", "yes", "true"].contains(value("HF_HUB_OFFLINE")?.lowercased() ?? "")
    }

    /// Returns the local snapshot folder holding `files` (required) and whichever `optionalFiles` exist.
    public func snapshot(repo: String, revision: String = "main", files: [String], optionalFiles: [String]) throws -> URL {
        let parts = repo.split(separator: "/")
        guard parts.count == 2, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw HubError("\"\(repo)\" is not a Hub model id (expected owner/name)")
        }
        let cache = HubCache(root: cacheRoot, repo: repo)
        if offline {
            return try fromCache(cache, revision: revision, files: files,
                                 why: "HF_HUB_OFFLINE is set")
        }
        var commit: String?
        for (index, file) in (files + optionalFiles).enumerated() {
            let required = index < files.count
            do {
                if let c = try fetch(cache, revision: revision, file: file, required: required) { commit = c }
            } catch let unreachable as HubUnreachable {
                return try fromCache(cache, revision: revision, files: files,
                                     why: "cannot reach \(endpoint) (\(unreachable.reason))")
            }
        }
        guard let commit else {
            throw HubError("\(repo)@\(revision): no file could be resolved on \(endpoint)")
        }
        return cache.snapshot(commit)
    }

    private var headers: [String: String] {
        var h = ["User-Agent": "colgrep (huggingface_hub-compatible cache)"]
        if let token { h["Authorization"] = "Bearer \(token)" }
        return h
    }

    private func url(repo: String, revision: String, file: String) -> URL? {
        let segment = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
        guard let rev = revision.addingPercentEncoding(withAllowedCharacters: segment),
              let path = file.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) else { return nil }
        return URL(string: "\(endpoint)/\(repo)/resolve/\(rev)/\(path)")
    }

    /// Ensures one file is in the cache; returns the commit it resolved to, or nil for a missing
    /// optional file.
    private func fetch(_ cache: HubCache, revision: String, file: String, required: Bool) throws -> String? {
        let repo = cache.repo
        guard let url = url(repo: repo, revision: revision, file: file) else {
            throw HubError("\(repo): cannot build a URL for \(file)@\(revision)")
        }
        let head = try HubHTTP.head(url, headers: headers)
        switch head.status {
        case 200..<400:
            break
        case 401, 403:
            throw HubError("\(repo): access denied (HTTP \(head.status)) for \(file); the repo may be private or gated: "
                + (token == nil ? "set HF_TOKEN to a token with access" : "check that HF_TOKEN grants access"))
        case 404:
            let code = head.header("X-Error-Code") ?? ""
            if code == "RepositoryNotFound" {
                throw HubError("\(repo): repository not found on \(endpoint) (HTTP 404); check the model id"
                    + (token == nil ? " or set HF_TOKEN for a private repo" : ""))
            }
            if code == "RevisionNotFound" {
                throw HubError("\(repo): revision \"\(revision)\" not found on \(endpoint) (HTTP 404)")
            }
            if required {
                throw HubError("\(repo): required file \(file) not found at revision \(revision) on \(endpoint) (HTTP 404)")
            }
            if let commit = head.header("X-Repo-Commit") {
                cache.markMissing(commit: commit, file: file)
                try? cache.writeRef(revision, commit: commit)
            }
            return nil
        default:
            throw HubUnreachable(reason: "HTTP \(head.status)")
        }
        guard let commit = head.header("X-Repo-Commit"), HubCache.isCommitHash(commit) else {
            throw HubError("\(repo): \(endpoint) sent no X-Repo-Commit header for \(file); is HF_ENDPOINT a Hugging Face Hub?")
        }
        guard let rawEtag = head.header("X-Linked-Etag") ?? head.header("ETag") else {
            throw HubError("\(repo): \(endpoint) sent no ETag for \(file); is HF_ENDPOINT a Hugging Face Hub?")
        }
        let etag = Self.normalizeEtag(rawEtag)
        let expectedSize = Int64(head.header("X-Linked-Size") ?? head.header("Content-Length") ?? "")
        do {
            try cache.writeRef(revision, commit: commit)
            if cache.has(commit: commit, file: file) { return commit }
            let blob = cache.blob(etag)
            if !FileManager.default.fileExists(atPath: blob.path) {
                try download(url, cache: cache, etag: etag, file: file, expectedSize: expectedSize)
            }
            try cache.link(commit: commit, file: file, etag: etag)
        } catch let error as HubError {
            throw error
        } catch let error as HubUnreachable {
            throw HubError("\(repo): download of \(file) interrupted (\(error.reason)); run again to resume")
        } catch {
            throw HubError("\(repo): cannot store \(file) in \(cache.repoFolder.path): \(error.localizedDescription)")
        }
        return commit
    }

    private func download(_ url: URL, cache: HubCache, etag: String, file: String, expectedSize: Int64?) throws {
        let fm = FileManager.default
        let incomplete = cache.incompleteBlob(etag)
        try fm.createDirectory(at: incomplete.deletingLastPathComponent(), withIntermediateDirectories: true)
        let size = { ((try? fm.attributesOfItem(atPath: incomplete.path)[.size]) as? NSNumber)?.int64Value ?? 0 }
        if let expectedSize, size() > expectedSize { try? fm.removeItem(at: incomplete) }
        if expectedSize == nil || size() < expectedSize! {
            let response = try HubHTTP.get(url, headers: headers, into: incomplete, progress: ProgressBar(label: file))
            // 416: the range starts at the end, i.e. the partial file is already complete.
            guard (200..<300).contains(response.status) || response.status == 416 else {
                throw HubError("\(cache.repo): download of \(file) failed (HTTP \(response.status)); run again to resume")
            }
        }
        if let expectedSize, size() != expectedSize {
            throw HubError("\(cache.repo): download of \(file) stopped at \(size()) of \(expectedSize) bytes; run again to resume")
        }
        try? fm.removeItem(at: cache.blob(etag))
        try fm.moveItem(at: incomplete, to: cache.blob(etag))
    }

    /// Resolves everything from the cache, or explains in one line why it cannot.
    private func fromCache(_ cache: HubCache, revision: String, files: [String], why: String) throws -> URL {
        guard let commit = cache.cachedCommit(for: revision), FileManager.default.fileExists(atPath: cache.snapshot(commit).path) else {
            throw HubError("\(cache.repo)@\(revision) is not in the Hugging Face cache (\(cache.repoFolder.path)) and \(why); "
                + "connect once to download it, or pass a local model folder")
        }
        let missing = files.filter { !cache.has(commit: commit, file: $0) }
        guard missing.isEmpty else {
            throw HubError("\(cache.repo)@\(revision): \(missing.joined(separator: ", ")) not in the Hugging Face cache "
                + "(\(cache.snapshot(commit).path)) and \(why); connect once to download it")
        }
        return cache.snapshot(commit)
    }

    /// Strips the weak marker and quotes, as huggingface_hub does.
    static func normalizeEtag(_ etag: String) -> String {
        var e = etag.trimmingCharacters(in: .whitespaces)
        if e.hasPrefix("W/") { e.removeFirst(2) }
        return e.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }
}

private extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
