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

    public func lloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        try members[0].lloydIterations(points: points, sample: sample, dim: dim, centroids: centroids, iterations: iterations)
    }

    public func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float],
                              into codes: UnsafeMutablePointer<Int32>) throws {
        try SplitAssignment.assign(members: members, points: points, count: count, dim: dim, centroids: centroids, into: codes,
                                   minimumRowsPerMember: minimumRowsPerMember)
    }
}

/// The codec's assignment and residual packing split the same way, where every member packs on its device.
extension SplitKMeansBackend: ResidualQuantizing {
    public var packsResiduals: Bool { members.allSatisfy { ($0 as? any ResidualQuantizing)?.packsResiduals == true } }

    public func assignAndQuantize(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable?,
                                  probes: Int, cutoffs: [Float], nbits: Int, codes: UnsafeMutablePointer<Int32>,
                                  packed: UnsafeMutablePointer<UInt8>) throws {
        guard packsResiduals else { throw SplitKMeansError.unsupported("\(name): not every device packs residuals") }
        let quantizers = members.compactMap { $0 as? any ResidualQuantizing }
        let rows = UnsafeQuantizerRows(points: points, codes: codes, packed: packed)
        let bytes = ResidualPacking.bytesPerRow(dim: dim, nbits: nbits)
        try SplitAssignment.run(members: quantizers, count: count, minimumRowsPerMember: minimumRowsPerMember) { member, slice in
            try member.assignAndQuantize(points: rows.points + slice.lowerBound * dim, count: slice.count, dim: dim, centroids: centroids,
                                         groups: groups, probes: probes, cutoffs: cutoffs, nbits: nbits, codes: rows.codes + slice.lowerBound,
                                         packed: rows.packed + slice.lowerBound * bytes)
        }
    }

    /// Host rows and outputs the workers share: each writes only its own slice.
    private struct UnsafeQuantizerRows: @unchecked Sendable {
        let points: UnsafePointer<Float>
        let codes: UnsafeMutablePointer<Int32>
        let packed: UnsafeMutablePointer<UInt8>
    }
}

public enum SplitKMeansError: Error, CustomStringConvertible {
    case unsupported(String)
    public var description: String { switch self { case .unsupported(let what): return what } }
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
        let rows = UnsafeRows(points: points, codes: codes)
        try run(members: members, count: count, minimumRowsPerMember: minimumRowsPerMember) { member, slice in
            try member.assignNearest(points: rows.points + slice.lowerBound * dim, count: slice.count, dim: dim, centroids: centroids,
                                     into: rows.codes + slice.lowerBound)
        }
    }

    /// Runs `work(member, slice)` for contiguous slices of `0..<count`, slice `i` on `members[i]`, all at once
    /// (one thread a member); a slice whose member fails is redone, after the others, by a member that succeeded;
    /// when every member fails the first error is thrown. `work` writes only its own slice's outputs.
    public static func run<Member>(members: [Member], count: Int, minimumRowsPerMember: Int,
                                   _ work: @escaping @Sendable (Member, Range<Int>) throws -> Void) throws {
        let parts = slices(count: count, members: members.count, minimumRowsPerMember: minimumRowsPerMember)
        guard parts.count > 1 else {
            if count > 0 { try work(members[0], 0..<count) }
            return
        }
        let failures = Failures(count: parts.count)
        let shared = UncheckedMembers(members: members)
        DispatchQueue.concurrentPerform(iterations: parts.count) { p in
            do { try work(shared.members[p], parts[p]) } catch { failures.record(error, at: p) }
        }
        let failed = failures.all.indices.filter { failures.all[$0] != nil }
        guard !failed.isEmpty else { return }
        guard let healthy = parts.indices.first(where: { failures.all[$0] == nil }) else { throw failures.all[0]! }
        for p in failed { try work(members[healthy], parts[p]) }
    }

    /// Host rows and codes the workers share: each writes only its own rows.
    private struct UnsafeRows: @unchecked Sendable {
        let points: UnsafePointer<Float>
        let codes: UnsafeMutablePointer<Int32>
    }

    /// The members, each used by exactly one worker at a time.
    private struct UncheckedMembers<Member>: @unchecked Sendable { let members: [Member] }

    /// One failure slot a slice, written by that slice's worker.
    private final class Failures: @unchecked Sendable {
        private(set) var all: [(any Error)?]
        private let lock = NSLock()

        init(count: Int) { all = Array(repeating: nil, count: count) }

        func record(_ error: any Error, at index: Int) {
            lock.withLock { all[index] = error }
        }
    }
}
