import CCUDA
import Foundation

/// The device and libraries a cuBLASLt algorithm choice was timed on. Another GPU model, driver or cuBLASLt
/// may number its algorithms differently or run them at other speeds, so each makes (and keeps) its own choices.
struct BLASLtDeviceIdentity: Hashable, Sendable {
    /// "NVIDIA H200".
    var name: String
    /// "sm_90".
    var architecture: String
    /// CUDA driver version (13000 = 13.0).
    var driverVersion: Int32
    /// `cublasLtGetVersion()` (130000-style).
    var blasLtVersion: Int
}

/// The name of one timed choice in the kernel cache: the shape (with its device) and the two settings the
/// choice depends on — how many heuristic answers were timed and the workspace they were allowed.
struct BLASLtAlgorithmKey: KernelCacheEntryKey, Hashable, Sendable {
    /// Bumped whenever the payload's layout or meaning changes: old files then read as another key (stale).
    static let formatVersion = 1
    var shape: BLASLtTuning.Key
    var candidates: Int
    var workspaceBytes: Int

    var descriptor: String {
        let d = shape.device
        return "cublaslt-algorithm v\(Self.formatVersion)|\(d.name)|\(d.architecture)|driver=\(d.driverVersion)|cublasLt=\(d.blasLtVersion)"
            + "|workspace=\(workspaceBytes)|candidates=\(candidates)|m=\(shape.m)|k=\(shape.k)|rows<=\(shape.rowBucket)"
            + "|types=\(shape.input),\(shape.output),\(shape.compute)|epilogue=\(shape.epilogue)"
    }

    var fileName: String {
        let architecture = shape.device.architecture.filter { $0.isLetter || $0.isNumber || $0 == "_" }
        return "cublaslt-\(architecture)-\(StableHash.hex(StableHash.of(descriptor.utf8))).algo"
    }
}

/// cuBLASLt's timed algorithm choices kept in the kernel cache, so that a later process on the same device and
/// libraries reuses them instead of timing again (~0.15 s of a one-pass encode on two H200s, session 12).
///
/// One file per choice, in the kernel cache's format (descriptor, length, checksum) and written the same way
/// (temporary file + rename): a damaged, truncated or stale file reads as absent and is removed, and concurrent
/// writers leave one whole file. The payload is the algorithm's opaque 64 bytes as 8 little-endian words; the
/// caller still asks cuBLASLt (`cublasLtMatmulAlgoCheck`) whether they describe a usable algorithm for its plan.
struct BLASLtAlgorithmStore: Sendable {
    let cache: KernelCache
    static let words = 8

    /// What `load` found.
    enum Lookup: Equatable, Sendable {
        case hit([UInt64])
        case miss
        /// A file existed but was damaged, stale or not an algorithm; it was removed.
        case discarded(String)
    }

    func load(_ key: BLASLtAlgorithmKey) -> Lookup {
        switch cache.load(key) {
        case .miss: return .miss
        case .discarded(let reason): return .discarded(reason)
        case .hit(let payload):
            guard let words = Self.decode(payload) else {
                try? FileManager.default.removeItem(at: cache.url(for: key))
                return .discarded("\(cache.url(for: key).path): \(payload.count) bytes where an algorithm has \(Self.words * 8)")
            }
            return .hit(words)
        }
    }

    func store(_ words: [UInt64], for key: BLASLtAlgorithmKey) throws {
        guard words.count == Self.words else {
            throw CUDAError.invalidArgument("a cuBLASLt algorithm has \(Self.words) words, not \(words.count)")
        }
        try cache.store(Self.encode(words), for: key)
    }

    static func encode(_ words: [UInt64]) -> [UInt8] {
        words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } }
    }

    static func decode(_ bytes: [UInt8]) -> [UInt64]? {
        guard bytes.count == words * 8 else { return nil }
        return (0..<words).map { w in (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[w * 8 + $1]) << (8 * UInt64($1)) } }
    }
}

extension cublasLtMatmulAlgo_t {
    /// The algorithm's opaque contents, as stored.
    var words: [UInt64] {
        withUnsafeBytes(of: data) { Array($0.bindMemory(to: UInt64.self)) }
    }

    /// An algorithm from stored words (`BLASLtAlgorithmStore.words` of them).
    init(words: [UInt64]) {
        self.init()
        withUnsafeMutableBytes(of: &data) { raw in
            let slots = raw.bindMemory(to: UInt64.self)
            for (index, word) in words.prefix(slots.count).enumerated() { slots[index] = word }
        }
    }
}
