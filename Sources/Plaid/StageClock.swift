import Foundation
import Tensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock and process CPU seconds per named stage of an index build or write (what
/// `colgrep bench build` prints; CPU time is the steadier figure on a shared machine).
struct StageClock {
    private(set) var laps: [(stage: String, seconds: Double)] = []
    private(set) var cpuLaps: [(stage: String, seconds: Double)] = []
    private var last = ContinuousClock.now
    private var lastCPU = ProcessCPU.seconds()

    /// Records the time since the previous lap (or the start) under `stage`.
    mutating func lap(_ stage: String) {
        let now = ContinuousClock.now, cpu = ProcessCPU.seconds()
        let elapsed = now - last
        laps.append((stage, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        cpuLaps.append((stage, cpu - lastCPU))
        last = now
        lastCPU = cpu
    }
}
