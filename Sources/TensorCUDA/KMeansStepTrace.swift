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
        FileHandle.standardError.write(Data(String(format: "km-trace d=%d n=%d %@ %.4f s\n", dim, count, step(), Self.seconds(elapsed)).utf8))
        clock = ContinuousClock.now
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    /// A line of what the grouped search just searched (traced runs only): the groups' sizes and the fine step's work,
    /// Σ over groups of its probing entries (rounded up to 128-entry tiles) × its members: what its time follows.
    func describeGroups(_ label: String, offsets: [Int32], entries: [Int32]) {
        guard Self.enabled, offsets.count >= 2 else { return }
        let sizes = zip(offsets.dropFirst(), offsets).map { Int($0 - $1) }
        var work = 0
        for (members, probing) in zip(sizes, entries.map { Int($0) }) { work += (probing + 127) / 128 * 128 * members }
        let sorted = sizes.sorted()
        FileHandle.standardError.write(Data(String(format: "km-trace d=%d n=%d %@ groups %d (empty %d), members median %d max %d, fine work %.2f G\n",
            dim, count, label, sizes.count, sizes.filter { $0 == 0 }.count, sorted[sorted.count / 2], sorted.last ?? 0, Double(work) / 1e9).utf8))
    }
}

