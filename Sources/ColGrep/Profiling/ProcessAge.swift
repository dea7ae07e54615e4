import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Seconds since this process started, from the kernel's record of its start (`/proc/self/stat`, in clock
/// ticks since boot: 10 ms steps). The profile's clock starts at its first use, so without this the time a
/// process spends before it (start-up, a BLAS relaunch) went unseen, and the time after the report is the
/// process wall minus the age the report prints: on the four-GPU machine a user's `init` ended 0.33–0.39 s
/// after its report, and ending it with `_exit` (no library destructors) did not shorten that: it is the
/// kernel's teardown of the process and its GPU state (docs/PERFORMANCE.md, session 18).
enum ProcessAge {
    /// nil where /proc is missing or unreadable.
    static func seconds() -> Double? {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3; the start time is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        let perSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        var now = timespec()
        guard perSecond > 0, clock_gettime(CLOCK_BOOTTIME, &now) == 0 else { return nil }
        return max(0, Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9 - ticks / perSecond)
        #else
        return nil
        #endif
    }
}
