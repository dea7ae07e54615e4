import Foundation

/// A resident query server: keeps the query encoder and the mapped indexes of its searches
/// (`ResidentCache`) and runs one search at a time for one-shot clients on a Unix socket.
///
/// Each request runs with the client's working folder, its standard input (passed over the socket) and
/// standard output and error captured in memory files, then sent back whole with the exit status, so
/// the client prints exactly what an in-process search prints. The search itself is the in-process code
/// (freshness check and update included); the handler, given by the executable, parses the arguments.
/// The server exits after `idleSeconds` without a request, or when its socket file is removed or
/// replaced; it ignores SIGPIPE (a client that went away only fails the reply).
public final class QueryServer {
    /// What the handler made of a request.
    public enum Outcome: Sendable, Equatable {
        /// The search ran and ended with this status.
        case ran(Int32)
        /// Not for the server (another command, a parse error): the client runs it in-process.
        case declined
        /// Declined, and the server should stop (settings turned it off).
        case declinedAndStop
    }

    let endpoint: QueryServerEndpoint
    let idleSeconds: Double
    let handler: (QueryWire.Request) -> Outcome

    public init(endpoint: QueryServerEndpoint, idleSeconds: Double, handler: @escaping (QueryWire.Request) -> Outcome) {
        self.endpoint = endpoint
        self.idleSeconds = idleSeconds
        self.handler = handler
    }

    /// The idle timeout: `COLGREP_SERVER_IDLE_SECONDS`, else 10 minutes.
    public static func idleSeconds(environment: [String: String] = ProcessInfo.processInfo.environment) -> Double {
        environment["COLGREP_SERVER_IDLE_SECONDS"].flatMap(Double.init).map { max(0.1, $0) } ?? 600
    }

    /// Closes every descriptor above standard error inherited from the process that started this one
    /// (a test harness's pipe left open here would wait for the server's exit).
    public static func closeInheritedDescriptors() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for name in names {
            if let fd = Int32(name), fd > STDERR_FILENO { close(fd) }
        }
    }

    /// Serves until idle; returns the process's exit status (0 also when another server holds the key).
    public func run() -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        mkdir(endpoint.directory.path, 0o700)
        let lockFD = open(endpoint.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { return 1 }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else { return 0 }
        // Holding the lock, any socket file at the path is a dead server's.
        unlink(endpoint.socketPath)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { return 1 }
        let previousMask = umask(0o077)
        let bound = UnixSocket.withAddress(endpoint.socketPath) { bind(listener, $0, $1) }
        umask(previousMask)
        guard bound == 0, listen(listener, 64) == 0 else { return 1 }
        let socketInode = FileIdentity(URL(fileURLWithPath: endpoint.socketPath)).inode
        ResidentCache.shared.enable()
        defer {
            if FileIdentity(URL(fileURLWithPath: endpoint.socketPath)).inode == socketInode { unlink(endpoint.socketPath) }
        }
        var lastRequest = ProfileClock.now()
        while true {
            let idle = ProfileClock.seconds(since: lastRequest)
            if idle >= idleSeconds { return 0 }
            let wait = Int32(min(idleSeconds - idle, 5) * 1000) + 1
            guard SocketIO.waitReadable(listener, timeoutMilliseconds: wait) else {
                // Removed or replaced socket file (a cleared data folder, a newer server): nobody can reach
                // this server any more.
                if FileIdentity(URL(fileURLWithPath: endpoint.socketPath)).inode != socketInode { return 0 }
                continue
            }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            let stop = serve(connection)
            close(connection)
            lastRequest = ProfileClock.now()
            if stop { return 0 }
        }
    }

    /// Runs one request; true when the server should stop.
    private func serve(_ connection: Int32) -> Bool {
        guard let (request, stdinFD) = readRequest(connection) else { return false }
        defer { if let stdinFD { close(stdinFD) } }
        guard request.key == endpoint.key, clientIsWaiting(connection) else {
            _ = SocketIO.writeAll(connection, [QueryWire.decline])
            return false
        }
        let heartbeat = Heartbeat(connection: connection)
        heartbeat.start()
        let capture = OutputCapture(merged: request.mergedOutput, standardInput: stdinFD, folder: endpoint.directory)
        let outcome: Outcome
        if capture != nil, FileManager.default.changeCurrentDirectoryPath(request.workingDirectory) {
            outcome = handler(request)
        } else {
            outcome = .declined
        }
        let output = capture?.finish() ?? ([], [])
        heartbeat.stop()
        // An index update installs colgrep's Ctrl-C handling (`InterruptFlag`: the signal is caught and the
        // update stops at its next checkpoint). Between requests a server must die of SIGINT/SIGTERM like
        // any process, and one signalled during a request answers it, then stops.
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        let interrupted = InterruptFlag.shared.isRaised
        switch outcome {
        case .ran(let status):
            let reply = QueryWire.Reply(status: status, standardOutput: output.0, standardError: output.1)
            _ = SocketIO.writeAll(connection, reply.encoded())
            return interrupted
        case .declined:
            _ = SocketIO.writeAll(connection, [QueryWire.decline])
            return interrupted
        case .declinedAndStop:
            _ = SocketIO.writeAll(connection, [QueryWire.decline])
            return true
        }
    }

    private func readRequest(_ connection: Int32) -> (QueryWire.Request, Int32?)? {
        guard SocketIO.waitReadable(connection, timeoutMilliseconds: 5_000),
              let (first, passed) = SocketIO.receive(connection, capacity: 64 << 10) else { return nil }
        var bytes = first
        func fail() -> (QueryWire.Request, Int32?)? {
            if let passed { close(passed) }
            return nil
        }
        if bytes.count < 8, let rest = SocketIO.readExactly(connection, 8 - bytes.count, timeoutMilliseconds: 5_000) { bytes += rest }
        guard bytes.count >= 8, Array(bytes[0..<4]) == QueryWire.magic else { return fail() }
        var at = 4
        guard let length = QueryWire.readU32(bytes, &at), Int(length) <= QueryWire.maxRequestBytes else { return fail() }
        let total = 8 + Int(length)
        if bytes.count < total {
            guard let rest = SocketIO.readExactly(connection, total - bytes.count, timeoutMilliseconds: 5_000) else { return fail() }
            bytes += rest
        }
        guard bytes.count == total, let request = QueryWire.Request.decode(body: Array(bytes[8...])) else { return fail() }
        return (request, passed)
    }

    /// False when the client already hung up (it waited too long behind another request and ran the
    /// search itself): its request is dropped unrun.
    private func clientIsWaiting(_ connection: Int32) -> Bool {
        let peerClosed: Int16 = 0x2000  // POLLRDHUP (Linux), not exported to Swift
        var entry = pollfd(fd: connection, events: peerClosed, revents: 0)
        let n = poll(&entry, 1, 0)
        return !(n > 0 && entry.revents & (peerClosed | Int16(POLLHUP) | Int16(POLLERR)) != 0)
    }
}

/// Sends a heartbeat byte every second until stopped, so a client can tell a long search (an index
/// update) from a dead or stuck server.
private final class Heartbeat: @unchecked Sendable {
    private let connection: Int32
    private let condition = NSCondition()
    private var running = true
    private var finished = false

    init(connection: Int32) {
        self.connection = connection
    }

    func start() {
        let thread = Thread { [self] in
            condition.lock()
            while running {
                if !condition.wait(until: Date().addingTimeInterval(1)), running {
                    _ = SocketIO.writeAll(connection, [QueryWire.heartbeat])
                }
            }
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// Stops the heartbeat; no byte is sent after this returns.
    func stop() {
        condition.lock()
        running = false
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}

/// Points standard input at the client's and standard output and error at memory files for one request,
/// then puts /dev/null back and returns what was written.
private final class OutputCapture {
    private let out: Int32
    private let err: Int32
    private let merged: Bool

    init?(merged: Bool, standardInput: Int32?, folder: URL) {
        out = Self.anonymousFile(in: folder)
        err = merged ? out : Self.anonymousFile(in: folder)
        self.merged = merged
        guard out >= 0, err >= 0 else {
            if out >= 0 { close(out) }
            if err >= 0 && err != out { close(err) }
            return nil
        }
        fflush(nil)
        if let standardInput { dup2(standardInput, STDIN_FILENO) }
        dup2(out, STDOUT_FILENO)
        dup2(err, STDERR_FILENO)
    }

    /// A file with no name (created and unlinked at once), for one request's output.
    private static func anonymousFile(in folder: URL) -> Int32 {
        var template = Array(folder.appendingPathComponent("out.XXXXXX").path.utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
        return fd
    }

    func finish() -> ([UInt8], [UInt8]) {
        fflush(nil)
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        if null >= 0 {
            dup2(null, STDIN_FILENO)
            dup2(null, STDOUT_FILENO)
            dup2(null, STDERR_FILENO)
            close(null)
        }
        let result = (Self.contents(out), merged ? [] : Self.contents(err))
        close(out)
        if !merged { close(err) }
        return result
    }

    private static func contents(_ fd: Int32) -> [UInt8] {
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        return got == size ? bytes : Array(bytes.prefix(max(0, got)))
    }
}
