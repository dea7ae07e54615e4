import Foundation

/// Finds the folder of a model given as a path or a Hugging Face id.
public enum ModelLocator {
    /// A local folder (`idOrPath` names an existing directory), else a Hugging Face snapshot of the id
    /// (`owner/name`, optionally `@revision`; downloaded into the HF cache, or taken from it when offline),
    /// else `fallback` with a one-line notice on standard error; an error naming the cause when none exists.
    ///
    /// With a fallback, `memo` remembers a failed download: the notice is printed when the failure is
    /// first recorded, and until `memo.retryInterval` has passed the network is not tried again (the
    /// fallback is used at once, silently). Without a fallback every call tries the network.
    public static func resolve(_ idOrPath: String, fallback: URL?, hub: HubClient = HubClient(),
                               memo: ModelAvailabilityMemo? = .standard()) throws -> URL {
        let found = try resolution(idOrPath, fallback: fallback, hub: hub, memo: memo)
        if let notice = found.notice { FileHandle.standardError.write(Data((notice + "\n").utf8)) }
        return found.directory
    }

    /// `resolve` without printing: the folder, and the notice to show (nil when there is none or it
    /// was shown before).
    static func resolution(_ idOrPath: String, fallback: URL?, hub: HubClient,
                           memo: ModelAvailabilityMemo?) throws -> (directory: URL, notice: String?) {
        let expanded = (idOrPath as NSString).expandingTildeInPath
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory), isDirectory.boolValue {
            return (URL(fileURLWithPath: expanded), nil)
        }
        let parts = idOrPath.split(separator: "@", maxSplits: 1).map(String.init)
        let repo = parts[0], revision = parts.count > 1 ? parts[1] : "main"
        let memo = fallback == nil ? nil : memo
        let why: String
        var noticeShown = false
        if repo.split(separator: "/").count == 2, !idOrPath.hasPrefix("/"), !idOrPath.hasPrefix(".") {
            // Cache first, as the hf-hub crate ColGREP uses does: a CLI called hundreds of times must not
            // pay a network round trip (or a DNS timeout) per call once the model is on disk.
            if revision == "main", let cached = cachedSnapshot(of: repo, in: hub.cacheRoot), isComplete(cached) { return (cached, nil) }
            if let recent = memo?.recentFailure(repo: repo, revision: revision, hub: hub) {
                if let cached = cachedSnapshot(of: repo, in: hub.cacheRoot), revision == "main" { return (cached, nil) }
                why = recent.reason
                noticeShown = true
            } else {
                do {
                    let snapshot = try download(repo: repo, revision: revision, hub: hub)
                    memo?.forget(repo: repo, revision: revision, hub: hub)
                    return (snapshot, nil)
                } catch {
                    if let cached = cachedSnapshot(of: repo, in: hub.cacheRoot), revision == "main" { return (cached, nil) }
                    why = "\(error)"
                    noticeShown = memo?.remember(repo: repo, revision: revision, hub: hub, reason: why) ?? false
                }
            }
        } else {
            why = "no such folder"
        }
        if let fallback {
            if noticeShown { return (fallback, nil) }
            let later = memo.map { " (shown once; the Hub is tried again after \(max(1, Int($0.retryInterval / 3600))) h)" } ?? ""
            return (fallback, "colgrep: model \(idOrPath) is unavailable (\(why)); using the offline fallback \(fallback.lastPathComponent)\(later)")
        }
        throw EncoderError.missingFile(URL(fileURLWithPath: expanded), hint: "not a model folder, and not obtainable from the Hugging Face Hub: \(why); no offline fallback model was found either (scripts/setup.sh installs one under .deps/models; COLGREP_FALLBACK_MODEL names another folder)")
    }

    /// Whether a cached snapshot holds every file the encoder needs, Dense folders included.
    static func isComplete(_ snapshot: URL) -> Bool {
        let required = ["config.json", "model.safetensors", "tokenizer.json"]
        guard required.allSatisfy({ FileManager.default.fileExists(atPath: snapshot.appending(path: $0).path) }),
              let dense = try? ColBERTModel.denseFolders(in: snapshot) else { return false }
        return dense.allSatisfy { FileManager.default.fileExists(atPath: $0.appending(path: "model.safetensors").path) }
    }

    /// The files this encoder reads: the backbone, tokenizer and configs, then the Dense folders
    /// that `modules.json` lists.
    static func download(repo: String, revision: String, hub: HubClient) throws -> URL {
        let optional = ["modules.json", "config_sentence_transformers.json", "onnx_config.json", "sentence_bert_config.json"]
        let snapshot = try hub.snapshot(repo: repo, revision: revision,
                                        files: ["config.json", "model.safetensors", "tokenizer.json"], optionalFiles: optional)
        let dense = try ColBERTModel.denseFolders(in: snapshot).map { $0.lastPathComponent }
        guard !dense.isEmpty else { return snapshot }
        return try hub.snapshot(repo: repo, revision: revision,
                                files: dense.flatMap { ["\($0)/config.json", "\($0)/model.safetensors"] }, optionalFiles: [])
    }

    /// The newest snapshot of `repo` (`org/name`) in the Hugging Face cache folder `hub` (the client's
    /// `cacheRoot`: `HF_HUB_CACHE`, `HF_HOME/hub` or `~/.cache/huggingface/hub`) that holds a `config.json`.
    static func cachedSnapshot(of repo: String, in hub: URL) -> URL? {
        let parts = repo.split(separator: "/")
        guard parts.count == 2 else { return nil }
        let repoDir = hub.appending(path: "models--\(parts[0])--\(parts[1])")
        if let revision = try? String(contentsOf: repoDir.appending(path: "refs/main"), encoding: .utf8) {
            let snapshot = repoDir.appending(path: "snapshots/\(revision.trimmingCharacters(in: .whitespacesAndNewlines))")
            if FileManager.default.fileExists(atPath: snapshot.appending(path: "config.json").path) { return snapshot }
        }
        let snapshots = (try? FileManager.default.contentsOfDirectory(at: repoDir.appending(path: "snapshots"), includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        return snapshots.filter { FileManager.default.fileExists(atPath: $0.appending(path: "config.json").path) }
            .max { (try? $0.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate ?? .distantPast) ?? .distantPast
                 < (try? $1.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate ?? .distantPast) ?? .distantPast }
    }
}
