import Foundation

/// `COLGREP_KM_TRACE=1`: a k-means call's steps on stderr (`km-trace d=… n=… step seconds`), the device synchronized
/// at each mark so a step's time is its own. Off, a mark costs nothing and synchronizes nothing.
struct KMeansStepTrace {
    static let enabled = ProcessInfo.processInfo.environment["COLGREP_KM_TRACE"] == "1"
    let context: CUDAContext
    let dim: Int, count: Int
    private var clock = ContinuousClock.now

    init(context: CUDAContext, dim: Int, count: Int) {
        self.context = context
        self.dim = dim
        self.count = count
    }

    mutating func mark(_ step: @autoclosure () -> String) throws {
        guard Self.enabled else { return }
        try context.synchronize()
        let elapsed = ContinuousClock.now - clock
        FileHandle.standardError.write(Data(String(format: "km-trace d=%d n=%d %@ %.4f s\n", dim, count, step(),
            Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18).utf8))
        clock = ContinuousClock.now
    }
}
