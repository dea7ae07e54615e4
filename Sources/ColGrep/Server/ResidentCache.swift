import Foundation
import Plaid
import Store

/// What a long-lived query server keeps between requests: the query encoder (model weights, tokenizer
/// tables, BERT buffers) and each index's read handles (the mapped PLAID index and the SQLite store).
/// Off in a one-shot process, where every lookup just builds the value; `QueryServer` turns it on.
///
/// Index handles are reused only while the files that define the index are unchanged: the PLAID
/// manifest, the metadata database and its write-ahead log are each identified by device, inode,
/// size and modification time (not the status-change time: SQLite running as root `fchown`s the log
/// at every open, a change of nothing). Any write (an update before a search, a rebuild, a `clear`)
/// changes one of them, and the next search opens the index afresh. Handles opened while the index
/// changed under the open (the identities before and after differ) serve that search and are not kept. The query encoder is reused
/// while the model folder's files keep their identities; document encoders are never kept (a routed
/// document encoder is finished at the end of each indexing run).
public final class ResidentCache: @unchecked Sendable {
    /// The process's cache (what `ModelRuntime` and `ProjectSearcher` consult).
    public static let shared = ResidentCache()

    private let lock = NSLock()
    private var enabled = false
    private var encoders: [String: (stamp: [FileIdentity], encoder: RoutedEncoder)] = [:]
    private var indexes: [String: (stamp: [FileIdentity], handles: IndexHandles)] = [:]

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
        indexes = [:]
        lock.unlock()
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

    /// The read handles of the index in `layout`: the kept ones while its files are unchanged, else
    /// `open()`'s (kept when the cache is on).
    func indexHandles(layout: IndexLayout, open: () throws -> IndexHandles) throws -> IndexHandles {
        guard isEnabled else { return try open() }
        let key = layout.directory.path
        let stamp = Self.indexStamp(layout)
        lock.lock()
        let kept = indexes[key]
        lock.unlock()
        if let kept, kept.stamp == stamp { return kept.handles }
        let handles = try open()
        // Opening the store may touch its log (created or reset by the first reader): the identities
        // after the open are the ones later searches compare with, provided nothing else changed.
        let after = Self.indexStamp(layout)
        lock.lock()
        if after[0] == stamp[0] && after[1] == stamp[1] {
            indexes[key] = (after, handles)
        } else {
            indexes[key] = nil
        }
        lock.unlock()
        return handles
    }

    /// The identities of the files whose change means the index must be opened again.
    static func indexStamp(_ layout: IndexLayout) -> [FileIdentity] {
        let manifest = layout.vectorDirectory.appendingPathComponent("manifest.plaid")
        let wal = URL(fileURLWithPath: layout.metadataFile.path + "-wal")
        return [FileIdentity(manifest), FileIdentity(layout.metadataFile), FileIdentity(wal)]
    }
}

/// An index's read handles (either may be missing: an index without documents yet).
final class IndexHandles {
    let store: MetadataStore?
    let plaid: PlaidIndex?

    init(store: MetadataStore?, plaid: PlaidIndex?) {
        self.store = store
        self.plaid = plaid
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
