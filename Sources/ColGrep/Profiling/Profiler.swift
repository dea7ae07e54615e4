import Foundation

/// Per-stage timings, routing decisions and peak memory, printed to stderr at exit when
/// `COLGREP_PROFILE=1` (or `true`) is set. Normal output never changes.
///
/// Thread-safe: workers on several threads add to the same stage. When disabled every call is one
/// branch on a constant, so the hooks stay in hot paths for free.
public final class Profiler: @unchecked Sendable {
    /// The process-wide profiler, enabled by `COLGREP_PROFILE`. When enabled, its report is printed
    /// to stderr at process exit (also after `exit()` from an error path), once.
    public static let shared: Profiler = {
        let env = ProcessInfo.processInfo.environment
        let trace = ProfileTrace.requested(by: env)
        let profiler = Profiler(enabled: Profiler.isRequested(by: env) || trace != nil, trace: trace)
        if profiler.isEnabled {
            atexit {
                Profiler.shared.reportIfEnabled()
                Profiler.shared.trace?.write()
            }
        }
        return profiler
    }()

    /// Whether the environment asks for a profile (`COLGREP_PROFILE` is `1` or `true`).
    public static func isRequested(by env: [String: String]) -> Bool {
        guard let value = env["COLGREP_PROFILE"]?.lowercased() else { return false }
        return value == "1" || value == "true" || value == "yes"
    }

    /// Whether measurements are recorded.
    public let isEnabled: Bool

    private let lock = NSLock()
    private let start = ProfileClock.now()
    /// How old the process was when the profile started (nil without /proc).
    private let processAgeAtStart = ProcessAge.seconds()
    private var order: [StageKey] = []
    private var stages: [StageKey: StageTotals] = [:]
    private var notes: [String] = []
    private var reported = false

    /// The timeline `COLGREP_TRACE` asks for (it turns the profile on too).
    let trace: ProfileTrace?

    public convenience init(enabled: Bool) {
        self.init(enabled: enabled, trace: nil)
    }

    init(enabled: Bool, trace: ProfileTrace?) {
        self.isEnabled = enabled
        self.trace = trace
    }

    /// Runs `body`, adding its wall time to `stage` (on `device`, if the stage runs per device).
    @inlinable
    public func measure<T>(_ stage: String, device: String? = nil, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let begin = ProfileClock.now()
        defer { add(stage: stage, seconds: ProfileClock.seconds(since: begin), device: device) }
        return try body()
    }

    /// Async twin of `measure(_:device:_:)`.
    @inlinable
    public func measure<T>(_ stage: String, device: String? = nil, _ body: () async throws -> T) async rethrows -> T {
        guard isEnabled else { return try await body() }
        let begin = ProfileClock.now()
        defer { add(stage: stage, seconds: ProfileClock.seconds(since: begin), device: device) }
        return try await body()
    }

    /// Adds one measurement to `stage`: busy seconds plus the tokens and batches it handled.
    public func add(stage: String, seconds: Double, tokens: Int = 0, batches: Int = 0, device: String? = nil) {
        guard isEnabled else { return }
        if let trace {
            let end = ProfileClock.now()
            trace.record(device.map { "\(stage)[\($0)]" } ?? stage, begin: end &- UInt64(max(0, seconds) * 1e9), end: end)
        }
        let key = StageKey(stage: stage, device: device)
        lock.lock()
        defer { lock.unlock() }
        if stages[key] == nil { order.append(key) }
        stages[key, default: StageTotals()].record(seconds: seconds, tokens: tokens, batches: batches)
    }

    /// Adds a free-form line (a routing decision, a fallback) to the report.
    public func note(_ line: String) {
        guard isEnabled else { return }
        lock.lock()
        defer { lock.unlock() }
        notes.append(line)
    }

    /// A snapshot of every stage recorded so far, in first-seen order.
    public func snapshot() -> [ProfileStage] {
        lock.lock()
        defer { lock.unlock() }
        return order.map { key in
            let totals = stages[key]!
            return ProfileStage(stage: key.stage, device: key.device, calls: totals.calls, seconds: totals.seconds,
                                tokens: totals.tokens, batches: totals.batches)
        }
    }

    /// The notes recorded so far.
    public func recordedNotes() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return notes
    }

    /// The report as text: one line per stage, the notes, total wall time and peak memory.
    public func report() -> String {
        let rows = snapshot()
        let lines = recordedNotes()
        var out = "colgrep profile (COLGREP_PROFILE)\n"
        let nameWidth = max(12, rows.map { $0.label.count }.max() ?? 0)
        for row in rows {
            var line = row.label.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            line += "  " + ProfileFormat.seconds(row.seconds)
            if row.calls > 1 { line += "  calls=\(row.calls)" }
            if row.batches > 0 { line += "  batches=\(row.batches)" }
            if row.tokens > 0 {
                line += "  tokens=\(row.tokens)"
                if row.seconds > 0 { line += "  (\(ProfileFormat.rate(Double(row.tokens) / row.seconds)) tok/s)" }
            }
            out += "  " + line + "\n"
        }
        for note in lines { out += "  " + note + "\n" }
        out += "  total wall  " + ProfileFormat.seconds(ProfileClock.seconds(since: start)) + "\n"
        if let before = processAgeAtStart, let now = ProcessAge.seconds() {
            out += "  process age " + ProfileFormat.seconds(now) + " (at the profile's start: " + ProfileFormat.seconds(before) + ")\n"
        }
        out += "  peak memory " + ProfileFormat.bytes(PeakMemory.residentBytes()) + " (max RSS)\n"
        return out
    }

    /// Prints the report to stderr once, if enabled. Safe to call from several exit paths.
    public func reportIfEnabled() {
        guard isEnabled else { return }
        lock.lock()
        let first = !reported
        reported = true
        lock.unlock()
        guard first else { return }
        FileHandle.standardError.write(Data(report().utf8))
    }

}

/// One stage of a profile (one row of the report).
public struct ProfileStage: Sendable, Equatable {
    public var stage: String
    public var device: String?
    public var calls: Int
    public var seconds: Double
    public var tokens: Int
    public var batches: Int

    /// `stage` or `stage[device]`.
    public var label: String { device.map { "\(stage)[\($0)]" } ?? stage }
}

struct StageKey: Hashable {
    var stage: String
    var device: String?
}

struct StageTotals {
    var calls = 0
    var seconds = 0.0
    var tokens = 0
    var batches = 0

    mutating func record(seconds: Double, tokens: Int, batches: Int) {
        calls += 1
        self.seconds += seconds
        self.tokens += tokens
        self.batches += batches
    }
}

/// A monotonic clock in nanoseconds (never goes back with wall-clock changes).
public enum ProfileClock {
    @inlinable
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    @inlinable
    public static func seconds(since begin: UInt64) -> Double {
        Double(now() &- begin) / 1e9
    }
}

/// The process's peak resident memory (getrusage `ru_maxrss`).
public enum PeakMemory {
    public static func residentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024 // kilobytes on Linux
        #else
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) // bytes on macOS
        #endif
    }
}

/// Human formatting of report figures.
enum ProfileFormat {
    static func seconds(_ s: Double) -> String {
        s < 1 ? String(format: "%8.1f ms", s * 1000) : String(format: "%8.3f s ", s)
    }

    static func rate(_ perSecond: Double) -> String {
        perSecond >= 1e6 ? String(format: "%.2fM", perSecond / 1e6)
            : perSecond >= 1e3 ? String(format: "%.1fk", perSecond / 1e3) : String(format: "%.0f", perSecond)
    }

    static func bytes(_ n: Int) -> String {
        String(format: "%.1f MiB", Double(n) / 1_048_576)
    }
}

/// A value behind a lock (small helper for process-wide state).
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
