import Foundation

/// A timeline of every profiled interval, written at exit as Chrome trace-event JSON to the file that
/// `COLGREP_TRACE` names (open it in Perfetto or chrome://tracing): one row per thread, one bar per stage
/// call. The profile's totals say how long each stage was busy; the timeline says when, and so what ran
/// beside what and where the critical path waited.
///
/// Intervals measured by `Profiler.measure` are exact; those reported afterwards through
/// `Profiler.add(stage:seconds:)` are drawn as ending when they were reported.
final class ProfileTrace: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var events: [(name: String, thread: Int, begin: UInt64, end: UInt64)] = []
    /// Small numbers for threads, in order of first appearance.
    private var threadNumbers: [UInt: Int] = [:]

    init(path: String) {
        self.path = path
    }

    /// The trace `env` asks for (`COLGREP_TRACE=<file>`), if any.
    static func requested(by env: [String: String]) -> ProfileTrace? {
        guard let path = env["COLGREP_TRACE"], !path.isEmpty else { return nil }
        return ProfileTrace(path: path)
    }

    /// Records one interval on the calling thread (nanoseconds of `ProfileClock`).
    func record(_ name: String, begin: UInt64, end: UInt64) {
        let thread = UInt(bitPattern: Int(bitPattern: pthread_self()))
        lock.lock()
        defer { lock.unlock() }
        let number: Int
        if let known = threadNumbers[thread] {
            number = known
        } else {
            number = threadNumbers.count + 1
            threadNumbers[thread] = number
        }
        events.append((name, number, begin, end))
    }

    /// The trace-event JSON: complete events ("ph": "X") in microseconds from the first interval's start.
    func json() -> Data {
        lock.lock()
        let recorded = events
        lock.unlock()
        let origin = recorded.map(\.begin).min() ?? 0
        let list: [[String: Any]] = recorded.map { event in
            ["name": event.name, "ph": "X", "pid": 1, "tid": event.thread,
             "ts": Double(event.begin &- origin) / 1000, "dur": Double(event.end &- event.begin) / 1000]
        }
        return (try? JSONSerialization.data(withJSONObject: ["traceEvents": list, "displayTimeUnit": "ms"])) ?? Data()
    }

    /// Writes the JSON to `path` (a failure is reported on stderr, never fatal: this is a diagnostic).
    func write() {
        do {
            try json().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("colgrep: could not write the trace to \(path): \(error.localizedDescription)\n".utf8))
        }
    }
}
