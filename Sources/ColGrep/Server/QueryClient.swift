import Foundation

/// The one-shot side of the query server: hands a search's arguments to a running server and returns
/// what it printed, or says that the caller must run the search itself. Every failure (no server, a stale
/// socket file, a server that declines, dies, or stays silent for `silenceLimit` seconds) is the same
/// answer: run in-process. Nothing is printed before a complete reply, so a fallback never repeats output.
public enum QueryClient {
    /// What came of an attempt.
    public enum Outcome: Equatable, Sendable {
        /// The server ran the search: print these bytes and exit with its status.
        case served(QueryWire.Reply)
        /// Run in-process. `startServer`: no server was listening, so starting one may help the next search.
        case inProcess(startServer: Bool)
    }

    /// Seconds without a byte from the server (it sends one a second while it works) before giving up.
    static let silenceLimitMilliseconds: Int32 = 10_000

    /// Sends `arguments` (without the program name) to the server at `endpoint`.
    public static func attempt(_ arguments: [String], endpoint: QueryServerEndpoint) -> Outcome {
        guard let fd = UnixSocket.connect(to: endpoint.socketPath) else { return .inProcess(startServer: true) }
        defer { close(fd) }
        let request = QueryWire.Request(key: endpoint.key, workingDirectory: FileManager.default.currentDirectoryPath,
                                        mergedOutput: outputsShareAFile(),
                                        terminal: (isatty(STDOUT_FILENO) == 1, isatty(STDERR_FILENO) == 1), arguments: arguments)
        guard SocketIO.send(fd, request.encoded(), passing: STDIN_FILENO) else { return .inProcess(startServer: false) }
        while true {
            guard let kind = SocketIO.readExactly(fd, 1, timeoutMilliseconds: silenceLimitMilliseconds)?.first else {
                return .inProcess(startServer: false)
            }
            switch kind {
            case QueryWire.heartbeat:
                continue
            case QueryWire.result:
                guard let reply = readReply(fd) else { return .inProcess(startServer: false) }
                return .served(reply)
            default:
                return .inProcess(startServer: false)
            }
        }
    }

    private static func readReply(_ fd: Int32) -> QueryWire.Reply? {
        let limit = silenceLimitMilliseconds
        guard let status = SocketIO.readU32(fd, timeoutMilliseconds: limit),
              let outCount = SocketIO.readU32(fd, timeoutMilliseconds: limit),
              let out = SocketIO.readExactly(fd, Int(outCount), timeoutMilliseconds: limit),
              let errCount = SocketIO.readU32(fd, timeoutMilliseconds: limit),
              let err = SocketIO.readExactly(fd, Int(errCount), timeoutMilliseconds: limit) else { return nil }
        return QueryWire.Reply(status: Int32(bitPattern: status), standardOutput: out, standardError: err)
    }

    /// Whether standard output and standard error are one open file (`2>&1`, a shared pipe).
    static func outputsShareAFile() -> Bool {
        var out = stat()
        var err = stat()
        guard fstat(STDOUT_FILENO, &out) == 0, fstat(STDERR_FILENO, &err) == 0 else { return false }
        return out.st_dev == err.st_dev && out.st_ino == err.st_ino
    }

    /// Prints a served reply as the in-process search would have: standard output, then standard error
    /// (a merged capture is all in `standardOutput`).
    public static func emit(_ reply: QueryWire.Reply) {
        write(reply.standardOutput, to: STDOUT_FILENO)
        write(reply.standardError, to: STDERR_FILENO)
    }

    private static func write(_ bytes: [UInt8], to fd: Int32) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            done += n
        }
    }

    /// Starts a server for `endpoint` in the background (its own session, standard streams on
    /// /dev/null), unless `maxServers` already run in that folder. `serveArgument` is the hidden
    /// first argument that makes the executable a server. Failures are ignored: the next search runs
    /// in-process again.
    public static func startServer(endpoint: QueryServerEndpoint, serveArgument: String, maxServers: Int = 4) {
        guard QueryServerEndpoint.liveServers(in: endpoint.directory) < maxServers,
              let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
        }
        // POSIX_SPAWN_SETSID (glibc ≥ 2.26): the server leaves the caller's session and terminal, so a
        // Ctrl-C or a hang-up aimed at the shell's job never reaches it. Signal mask and dispositions reset.
        let setSID: Int16 = 0x80
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | setSID)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(exe), strdup(serveArgument), nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        _ = posix_spawn(&pid, exe, &actions, &attributes, argv, environ)
    }
}
