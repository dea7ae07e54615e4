import Foundation

/// Finds the folder of a model given as a path or a Hugging Face id.
public enum ModelLocator {
    /// A local folder (`idOrPath` names an existing directory), else the Hugging Face cache snapshot of
    /// the id, else `fallback` with a one-line notice on standard error; an error when none exists.
    public static func resolve(_ idOrPath: String, fallback: URL?) throws -> URL {
        let expanded = (idOrPath as NSString).expandingTildeInPath
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: expanded)
        }
        if let snapshot = cachedSnapshot(of: idOrPath) { return snapshot }
        if let fallback {
            FileHandle.standardError.write(Data("colgrep: model \(idOrPath) is neither a folder nor cached; using \(fallback.lastPathComponent) instead\n".utf8))
            return fallback
        }
        throw EncoderError.missingFile(URL(fileURLWithPath: expanded), hint: "not a model folder, and \(idOrPath) is not in the Hugging Face cache")
    }

    /// The newest snapshot of `repo` (`org/name`) in the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`,
    /// `~/.cache/huggingface/hub`) that holds a `config.json`.
    static func cachedSnapshot(of repo: String) -> URL? {
        let parts = repo.split(separator: "/")
        guard parts.count == 2 else { return nil }
        let env = ProcessInfo.processInfo.environment
        let hub: URL
        if let cache = env["HF_HUB_CACHE"] { hub = URL(fileURLWithPath: cache) }
        else if let home = env["HF_HOME"] { hub = URL(fileURLWithPath: home).appending(path: "hub") }
        else { hub = FileManager.default.homeDirectoryForCurrentUser.appending(path: ".cache/huggingface/hub") }
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
