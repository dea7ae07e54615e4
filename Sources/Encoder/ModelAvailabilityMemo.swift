import Foundation

/// Remembers that a Hub model could not be obtained, so that a CLI called hundreds of times neither
/// retries the network (a DNS or connect timeout per call) nor repeats the offline-fallback notice on
/// every call: the notice is printed when the failure is first recorded, and the network is tried
/// again only after `retryInterval`.
///
/// Entries are keyed by Hugging Face cache folder, endpoint and `repo@revision` (a model that later
/// appears in the cache is found before the memo is consulted). The file is a small JSON object
/// rewritten atomically; a missing, corrupt or unwritable file only means the network is tried again.
public struct ModelAvailabilityMemo: Sendable {
    /// One remembered failure.
    public struct Record: Codable, Sendable, Equatable {
        /// Seconds since 1970 of the last failed attempt.
        public var checked: Double
        /// Why the model could not be obtained, as last seen.
        public var reason: String
    }

    /// The JSON file holding the records.
    public let file: URL
    /// How long a failure is trusted before the network is tried again.
    public let retryInterval: TimeInterval

    public init(file: URL, retryInterval: TimeInterval = 24 * 3600) {
        self.file = file
        self.retryInterval = retryInterval
    }

    /// `$XDG_CACHE_HOME/colgrep/model-availability.json`, else `~/.cache/colgrep/…`.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> ModelAvailabilityMemo {
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".cache")
        return ModelAvailabilityMemo(file: URL(fileURLWithPath: cache).appending(path: "colgrep/model-availability.json"))
    }

    static func key(repo: String, revision: String, hub: HubClient) -> String {
        "\(hub.cacheRoot.standardizedFileURL.path)|\(hub.endpoint)|\(repo)@\(revision)"
    }

    /// The remembered failure for this model and cache, whatever its age.
    public func record(repo: String, revision: String, hub: HubClient) -> Record? {
        load()[Self.key(repo: repo, revision: revision, hub: hub)]
    }

    /// A remembered failure recent enough that the network is not worth trying.
    public func recentFailure(repo: String, revision: String, hub: HubClient, now: Date = Date()) -> Record? {
        guard let record = record(repo: repo, revision: revision, hub: hub) else { return nil }
        let age = now.timeIntervalSince1970 - record.checked
        return age >= 0 && age < retryInterval ? record : nil
    }

    /// Records a failure now; returns whether one was already recorded (then the notice was shown).
    @discardableResult
    public func remember(repo: String, revision: String, hub: HubClient, reason: String, now: Date = Date()) -> Bool {
        var records = load()
        let key = Self.key(repo: repo, revision: revision, hub: hub)
        let known = records[key] != nil
        records[key] = Record(checked: now.timeIntervalSince1970, reason: reason)
        save(records)
        return known
    }

    /// Forgets a model once it has been obtained.
    public func forget(repo: String, revision: String, hub: HubClient) {
        var records = load()
        guard records.removeValue(forKey: Self.key(repo: repo, revision: revision, hub: hub)) != nil else { return }
        save(records)
    }

    private func load() -> [String: Record] {
        guard let data = try? Data(contentsOf: file) else { return [:] }
        return (try? JSONDecoder().decode([String: Record].self, from: data)) ?? [:]
    }

    private func save(_ records: [String: Record]) {
        guard let data = try? JSONEncoder().encode(records) else { return }
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: file, options: .atomic)
    }
}
