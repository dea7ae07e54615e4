import Foundation

/// Wall-clock seconds per named stage of an index build (what `colgrep bench build` prints).
struct StageClock {
    private(set) var laps: [(stage: String, seconds: Double)] = []
    private var last = ContinuousClock.now

    /// Records the time since the previous lap (or the start) under `stage`.
    mutating func lap(_ stage: String) {
        let now = ContinuousClock.now
        let elapsed = now - last
        laps.append((stage, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        last = now
    }
}
