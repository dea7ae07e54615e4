import CKernels
import Foundation

/// How many cores this process may actually run on: the smallest of the online cores
/// (`ProcessInfo.activeProcessorCount`), the CPU affinity mask (`taskset`, `docker --cpuset-cpus`, a
/// batch scheduler's pinning) and a cgroup CPU quota (`docker --cpus`, Kubernetes limits).
///
/// Foundation's count ignores both restrictions on Linux: under `taskset -c 2,3` on a 16-core machine it
/// says 16, and every pool sized by it ran 16 threads time-sliced over 2 cores (seen in a search
/// benchmark). Every worker pool sizes itself from this instead.
public enum UsableCores {
    /// The count for this process, computed once.
    public static let count: Int = resolve(online: ProcessInfo.processInfo.activeProcessorCount,
                                           affinity: affinityCount(), quota: cgroupQuotaCores())

    /// The smallest positive limit of the three (at least 1).
    public static func resolve(online: Int, affinity: Int?, quota: Int?) -> Int {
        var cores = max(1, online)
        if let affinity, affinity > 0 { cores = min(cores, affinity) }
        if let quota, quota > 0 { cores = min(cores, quota) }
        return cores
    }

    /// CPUs in the calling thread's affinity mask (nil where unsupported or on failure).
    public static func affinityCount() -> Int? {
        let count = Int(ck_affinity_cpu_count())
        return count > 0 ? count : nil
    }

    /// Whole cores a cgroup CPU quota allows (rounded up), nil without a quota. cgroup v2 `cpu.max`
    /// ("max 100000" = none, "200000 100000" = 2), else v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
    public static func cgroupQuotaCores(root: String = "/sys/fs/cgroup") -> Int? {
        if let line = try? String(contentsOfFile: root + "/cpu.max", encoding: .utf8) {
            return quotaCores(cgroupV2: line)
        }
        if let quota = try? String(contentsOfFile: root + "/cpu/cpu.cfs_quota_us", encoding: .utf8),
           let period = try? String(contentsOfFile: root + "/cpu/cpu.cfs_period_us", encoding: .utf8) {
            return quotaCores(quota: quota, period: period)
        }
        return nil
    }

    /// Parses a cgroup v2 `cpu.max` line.
    public static func quotaCores(cgroupV2 line: String) -> Int? {
        let fields = line.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2 else { return nil }
        return quotaCores(quota: String(fields[0]), period: String(fields[1]))
    }

    /// ceil(quota / period) for positive integers; nil for "max", -1 or anything unreadable.
    public static func quotaCores(quota: String, period: String) -> Int? {
        guard let q = Int(quota.trimmingCharacters(in: .whitespacesAndNewlines)),
              let p = Int(period.trimmingCharacters(in: .whitespacesAndNewlines)), q > 0, p > 0 else { return nil }
        return (q + p - 1) / p
    }
}
