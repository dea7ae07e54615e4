import Foundation

/// Terminal progress line on stderr (files, units, tokens/s, ETA); silent when stderr is not a terminal.
public final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var totalFiles = 0
    private var totalUnits = 0
    private var doneFiles = 0
    private var doneUnits = 0
    private var tokens = 0

    public init(enabled: Bool) {
        self.enabled = enabled
    }

    /// A reporter that draws only when stderr is a terminal.
    public static func standardErrorIfTerminal() -> Progress {
        Progress(enabled: isatty(STDERR_FILENO) == 1)
    }

    public static let silent = Progress(enabled: false)

    func begin(files: Int, units: Int) {
        lock.lock()
        defer { lock.unlock() }
        totalFiles = files
        totalUnits = units
        doneFiles = 0
        doneUnits = 0
        tokens = 0
        start = Date()
    }

    func advance(files: Int = 0, units: Int = 0, tokens newTokens: Int = 0) {
        lock.lock()
        doneFiles += files
        doneUnits += units
        tokens += newTokens
        let now = Date()
        let draw = enabled && now.timeIntervalSince(lastDraw) > 0.1
        if draw { lastDraw = now }
        let line = draw ? render(now: now) : nil
        lock.unlock()
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    private func render(now: Date) -> String {
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(tokens) / elapsed
        let fraction = totalUnits > 0 ? Double(doneUnits) / Double(totalUnits) : 0
        let eta = fraction > 0.01 ? elapsed * (1 - fraction) / fraction : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        // Swift strings are concatenated, never passed as %@ (not memory-safe on Linux Foundation).
        return "\r\u{1B}[K" + bar + String(format: " %d/%d files · %d/%d units · %.0f tok/s · ETA ", doneFiles, totalFiles, doneUnits, totalUnits, rate)
            + Self.duration(eta)
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

/// Ctrl-C handling during indexing: the first SIGINT/SIGTERM sets a flag the pipeline checks between
/// chunks (the current checkpoint is finished or discarded cleanly); a second one exits at once.
public final class InterruptFlag: @unchecked Sendable {
    public static let shared = InterruptFlag()
    private let lock = NSLock()
    private var raised = false
    private var sources: [DispatchSourceSignal] = []

    public var isRaised: Bool {
        lock.lock()
        defer { lock.unlock() }
        return raised
    }

    /// Installs the handlers once per process.
    public func install() {
        lock.lock()
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let second = self.raised
                self.raised = true
                self.lock.unlock()
                if second { _exit(130) }
                FileHandle.standardError.write(Data("\nInterrupt received: finishing the current step (Ctrl-C again to quit now)…\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }
}
