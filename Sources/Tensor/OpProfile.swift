import Foundation

/// Wall time per operation kind, collected when `COLGREP_PROFILE=1` (ARCHITECTURE.md's profiling switch).
/// Operations run one at a time from the model's thread, so plain accumulation is enough.
public final class OpProfile: @unchecked Sendable {
    private var totals: [String: (calls: Int, nanoseconds: UInt64)] = [:]

    public static var enabledByEnvironment: Bool { ProcessInfo.processInfo.environment["COLGREP_PROFILE"] == "1" }

    public init() {}

    func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            let old = totals[name] ?? (0, 0)
            totals[name] = (old.calls + 1, old.nanoseconds + elapsed)
        }
        return try body()
    }

    /// One line per operation, most expensive first.
    public var report: String {
        let total = totals.values.reduce(0) { $0 + $1.nanoseconds }
        return totals.sorted { $0.value.nanoseconds > $1.value.nanoseconds }.map { name, value in
            name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: " %7d calls %9.3f s %5.1f%%", value.calls,
                   Double(value.nanoseconds) / 1e9, 100 * Double(value.nanoseconds) / Double(max(total, 1)))
        }.joined(separator: "\n")
    }
}
