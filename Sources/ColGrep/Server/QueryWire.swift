import Foundation

/// The query server's messages over its Unix socket, as length-prefixed bytes (no JSON coder: the
/// client is a one-shot process that should load as little as possible).
///
/// Request (client → server): `CGQ1`, the u32 length of the rest, a u32 count, then that many strings
/// (u32 length + UTF-8 bytes):
/// the client's identity key, its working folder, its flags (`m`: stdout and stderr are the same file;
/// `o`, `e`: stdout, stderr is a terminal), then its arguments. The client's standard input travels beside it as a file descriptor
/// (`SCM_RIGHTS`), so a prompt reads the same input the in-process search would.
///
/// Replies (server → client), one byte each: `H` (still working: sent every second while a request
/// runs), then either `D` (declined: the client runs the search itself) or `R` followed by the exit
/// status (i32) and the captured standard output and standard error (u32 length + bytes each).
public enum QueryWire {
    static let magic: [UInt8] = Array("CGQ1".utf8)
    static let heartbeat: UInt8 = UInt8(ascii: "H")
    static let decline: UInt8 = UInt8(ascii: "D")
    static let result: UInt8 = UInt8(ascii: "R")
    /// The most a request may hold: far above any command line, small enough to refuse garbage.
    static let maxRequestBytes = 4 << 20

    /// One search request.
    public struct Request: Equatable, Sendable {
        public var key: String
        public var workingDirectory: String
        /// stdout and stderr are the same open file (`2>&1`): the server captures both into one stream.
        public var mergedOutput: Bool
        /// The client's standard output / standard error is a terminal.
        public var terminal: (output: Bool, error: Bool)
        public var arguments: [String]

        public init(key: String, workingDirectory: String, mergedOutput: Bool, terminal: (output: Bool, error: Bool) = (false, false),
                    arguments: [String]) {
            self.key = key
            self.workingDirectory = workingDirectory
            self.mergedOutput = mergedOutput
            self.terminal = terminal
            self.arguments = arguments
        }

        public static func == (a: Request, b: Request) -> Bool {
            a.key == b.key && a.workingDirectory == b.workingDirectory && a.mergedOutput == b.mergedOutput
                && a.terminal == b.terminal && a.arguments == b.arguments
        }

        var flags: String {
            (mergedOutput ? "m" : "") + (terminal.output ? "o" : "") + (terminal.error ? "e" : "")
        }

        func encoded() -> [UInt8] {
            let strings = [key, workingDirectory, flags] + arguments
            var body: [UInt8] = []
            appendU32(&body, UInt32(strings.count))
            for string in strings {
                let utf8 = Array(string.utf8)
                appendU32(&body, UInt32(utf8.count))
                body += utf8
            }
            var bytes = magic
            appendU32(&bytes, UInt32(body.count))
            return bytes + body
        }

        /// Parses a request's body (what follows the magic and the length); nil for anything malformed.
        static func decode(body bytes: [UInt8]) -> Request? {
            var at = 0
            guard let count = readU32(bytes, &at), count >= 3, count < 100_000 else { return nil }
            var strings: [String] = []
            for _ in 0..<count {
                guard let length = readU32(bytes, &at), at + Int(length) <= bytes.count else { return nil }
                guard let string = String(validating: bytes[at..<at + Int(length)], as: UTF8.self) else { return nil }
                strings.append(string)
                at += Int(length)
            }
            guard at == bytes.count else { return nil }
            let flags = strings[2]
            guard flags.allSatisfy({ "moe".contains($0) }) else { return nil }
            return Request(key: strings[0], workingDirectory: strings[1], mergedOutput: flags.contains("m"),
                           terminal: (flags.contains("o"), flags.contains("e")), arguments: Array(strings[3...]))
        }
    }

    /// What the server sends back for a request it ran.
    public struct Reply: Equatable, Sendable {
        public var status: Int32
        public var standardOutput: [UInt8]
        public var standardError: [UInt8]

        public init(status: Int32, standardOutput: [UInt8], standardError: [UInt8]) {
            self.status = status
            self.standardOutput = standardOutput
            self.standardError = standardError
        }

        func encoded() -> [UInt8] {
            var bytes: [UInt8] = [result]
            appendU32(&bytes, UInt32(bitPattern: status))
            appendU32(&bytes, UInt32(standardOutput.count))
            bytes += standardOutput
            appendU32(&bytes, UInt32(standardError.count))
            bytes += standardError
            return bytes
        }
    }

    static func appendU32(_ bytes: inout [UInt8], _ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    static func readU32(_ bytes: [UInt8], _ at: inout Int) -> UInt32? {
        guard at + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
        at += 4
        return value
    }
}

/// Blocking socket I/O with a deadline per read, for both ends.
enum SocketIO {
    /// Writes all of `bytes`; false on any error (a peer gone: EPIPE, the server ignores SIGPIPE and
    /// the client sends with MSG_NOSIGNAL).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            sent += n
        }
        return true
    }

    /// Reads exactly `count` bytes, waiting at most `timeoutMilliseconds` for each chunk; nil on
    /// end of file, error or timeout.
    static func readExactly(_ fd: Int32, _ count: Int, timeoutMilliseconds: Int32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            guard waitReadable(fd, timeoutMilliseconds: timeoutMilliseconds) else { return nil }
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return nil }
            got += n
        }
        return bytes
    }

    static func readU32(_ fd: Int32, timeoutMilliseconds: Int32) -> UInt32? {
        guard let bytes = readExactly(fd, 4, timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        var at = 0
        return QueryWire.readU32(bytes, &at)
    }

    static func waitReadable(_ fd: Int32, timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let n = poll(&entry, 1, timeoutMilliseconds)
            if n < 0 && errno == EINTR { continue }
            return n > 0
        }
    }

    /// Sends `bytes` with one file descriptor attached (`SCM_RIGHTS`).
    static func send(_ fd: Int32, _ bytes: [UInt8], passing passed: Int32) -> Bool {
        // struct cmsghdr { size_t len; int level; int type; } followed by the int, padded to 8 bytes.
        let headerSize = MemoryLayout<Int>.size + 2 * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: headerSize + 8)
        control.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: headerSize + MemoryLayout<Int32>.size, toByteOffset: 0, as: Int.self)
            raw.storeBytes(of: Int32(SOL_SOCKET), toByteOffset: MemoryLayout<Int>.size, as: Int32.self)
            raw.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: MemoryLayout<Int>.size + 4, as: Int32.self)
            raw.storeBytes(of: passed, toByteOffset: headerSize, as: Int32.self)
        }
        var payload = bytes
        let sent = payload.withUnsafeMutableBytes { data -> Int in
            control.withUnsafeMutableBytes { ctl -> Int in
                withMessage(data: data, control: ctl) { sendmsg(fd, &$0, Int32(MSG_NOSIGNAL)) }
            }
        }
        guard sent >= 0 else { return false }
        return sent == bytes.count || writeAll(fd, Array(bytes[sent...]))
    }

    /// A message over one data buffer and one control buffer, as `sendmsg` and `recvmsg` both take it.
    private static func withMessage(data: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer,
                                    _ body: (inout msghdr) -> Int) -> Int {
        var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
        return withUnsafeMutablePointer(to: &vector) { vec -> Int in
            var message = msghdr()
            message.msg_iov = vec
            message.msg_iovlen = 1
            message.msg_control = control.baseAddress
            message.msg_controllen = control.count
            return body(&message)
        }
    }

    /// Receives up to `capacity` bytes and the file descriptor attached to them, if any.
    static func receive(_ fd: Int32, capacity: Int) -> (bytes: [UInt8], passed: Int32?)? {
        let headerSize = MemoryLayout<Int>.size + 2 * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: headerSize + 8)
        var buffer = [UInt8](repeating: 0, count: capacity)
        var controlLength = 0
        let got = buffer.withUnsafeMutableBytes { data -> Int in
            control.withUnsafeMutableBytes { ctl -> Int in
                withMessage(data: data, control: ctl) { message in
                    let n = recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC))
                    controlLength = Int(message.msg_controllen)
                    return n
                }
            }
        }
        guard got > 0 else { return nil }
        var passed: Int32?
        if controlLength >= headerSize + 4 {
            control.withUnsafeBytes { raw in
                let level = raw.load(fromByteOffset: MemoryLayout<Int>.size, as: Int32.self)
                let type = raw.load(fromByteOffset: MemoryLayout<Int>.size + 4, as: Int32.self)
                if level == SOL_SOCKET && type == Int32(SCM_RIGHTS) {
                    passed = raw.load(fromByteOffset: headerSize, as: Int32.self)
                }
            }
        }
        return (Array(buffer[0..<got]), passed)
    }
}
