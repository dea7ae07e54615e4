import Foundation
import Tensor

/// Where a query server listens: `<data root>/server/<key>.sock`, with `<key>.lock` held (flock) by the
/// server for its whole life, so at most one server per key runs and a dead one's socket is recognised.
///
/// The key is a hash of the executable (path, size, inode, modification time) and of the environment
/// (every variable but the shell's bookkeeping, PWD, OLDPWD, SHLVL and `_`, the client-only
/// `COLGREP_SERVER_REQUIRED` / `COLGREP_SERVER_TRIED`, and an `OPENBLAS_CORETYPE` set by colgrep's relaunch). A client is served only by a server started from the
/// same binary with the same settings, so nothing the search reads from the environment can differ between
/// the two; a rebuilt binary or a changed variable gets a server of its own.
public struct QueryServerEndpoint: Sendable, Equatable {
    public let directory: URL
    public let key: String

    /// Unix socket paths are limited to 107 bytes; a data root deeper than that gets no server.
    static let maxSocketPathBytes = 107
    /// Variables that differ between shells without changing what a search does.
    /// `COLGREP_SERVER_REQUIRED` only tells the client not to fall back (tests, benchmarks);
    /// `COLGREP_SERVER_TRIED` only crosses `main`'s OpenBLAS relaunch.
    static let ignoredVariables: Set<String> = ["PWD", "OLDPWD", "SHLVL", "_", "COLGREP_SERVER_REQUIRED", "COLGREP_SERVER_TRIED"]

    public init(directory: URL, key: String) {
        self.directory = directory
        self.key = key
    }

    /// The endpoint of this process's binary and environment; nil when the socket path would be too long
    /// or the executable cannot be identified.
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> QueryServerEndpoint? {
        let paths = DataPaths.fromEnvironment(environment)
        guard let exe = executableIdentity() else { return nil }
        // The client asks before `main` relaunches for OpenBLAS's kernels, the server after: a core type the
        // relaunch set is left out (it follows from the machine and the binary, both in the key, and asking
        // OpenBLAS would load it into every client); one the user set stays in (kernels differ in rounding).
        var environment = environment
        if let chosen = environment.removeValue(forKey: BLASCoreType.relaunchVariable), environment["OPENBLAS_CORETYPE"] == chosen {
            environment["OPENBLAS_CORETYPE"] = nil
        }
        var text = exe
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where !ignoredVariables.contains(name) {
            text += "\n" + name + "=" + value
        }
        let key = hex16(IndexNaming.xxh3(text))
        let endpoint = QueryServerEndpoint(directory: paths.root.appendingPathComponent("server", isDirectory: true), key: key)
        guard endpoint.socketPath.utf8.count <= maxSocketPathBytes else { return nil }
        return endpoint
    }

    /// `value` as 16 lowercase hex digits (what `String(format: "%016llx")` prints, without Foundation's
    /// formatter: the key is computed by every one-shot client before it connects).
    static func hex16(_ value: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        let bytes = (0..<16).map { digits[Int((value >> (60 - 4 * UInt64($0))) & 0xF)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var socketPath: String { directory.appendingPathComponent(key + ".sock").path }
    public var lockPath: String { directory.appendingPathComponent(key + ".lock").path }

    /// `/proc/self/exe` with its size, inode and modification time.
    static func executableIdentity() -> String? {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(path)|\(info.st_size)|\(info.st_ino)|\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// How many servers hold their lock in this folder now (any key).
    static func liveServers(in directory: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var live = 0
        for name in names where name.hasSuffix(".lock") {
            let fd = open(directory.appendingPathComponent(name).path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 { live += 1 }
            close(fd)
        }
        return live
    }
}

/// Socket helpers shared by the server and the client.
enum UnixSocket {
    /// A `sockaddr_un` for `path` (the caller checked its length).
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// A connected stream socket, or nil (no server, a stale socket file, a path too long).
    static func connect(to path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let result = withAddress(path) { Glibc.connect(fd, $0, $1) }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}
