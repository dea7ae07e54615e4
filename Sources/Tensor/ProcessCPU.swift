import Foundation

/// User + system CPU seconds of the whole process so far (benchmarks and stage clocks report CPU beside
/// wall time: on a shared machine CPU time is the steadier figure).
public enum ProcessCPU {
    public static func seconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
