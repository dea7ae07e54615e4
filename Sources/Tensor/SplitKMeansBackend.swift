import Foundation

/// Several devices as one k-means backend (issue #9: k-means and codec assignment over every GPU).
/// Bulk assignment is split into contiguous slices, one per device, run at once; every row's code is
/// computed by exactly one device with the same kernel, so the result equals one device's. Lloyd
/// iterations run on the first device only: they train on a sample (at most 32 points per centroid,
/// about 1M rows at the largest K) that one device finishes in a fraction of a second, while
/// assignment covers every vector of the corpus. Other operations go to the first device.
public final class SplitKMeansBackend: ForwardingBackend, KMeansAccelerating, @unchecked Sendable {
    /// The devices, the first one doing everything but split assignment.
    public let members: [any KMeansAccelerating]
    /// A device gets a slice only when each slice keeps at least this many rows (below it, the fixed
    /// cost of a call on one more device outweighs its share).
    public let minimumRowsPerMember: Int

    public init(members: [any KMeansAccelerating], minimumRowsPerMember: Int = 32_768) {
        precondition(!members.isEmpty, "SplitKMeansBackend needs at least one device")
        self.members = members
        self.minimumRowsPerMember = max(1, minimumRowsPerMember)
    }

    public var forwardee: any Backend { members[0] }
    public var name: String { members.map(\.name).joined(separator: " + ") }

    public func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        try members[0].lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations)
    }

    public func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float],
                              into codes: UnsafeMutablePointer<Int32>) throws {
        try SplitAssignment.assign(members: members, points: points, count: count, dim: dim, centroids: centroids, into: codes,
                                   minimumRowsPerMember: minimumRowsPerMember)
    }
}

/// Assignment of one set of rows split over several assigners.
public enum SplitAssignment {
    /// Contiguous, near-equal slices of `0..<count` for at most `members` assigners, each at least
    /// `minimumRowsPerMember` rows long (one slice when `count` is smaller).
    public static func slices(count: Int, members: Int, minimumRowsPerMember: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let parts = max(1, min(members, count / max(1, minimumRowsPerMember)))
        return (0..<parts).map { p in (count * p / parts)..<(count * (p + 1) / parts) }
    }

    /// Assigns the `count` rows at `points`: slice `i` on `members[i]`, all at once, each member used by
    /// one thread. A slice whose member fails is redone, after the others, by a member that succeeded;
    /// when every member fails the first error is thrown (the caller falls back to the CPU).
    public static func assign(members: [any NearestRowAssigning], points: UnsafePointer<Float>, count: Int, dim: Int,
                              centroids: [Float], into codes: UnsafeMutablePointer<Int32>, minimumRowsPerMember: Int) throws {
        let parts = slices(count: count, members: members.count, minimumRowsPerMember: minimumRowsPerMember)
        guard parts.count > 1 else {
            if count > 0 { try members[0].assignNearest(points: points, count: count, dim: dim, centroids: centroids, into: codes) }
            return
        }
        let shared = Shared(members: members, points: points, codes: codes, failures: Array(repeating: nil, count: parts.count))
        DispatchQueue.concurrentPerform(iterations: parts.count) { p in
            let rows = parts[p]
            do {
                try shared.members[p].assignNearest(points: shared.points + rows.lowerBound * dim, count: rows.count, dim: dim,
                                                    centroids: centroids, into: shared.codes + rows.lowerBound)
            } catch {
                shared.record(error, at: p)
            }
        }
        let failed = shared.failures.indices.filter { shared.failures[$0] != nil }
        guard !failed.isEmpty else { return }
        guard let healthy = parts.indices.first(where: { shared.failures[$0] == nil }) else { throw shared.failures[0]! }
        for p in failed {
            let rows = parts[p]
            try members[healthy].assignNearest(points: points + rows.lowerBound * dim, count: rows.count, dim: dim, centroids: centroids,
                                               into: codes + rows.lowerBound)
        }
    }

    /// What the workers share: each writes only its own rows of `codes` and its own failure slot.
    private final class Shared: @unchecked Sendable {
        let members: [any NearestRowAssigning]
        let points: UnsafePointer<Float>
        let codes: UnsafeMutablePointer<Int32>
        private(set) var failures: [(any Error)?]
        private let lock = NSLock()

        init(members: [any NearestRowAssigning], points: UnsafePointer<Float>, codes: UnsafeMutablePointer<Int32>, failures: [(any Error)?]) {
            self.members = members
            self.points = points
            self.codes = codes
            self.failures = failures
        }

        func record(_ error: any Error, at index: Int) {
            lock.withLock { failures[index] = error }
        }
    }
}
