import Encoder
import Foundation
import Plaid
import Store
import Tensor

/// What a long-lived query server keeps between requests: the query encoder (model weights, tokenizer
/// tables, BERT buffers), each index's mapped PLAID index and its read-only SQLite store.
/// Off in a one-shot process, where every lookup just builds the value; `QueryServer` turns it on.
///
/// A read-only store is reused only while its database file and write-ahead log keep their identities (device,
/// inode, size, modification time) — i.e. while nothing was written to the index since it was opened, so the
/// kept connection sees exactly what a fresh one would. Any write (the server's own update, another process's,
/// a rebuild or a `clear`) changes one of them and the next search opens the store afresh. Keeping it saves
/// each search the open (schema, FTS5 set-up) and, above all, SQLite's fresh 1 GiB-capped file mapping:
/// the literal scan reads every unit's code through it, and a new mapping page-faults all of it again.
///
/// A vector index is reused only while its manifest keeps its identity (device, inode, size, modification
/// time): every write of the index (an append, a merge, a rebuild, a `clear`) commits a new manifest, and
/// the next search opens the index afresh; one whose manifest changed during the open serves that search
/// only. The query encoder is reused while the model folder's files keep their identities; document
/// encoders are never kept (a routed document encoder is finished at the end of each indexing run).
public final class ResidentCache: @unchecked Sendable {
    /// The process's cache (what `ModelRuntime` and `ProjectSearcher` consult).
    public static let shared = ResidentCache()

    private let lock = NSLock()
    private var enabled = false
    private var encoders: [String: (stamp: [FileIdentity], encoder: RoutedEncoder)] = [:]
    private var documentModels: [String: (stamp: [FileIdentity], encoder: ColBERTEncoder)] = [:]
    private var indexes: [String: (stamp: [FileIdentity], index: PlaidIndex?)] = [:]
    private var stores: [String: (stamp: [FileIdentity], store: MetadataStore)] = [:]
    private var openFailed = false
    private var declined = false
    private var watches: [String: FreshnessWatch?] = [:]

    init() {}

    /// Turns the cache on for the rest of the process (a query server).
    public func enable() {
        lock.lock()
        enabled = true
        lock.unlock()
    }

    /// Whether lookups keep what they build.
    public var isEnabled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return enabled
    }

    /// Drops everything kept (tests; a server that saw its model folder change).
    public func removeAll() {
        lock.lock()
        encoders = [:]
        documentModels = [:]
        indexes = [:]
        stores = [:]
        watches = [:]
        lock.unlock()
    }

    /// The freshness watch of a project indexed in `layout` with these walk settings (nil when the cache
    /// is off, or where a watch cannot be trusted: `FreshnessWatch.init`). Only one search runs at a time
    /// in a server; the watch itself is not thread-safe.
    func freshnessWatch(root: String, layout: IndexLayout, forceInclude: [String], extraIgnore: [String]) -> FreshnessWatch? {
        guard isEnabled, forceInclude.isEmpty else { return nil }
        let key = ([root, layout.directory.path] + extraIgnore).joined(separator: "\u{0}")
        lock.lock()
        defer { lock.unlock() }
        if let kept = watches[key] { return kept }
        let watch = FreshnessWatch(root: root)
        watches[key] = .some(watch)
        return watch
    }

    /// A query encoder for this model folder, mode and thread count: the kept one while the folder's
    /// files are unchanged, else `make()`'s (kept when the cache is on).
    func queryEncoder(directory: URL, mode: AccelerationMode, threads: Int, make: () throws -> RoutedEncoder) throws -> RoutedEncoder {
        guard isEnabled else { return try make() }
        let key = "\(directory.path)|\(mode)|\(threads)"
        let stamp = FileIdentity.folder(directory)
        lock.lock()
        let kept = encoders[key]
        lock.unlock()
        if let kept, kept.stamp == stamp { return kept.encoder }
        let encoder = try make()
        lock.lock()
        encoders[key] = (stamp, encoder)
        lock.unlock()
        return encoder
    }

    /// A loaded CPU model of this folder with `threads` threads for an indexing run's document encoder
    /// (never the query encoder's: that one is fp32 only); nil when the cache is off (a one-shot process
    /// loads its document encoder itself).
    func documentModel(directory: URL, threads: Int, make: () throws -> ColBERTEncoder) throws -> ColBERTEncoder? {
        guard isEnabled else { return nil }
        let stamp = FileIdentity.folder(directory)
        lock.lock()
        let kept = documentModels["\(directory.path)|\(threads)"]
        lock.unlock()
        if let kept, kept.stamp == stamp { return kept.encoder }
        let encoder = try make()
        lock.lock()
        documentModels["\(directory.path)|\(threads)"] = (stamp, encoder)
        lock.unlock()
        return encoder
    }

    /// The mapped vector index in `layout`: the kept one while its manifest keeps its identity, else
    /// `open()`'s (kept when the cache is on and the manifest did not change during the open).
    func vectorIndex(layout: IndexLayout, open: () throws -> PlaidIndex?) throws -> PlaidIndex? {
        guard isEnabled else { return try open() }
        let key = layout.directory.path
        let stamp = Self.indexStamp(layout)
        lock.lock()
        let kept = indexes[key]
        if let kept, kept.stamp != stamp { indexes[key] = nil }
        lock.unlock()
        if let kept, kept.stamp == stamp { return kept.index }
        let index = try open()
        let after = Self.indexStamp(layout)
        lock.lock()
        indexes[key] = after == stamp ? (after, index) : nil
        lock.unlock()
        return index
    }

    /// The read-only store at `file`: the kept one while the database and its log keep their identities,
    /// else `open()`'s (kept when the cache is on and neither changed during the open).
    func metadataStore(file: URL, open: () throws -> MetadataStore) throws -> MetadataStore {
        guard isEnabled else { return try open() }
        let key = file.path
        let stamp = Self.storeStamp(file)
        lock.lock()
        let kept = stores[key]
        if let kept, kept.stamp != stamp { stores[key] = nil }
        lock.unlock()
        if let kept, kept.stamp == stamp { return kept.store }
        let store = try open()
        let after = Self.storeStamp(file)
        lock.lock()
        stores[key] = after == stamp ? (after, store) : nil
        lock.unlock()
        return store
    }

    /// The files whose change means a kept read-only store must be opened again: the database and its
    /// write-ahead log (where a commit lands until a checkpoint copies it into the database).
    static func storeStamp(_ file: URL) -> [FileIdentity] {
        [FileIdentity(file), FileIdentity(URL(fileURLWithPath: file.path + "-wal"))]
    }

    /// Whether a read-only store of `file` is kept now (tests).
    func keepsStore(_ file: URL) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return stores[file.path] != nil
    }

    /// The identity of the file whose change means the vector index must be opened again.
    static func indexStamp(_ layout: IndexLayout) -> [FileIdentity] {
        [FileIdentity(layout.vectorDirectory.appendingPathComponent("manifest.plaid"))]
    }

    /// Records that a search could not open an index (a query server then declines the request) and
    /// forgets every kept index and store.
    func noteOpenFailure() {
        lock.lock()
        openFailed = true
        indexes = [:]
        stores = [:]
        lock.unlock()
    }

    /// Records that a search must run in the client instead (a large update for a client at a terminal):
    /// the server declines the request, as after an open failure, but keeps what it holds.
    func noteDecline() {
        lock.lock()
        declined = true
        lock.unlock()
    }

    /// Whether a search asked to be declined since the last call (and clears it).
    public func takeDecline() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let value = declined
        declined = false
        return value
    }

    /// Whether an open failed since the last call (and clears it).
    public func takeOpenFailure() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let failed = openFailed
        openFailed = false
        return failed
    }
}

/// A file's identity and version as `stat` reports it; all zero for a missing file.
struct FileIdentity: Equatable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = 0
    var modified: Int64 = 0

    init(_ url: URL) {
        var info = stat()
        guard stat(url.path, &info) == 0 else { return }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    /// The folder itself and every file directly in it, by name.
    static func folder(_ directory: URL) -> [FileIdentity] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        return [FileIdentity(directory)] + names.map { FileIdentity(directory.appendingPathComponent($0)) }
    }
}
