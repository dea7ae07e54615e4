import Foundation

/// What names one entry of the kernel cache: the file it lives in and the descriptor stored inside it (a load
/// whose stored descriptor differs treats the file as stale). Compiled kernels (`KernelCacheKey`) and
/// cuBLASLt's timed algorithm choices (`BLASLtAlgorithmKey`) share the cache's file format and atomic writes.
public protocol KernelCacheEntryKey {
    /// Everything the entry depends on, one line.
    var descriptor: String { get }
    /// The file name inside the cache directory.
    var fileName: String { get }
}

/// Everything a compiled kernel binary depends on. Two keys are equal only if the binary built for
/// one is valid for the other.
public struct KernelCacheKey: KernelCacheEntryKey, Sendable, Equatable {
    /// Which module ("core", "attention-64").
    public var module: String
    /// The full CUDA C source text (hashed into the key).
    public var source: String
    /// The device architecture, e.g. "sm_90".
    public var architecture: String
    /// CUDA driver version (13000 = 13.0).
    public var driverVersion: Int32
    /// NVRTC version "13.0".
    public var compilerVersion: String
    /// Compiler options, including the `-D` settings for precision and model dimensions.
    public var options: [String]

    public init(module: String, source: String, architecture: String, driverVersion: Int32, compilerVersion: String, options: [String]) {
        self.module = module
        self.source = source
        self.architecture = architecture
        self.driverVersion = driverVersion
        self.compilerVersion = compilerVersion
        self.options = options
    }

    /// A one-line description of the key (stored in the file to catch hash collisions and stale files).
    public var descriptor: String {
        let sourceHash = StableHash.hex(StableHash.of(source.utf8))
        return "\(module)|src=\(sourceHash)|\(architecture)|driver=\(driverVersion)|nvrtc=\(compilerVersion)|\(options.joined(separator: " "))"
    }

    /// The cache file name: readable module and architecture plus a hash of the descriptor.
    public var fileName: String {
        let safeModule = module.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return "\(safeModule)-\(architecture)-\(StableHash.hex(StableHash.of(descriptor.utf8))).cubin"
    }
}

/// Compiled kernels on disk, so that the second process pays no compile.
///
/// Each file holds a header (magic, descriptor, payload length, payload checksum) and the binary.
/// A file whose header or checksum does not match is treated as absent, deleted, and rebuilt.
/// Writes go to a unique temporary file that is renamed into place, so concurrent processes never
/// see a half-written entry: the last complete writer wins and every reader sees one whole file.
public struct KernelCache: Sendable {
    public let directory: URL
    static let magic = Array("CGKC1\n".utf8)

    public init(directory: URL) {
        self.directory = directory
    }

    /// `$XDG_CACHE_HOME/colgrep/kernels`, else `~/.cache/colgrep/kernels`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("colgrep/kernels")
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/colgrep/kernels")
    }

    public func url(for key: some KernelCacheEntryKey) -> URL { directory.appendingPathComponent(key.fileName) }

    /// What `load` found.
    public enum Lookup: Equatable, Sendable {
        case hit([UInt8])
        case miss
        /// A file existed but was damaged or belonged to another key; it was removed.
        case discarded(String)
    }

    /// The cached binary for `key`, if a complete and intact one exists.
    public func load(_ key: some KernelCacheEntryKey) -> Lookup {
        let path = url(for: key)
        guard let data = FileManager.default.contents(atPath: path.path) else { return .miss }
        switch Self.decode([UInt8](data), descriptor: key.descriptor) {
        case .success(let payload):
            return .hit(payload)
        case .failure(let reason):
            try? FileManager.default.removeItem(at: path)
            return .discarded("\(path.path): \(reason)")
        }
    }

    /// Stores `binary` for `key` atomically (temporary file + rename).
    public func store(_ binary: [UInt8], for key: some KernelCacheEntryKey) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let final = url(for: key)
        let temporary = directory.appendingPathComponent(".\(key.fileName).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp")
        let bytes = Self.encode(binary, descriptor: key.descriptor)
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(bytes)) else {
            throw CUDAError.invalidArgument("cannot write the kernel cache file \(temporary.path); check that \(directory.path) is writable or set XDG_CACHE_HOME")
        }
        if rename(temporary.path, final.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw CUDAError.invalidArgument("cannot move the kernel cache file into \(final.path): \(reason)")
        }
    }

    static func encode(_ payload: [UInt8], descriptor: String) -> [UInt8] {
        var out = magic
        let descriptorBytes = Array(descriptor.utf8)
        appendUInt64(&out, UInt64(descriptorBytes.count))
        out += descriptorBytes
        appendUInt64(&out, UInt64(payload.count))
        appendUInt64(&out, StableHash.of(payload))
        out += payload
        return out
    }

    static func decode(_ bytes: [UInt8], descriptor: String) -> Result<[UInt8], CacheDamage> {
        var cursor = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, cursor + count <= bytes.count else { return nil }
            defer { cursor += count }
            return bytes[cursor..<(cursor + count)]
        }
        func takeUInt64() -> UInt64? {
            guard let slice = take(8) else { return nil }
            return slice.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        guard let head = take(magic.count), Array(head) == magic else { return .failure(.badHeader) }
        guard let descriptorLength = takeUInt64(), descriptorLength < 1 << 20,
              let storedDescriptor = take(Int(descriptorLength)) else { return .failure(.truncated) }
        guard String(decoding: storedDescriptor, as: UTF8.self) == descriptor else { return .failure(.otherKey) }
        guard let length = takeUInt64(), let checksum = takeUInt64(), length < 1 << 31,
              let payload = take(Int(length)) else { return .failure(.truncated) }
        guard cursor == bytes.count else { return .failure(.truncated) }
        guard StableHash.of(payload) == checksum else { return .failure(.checksum) }
        return .success(Array(payload))
    }

    enum CacheDamage: Error, CustomStringConvertible {
        case badHeader, truncated, otherKey, checksum
        var description: String {
            switch self {
            case .badHeader: return "not a colgrep kernel cache file"
            case .truncated: return "truncated"
            case .otherKey: return "built for another source, device or toolkit (stale)"
            case .checksum: return "checksum mismatch (corrupt)"
            }
        }
    }

    private static func appendUInt64(_ out: inout [UInt8], _ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }
}
