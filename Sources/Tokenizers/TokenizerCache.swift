import Foundation

/// A folder of binary copies of parsed `tokenizer.json` files (`TokenizerSpec`s), so that loading a
/// tokenizer again skips the JSON parse (most of its load time: ~25 % of a one-shot search's CPU).
///
/// One file per tokenizer path, named after a hash of that path. A file is used only when everything
/// matches: magic, format version, the size and content hash of the `tokenizer.json` bytes being
/// loaded (an edited or replaced file is a miss), the payload's length and checksum, and a payload that
/// decodes to the end. Anything else is a miss: the JSON is parsed and the file rewritten. Writes go to
/// a temporary file renamed into place, so a reader never sees half a file; a folder that cannot be
/// written only costs the speed-up.
public struct TokenizerCache: Sendable {
    /// Where the cache files live.
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    /// `$XDG_CACHE_HOME/colgrep/tokenizers`, else `~/.cache/colgrep/tokenizers`; nil when
    /// `COLGREP_TOKENIZER_CACHE` is `0`/`off` or there is no home folder.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> TokenizerCache? {
        OptionalCacheFolder.resolve("tokenizers", disabledBy: "COLGREP_TOKENIZER_CACHE", environment: environment).map { TokenizerCache(directory: $0) }
    }

    /// What a cache file must have been made from.
    public struct Key: Sendable, Equatable {
        /// The tokenizer.json's path (names the cache file).
        public let sourcePath: String
        public let size: UInt64
        public let contentHash: UInt64

        public init(source: URL, contents: Data) {
            sourcePath = source.standardizedFileURL.path
            size = UInt64(contents.count)
            contentHash = contents.withUnsafeBytes { FastHash.hash($0) }
        }
    }

    /// The cache file of a tokenizer path.
    public func file(for key: Key) -> URL {
        let name = String(Data(key.sourcePath.utf8).withUnsafeBytes { FastHash.hash($0) }, radix: 16)
        return directory.appendingPathComponent("\(name).tokenizer-cache")
    }

    static let magic = Array("CGTKCACH".utf8)
    /// Bump whenever the payload layout or the meaning of a field changes.
    static let formatVersion: UInt32 = 1
    static let headerSize = 48

    /// The cached spec for `key`, or nil (absent, stale, damaged or unreadable).
    func load(_ key: Key) -> TokenizerSpec? {
        guard let data = try? Data(contentsOf: file(for: key), options: .mappedIfSafe) else { return nil }
        return Self.decode(data, key: key)
    }

    /// Writes `spec` for `key`; failures are ignored (the cache is an optimisation).
    func store(_ spec: TokenizerSpec, for key: Key) {
        let target = file(for: key)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            // `.atomic`: written to a temporary file in the same folder, then renamed over the target.
            try Self.encode(spec, key: key).write(to: target, options: .atomic)
        } catch {
            return
        }
    }

    // MARK: format

    static func encode(_ spec: TokenizerSpec, key: Key) -> Data {
        var payload = ByteWriter()
        payload.string(spec.modelType)
        payload.bytes(Array(spec.settingsJSON))
        payload.u32(UInt32(spec.vocab.count))
        for (token, id) in spec.vocab {
            payload.i32(id)
            payload.string(token)
        }
        if let merges = spec.merges {
            payload.u8(1)
            payload.u32(UInt32(merges.count))
            for (left, right) in merges {
                payload.string(left)
                payload.string(right)
            }
        } else {
            payload.u8(0)
        }
        payload.u32(UInt32(spec.addedTokens.count))
        for token in spec.addedTokens {
            payload.i32(token.id)
            var flags: UInt8 = 0
            if token.special { flags |= 1 }
            if token.singleWord { flags |= 2 }
            if token.lstrip { flags |= 4 }
            if token.rstrip { flags |= 8 }
            if token.normalized { flags |= 16 }
            payload.u8(flags)
            payload.string(token.content)
        }
        var out = ByteWriter()
        out.raw(magic)
        out.u32(formatVersion)
        out.u32(0)
        out.u64(key.size)
        out.u64(key.contentHash)
        out.u64(UInt64(payload.buffer.count))
        out.u64(payload.buffer.withUnsafeBytes { FastHash.hash($0) })
        out.raw(payload.buffer)
        return Data(out.buffer)
    }

    /// The spec in `data` if it is a complete, undamaged cache file made from `key`'s bytes.
    static func decode(_ data: Data, key: Key) -> TokenizerSpec? {
        data.withUnsafeBytes { (all: UnsafeRawBufferPointer) -> TokenizerSpec? in
            var header = ByteReader(all)
            guard let m = header.raw(magic.count), m.elementsEqual(magic),
                  header.u32() == formatVersion, header.u32() != nil,
                  header.u64() == key.size, header.u64() == key.contentHash,
                  let length = header.u64(), let checksum = header.u64(),
                  length == UInt64(all.count - headerSize) else { return nil }
            let body = UnsafeRawBufferPointer(rebasing: all[headerSize...])
            guard FastHash.hash(body) == checksum else { return nil }
            var r = ByteReader(body)
            guard let modelType = r.string(), let settings = r.bytes(), let vocabCount = r.u32(),
                  Int(vocabCount) <= body.count else { return nil }
            var vocab: [(String, Int32)] = []
            vocab.reserveCapacity(Int(vocabCount))
            for _ in 0..<vocabCount {
                guard let id = r.i32(), let token = r.string() else { return nil }
                vocab.append((token, id))
            }
            guard let hasMerges = r.u8(), hasMerges <= 1 else { return nil }
            var merges: [(String, String)]?
            if hasMerges == 1 {
                guard let count = r.u32(), Int(count) <= body.count else { return nil }
                var pairs: [(String, String)] = []
                pairs.reserveCapacity(Int(count))
                for _ in 0..<count {
                    guard let left = r.string(), let right = r.string() else { return nil }
                    pairs.append((left, right))
                }
                merges = pairs
            }
            guard let addedCount = r.u32(), Int(addedCount) <= body.count else { return nil }
            var added: [AddedToken] = []
            for _ in 0..<addedCount {
                guard let id = r.i32(), let flags = r.u8(), flags < 32, let content = r.string() else { return nil }
                added.append(AddedToken(id: id, content: content, special: flags & 1 != 0, singleWord: flags & 2 != 0,
                                        lstrip: flags & 4 != 0, rstrip: flags & 8 != 0, normalized: flags & 16 != 0))
            }
            guard r.atEnd else { return nil }
            return TokenizerSpec(vocab: vocab, merges: merges, addedTokens: added, modelType: modelType,
                                 settingsJSON: Data(settings))
        }
    }
}

/// A 64-bit hash of bytes, eight at a time (change and damage detection, not security).
enum FastHash {
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ mix(word)) &* 0xBF58_476D_1CE4_E5B9
            h = (h << 31) | (h >> 33)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ mix(tail)) &* 0x94D0_49BB_1331_11EB
        return mix(h)
    }

    /// SplitMix64's finaliser.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Little-endian appends.
struct ByteWriter {
    var buffer: [UInt8] = []

    mutating func raw<S: Sequence>(_ bytes: S) where S.Element == UInt8 { buffer.append(contentsOf: bytes) }
    mutating func u8(_ v: UInt8) { buffer.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func bytes(_ b: [UInt8]) {
        u32(UInt32(b.count))
        buffer.append(contentsOf: b)
    }
    mutating func string(_ s: String) { bytes(Array(s.utf8)) }
}

/// Bounds-checked little-endian reads: nil past the end, never a trap.
struct ByteReader {
    private let base: UnsafeRawBufferPointer
    private var offset = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var atEnd: Bool { offset == base.count }

    mutating func raw(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, count <= base.count - offset else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
    }

    mutating func u8() -> UInt8? { raw(1).map { $0[0] } }
    mutating func u32() -> UInt32? { raw(4).map { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) } }
    mutating func i32() -> Int32? { u32().map { Int32(bitPattern: $0) } }
    mutating func u64() -> UInt64? { raw(8).map { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } }
    mutating func bytes() -> UnsafeRawBufferPointer? {
        guard let count = u32() else { return nil }
        return raw(Int(count))
    }

    /// A length-prefixed string; nil unless it is valid UTF-8.
    mutating func string() -> String? {
        guard let b = bytes() else { return nil }
        let utf8 = b.assumingMemoryBound(to: UInt8.self)
        // ASCII is valid UTF-8 that nothing can repair, and decoding it is ~4× faster than validating (a
        // cached vocabulary is 30k mostly ASCII tokens): the same string, found sooner.
        var high: UInt8 = 0
        for byte in utf8 { high |= byte }
        if high < 0x80 { return String(decoding: utf8, as: UTF8.self) }
        return String(validating: utf8, as: UTF8.self)
    }
}
