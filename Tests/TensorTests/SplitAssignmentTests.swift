import Foundation
import Tensor
import Testing

/// A stand-in device for split assignment: brute-force nearest centroid, recording the rows it was
/// given, or failing every call.
final class RecordingAssigner: NearestRowAssigning, @unchecked Sendable {
    let failing: Bool
    private let lock = NSLock()
    private(set) var calls: [Int] = []  // rows per call
    init(failing: Bool = false) { self.failing = failing }
    struct Failure: Error {}

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        lock.withLock { calls.append(count) }
        if failing { throw Failure() }
        let k = centroids.count / dim
        for i in 0..<count {
            var best = Float.infinity
            for c in 0..<k {
                var distance: Float = 0
                for d in 0..<dim { let diff = points[i * dim + d] - centroids[c * dim + d]; distance += diff * diff }
                if distance < best { best = distance; codes[i] = Int32(c) }
            }
        }
    }
}

@Suite struct SplitAssignmentTests {
    let dim = 8, k = 13

    func data(_ count: Int) -> (points: [Float], centroids: [Float]) {
        var generator = SystemRandomNumberGenerator()
        let points = (0..<(count * dim)).map { _ in Float.random(in: -1...1, using: &generator) }
        let centroids = (0..<(k * dim)).map { _ in Float.random(in: -1...1, using: &generator) }
        return (points, centroids)
    }

    func assign(_ members: [RecordingAssigner], _ points: [Float], _ centroids: [Float], minimum: Int) throws -> [Int32] {
        let count = points.count / dim
        var codes = [Int32](repeating: -1, count: count)
        try points.withUnsafeBufferPointer { p in
            try codes.withUnsafeMutableBufferPointer { c in
                try SplitAssignment.assign(members: members, points: p.baseAddress!, count: count, dim: dim, centroids: centroids,
                                           into: c.baseAddress!, minimumRowsPerMember: minimum)
            }
        }
        return codes
    }

    @Test func slicesCoverEveryRowOnceAndRespectTheMinimum() {
        for (count, members, minimum) in [(1000, 4, 100), (1001, 3, 1), (250, 4, 100), (99, 4, 100), (0, 4, 1), (7, 8, 1)] {
            let slices = SplitAssignment.slices(count: count, members: members, minimumRowsPerMember: minimum)
            #expect(slices.count <= members)
            #expect(slices.map(\.count).reduce(0, +) == count)
            for (a, b) in zip(slices, slices.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
            if slices.count > 1 { #expect(slices.allSatisfy { $0.count >= minimum }) }
            if count > 0 { #expect(slices.first?.lowerBound == 0) }
        }
    }

    @Test func splitCodesEqualOneDevicesAndEveryDeviceWorks() throws {
        let (points, centroids) = data(4000)
        let single = RecordingAssigner()
        let reference = try assign([single], points, centroids, minimum: 1)
        let members = (0..<4).map { _ in RecordingAssigner() }
        #expect(try assign(members, points, centroids, minimum: 500) == reference)
        #expect(members.map { $0.calls } == [[1000], [1000], [1000], [1000]])
        // Too few rows to split: the first device alone.
        let few = (0..<4).map { _ in RecordingAssigner() }
        #expect(try assign(few, Array(points.prefix(300 * dim)), centroids, minimum: 500) == Array(reference.prefix(300)))
        #expect(few.map { $0.calls.count } == [1, 0, 0, 0])
    }

    @Test func aFailedDevicesSliceIsRedoneByAHealthyOne() throws {
        let (points, centroids) = data(3000)
        let reference = try assign([RecordingAssigner()], points, centroids, minimum: 1)
        let members = [RecordingAssigner(failing: true), RecordingAssigner(), RecordingAssigner(failing: true)]
        #expect(try assign(members, points, centroids, minimum: 100) == reference)
        #expect(members[1].calls == [1000, 1000, 1000])  // its own slice, then the two failed ones
        #expect(throws: (any Error).self) {
            try assign([RecordingAssigner(failing: true), RecordingAssigner(failing: true)], points, centroids, minimum: 100)
        }
    }
}
