import Foundation
import Tokenizers
#if canImport(Glibc)
import Glibc
#endif

/// A folder of weights that loading builds rather than finds in the model file (BERT's Q, K and V
/// projections stacked into one), so that the next process maps them instead of copying ~10 MB out of
/// the model into fresh memory (with its page faults, ~10 ms of a one-shot search on 2 cores).
///
/// One file per built matrix, named after a hash of the model file's path and the tensor names. A file
/// is used only when its magic, format version, the model file's identity (device, inode, size,
/// modification time), the tensor names and the value count all match and its size is exactly the
/// header plus the values; anything else is a miss, rebuilt and rewritten. Values are trusted like the
/// model file's own (which is mapped unchecked): a file is written to a temporary name and renamed into
/// place, so no reader sees half of one. A folder that cannot be written only costs the speed-up.
struct FusedWeightCache: Sendable {
    let directory: URL

    /// `$XDG_CACHE_HOME/colgrep/weights`, else `~/.cache/colgrep/weights`; nil when
    /// `COLGREP_WEIGHT_CACHE` is `0`/`off` or there is no home folder.
    static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> FusedWeightCache? {
        OptionalCacheFolder.resolve("weights", disabledBy: "COLGREP_WEIGHT_CACHE", environment: environment).map { FusedWeightCache(directory: $0) }
    }

    /// What a cache file was built from: the model file (by identity, not content: hashing the model
    /// would cost more than the copy it saves) and the tensors stacked.
    struct Key: Equatable {
        let modelPath: String
        let device: UInt64, inode: UInt64, size: UInt64
        let modifiedNanoseconds: Int64
        let names: String
        let count: Int

        init?(model: URL, names: [String], count: Int) {
            var info = stat()
            guard stat(model.path, &info) == 0 else { return nil }
            modelPath = model.standardizedFileURL.path
            device = UInt64(info.st_dev); inode = UInt64(info.st_ino); size = UInt64(info.st_size)
            modifiedNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            self.names = names.joined(separator: "\n")
            self.count = count
        }
    }

    static let magic = Array("CGFUSEDW".utf8)
    /// Bump whenever the layout or the meaning of a field changes.
    static let formatVersion: UInt32 = 1

    func file(for key: Key) -> URL {
        let name = String(Data((key.modelPath + "\n" + key.names).utf8).withUnsafeBytes { Self.fnv1a($0) }, radix: 16)
        return directory.appendingPathComponent("\(name).weights")
    }

    /// The header for `key`, padded to 64 bytes so the values that follow are aligned.
    static func header(_ key: Key) -> [UInt8] {
        var out = magic
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        withUnsafeBytes(of: formatVersion.littleEndian) { out.append(contentsOf: $0) }
        let names = Array(key.names.utf8)
        withUnsafeBytes(of: UInt32(names.count).littleEndian) { out.append(contentsOf: $0) }
        u64(key.device); u64(key.inode); u64(key.size); u64(UInt64(bitPattern: key.modifiedNanoseconds)); u64(UInt64(key.count))
        out.append(contentsOf: names)
        while out.count % 64 != 0 { out.append(0) }
        return out
    }

    /// The cached values for `key`, mapped read-only, or nil (absent, stale, damaged or unreadable).
    func load(_ key: Key) -> MappedWeights? {
        let expected = Self.header(key)
        let path = file(for: key).path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == expected.count + key.count * MemoryLayout<Float>.stride else { return nil }
        guard let base = mmap(nil, Int(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else { return nil }
        let mapped = MappedWeights(base: base, length: Int(info.st_size), valuesOffset: expected.count)
        guard memcmp(base, expected, expected.count) == 0 else { return nil }
        return mapped
    }

    /// Writes `values` for `key`; failures are ignored (the cache is an optimisation).
    func store(_ values: UnsafeBufferPointer<Float>, for key: Key) {
        var bytes = Data(Self.header(key))
        bytes.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                         count: values.count * MemoryLayout<Float>.stride))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            // `.atomic`: written to a temporary file in the same folder, then renamed over the target.
            try bytes.write(to: file(for: key), options: .atomic)
        } catch {
            return
        }
    }

    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}

/// A read-only mapping of a cache file; its values stay valid while it lives.
final class MappedWeights: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    private let length: Int
    let values: UnsafePointer<Float>

    init(base: UnsafeMutableRawPointer, length: Int, valuesOffset: Int) {
        self.base = base
        self.length = length
        values = UnsafeRawPointer(base + valuesOffset).assumingMemoryBound(to: Float.self)
    }

    deinit { munmap(base, length) }
}
