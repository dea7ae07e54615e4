import Foundation

/// Atomic JSON files: write a temporary sibling named after the process and thread, fsync, rename.
/// A crash leaves either the old file or the new one, never a torn one.
enum AtomicFile {
    static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
            throw ColGrepError.io("cannot write \(tmp.path): check that \(dir.path) is writable")
        }
        let fd = open(tmp.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        if rename(tmp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw ColGrepError.io("cannot replace \(url.path): \(reason)")
        }
    }

    static func writeJSON<T: Encodable>(_ value: T, to url: URL, pretty: Bool = false) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        try write(try encoder.encode(value), to: url)
    }

    /// Decodes `url`, or nil when it does not exist. A file that exists but does not decode is an error.
    static func readJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ColGrepError.corrupt("\(url.path) is not valid JSON (\(error.localizedDescription))")
        }
    }
}

/// Errors the product reports to the user; the CLI prints `description` and exits non-zero.
public enum ColGrepError: Error, CustomStringConvertible, Equatable {
    case usage(String)
    case notFound(String)
    case io(String)
    case corrupt(String)
    case locked(String)
    case gpuUnavailable(String)
    case interrupted
    case other(String)

    public var description: String {
        switch self {
        case .usage(let m), .notFound(let m), .io(let m), .corrupt(let m), .locked(let m), .other(let m): return m
        case .gpuUnavailable(let m): return "GPU unavailable: \(m)"
        case .interrupted: return "Interrupted: progress so far is saved; run the same command again to resume."
        }
    }

    /// What the user reads when an index that cannot be read (`corrupt`) is removed and rebuilt: an index
    /// written by another colgrep version (its format version, after an upgrade) is not called damaged.
    static func rebuildNotice(root: String, message: String) -> String {
        message.contains("format version")
            ? "The index of \(root) was written by another version of colgrep (\(message)); rebuilding it.\n"
            : "The index of \(root) is damaged (\(message)); rebuilding it.\n"
    }

    /// Process exit status for this error.
    public var exitCode: Int32 {
        switch self {
        case .usage: return 2
        case .interrupted: return 130
        case .locked: return 75
        default: return 1
        }
    }
}
