import Foundation

/// What a query server knows about the client of the request it is running: whether the client's standard
/// output and error are terminals. Set by the server's handler for the length of one request (requests run
/// one at a time); nil in a one-shot process, where `isatty` answers for itself.
public struct ServedRequest: Sendable, Equatable {
    /// The client's standard output is a terminal (colours follow it).
    public var standardOutputIsTerminal: Bool
    /// The client's standard error is a terminal.
    public var standardErrorIsTerminal: Bool

    public init(standardOutputIsTerminal: Bool, standardErrorIsTerminal: Bool) {
        self.standardOutputIsTerminal = standardOutputIsTerminal
        self.standardErrorIsTerminal = standardErrorIsTerminal
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var value: ServedRequest?

    /// The request being served, if any.
    public static var current: ServedRequest? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    /// Runs `body` as the handling of a request from this client.
    public static func with<T>(_ request: ServedRequest, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        value = request
        lock.unlock()
        defer {
            lock.lock()
            value = nil
            lock.unlock()
        }
        return try body()
    }

    /// Source bytes an update may encode for a client at a terminal. A larger one would run for seconds with
    /// the progress bar (and, past 30k units, the prompt) that only the client's own terminal can show: the
    /// server declines it, before writing anything, and the client runs it in-process. ~8k tokens: a few
    /// seconds on 2 cores.
    public static let terminalUpdateBytes = 32 << 10

    /// Whether an update of `incomingBytes` of added or changed source is left to the client.
    public func declinesUpdate(incomingBytes: Int) -> Bool {
        standardErrorIsTerminal && incomingBytes > Self.terminalUpdateBytes
    }
}
