import Dispatch
import Foundation
@testable import Plaid
import Tensor
import Testing

/// A CPU stand-in for a GPU that holds the vectors (`ResidentKMeansBackend`) and has the grouped search: the same
/// host arithmetic whether the rows come from the host (the chunked path) or from its "device" copy, so the two
/// paths must give bit-identical centroids and codes. The copy runs on another thread, as the GPU's does.
private final class ResidentRecordingBackend: ForwardingBackend, KMeansAccelerating, CoarseToFineAssigning, ResidentKMeansBackend {
    let forwardee: any Backend = CPUBackend(threads: 1, precision: .fp32)
    /// When false, the rows never fit (the chunked path runs).
    var holdsRows = true
    /// When true, the resident Lloyd run throws (the host path must take over).
    var residentLloydFails = false
    var lloydToo = true
    var residentRuns = 0, residentLloydCalls = 0, residentAssignCalls = 0, hostLloydCalls = 0, hostAssignCalls = 0
    var samplesSeen: [[Int32]?] = []
    var copies: [[Float]] = []

    struct Failure: Error {}

    func maximumProbes(dim: Int, lloyd: Bool) -> Int { lloyd && !lloydToo ? 0 : 8 }

    final class Rows: ResidentKMeansRows, @unchecked Sendable {
        let owner: ResidentRecordingBackend
        let count: Int, dim: Int
        var copy: [Float] = []
        let done = DispatchSemaphore(value: 0)
        var finished = false

        init(owner: ResidentRecordingBackend, points: UnsafePointer<Float>, count: Int, dim: Int) {
            self.owner = owner
            self.count = count
            self.dim = dim
            let source = UncheckedPointer(pointer: points)
            DispatchQueue.global().async {
                self.copy = Array(UnsafeBufferPointer(start: source.pointer, count: count * dim))
                self.done.signal()
            }
        }

        @discardableResult func finishUpload() throws -> Double {
            if !finished { done.wait(); finished = true; owner.copies.append(copy) }
            return 0
        }

        func lloydIterations(sample: [Int32]?, centroids: [Float], iterations: Int, exhaustiveIterations: Int, probes: Int,
                             grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] {
            try finishUpload()
            owner.residentLloydCalls += 1
            owner.samplesSeen.append(sample)
            if owner.residentLloydFails { throw Failure() }
            let rows = sample.map { indices in indices.flatMap { copy[(Int($0) * dim)..<((Int($0) + 1) * dim)] } } ?? copy
            return rows.withUnsafeBufferPointer {
                ResidentRecordingBackend.lloyd($0.baseAddress!, rows.count / dim, dim, centroids, iterations, exhaustiveIterations, probes, grouping)
            }
        }

        func assignNearest(centroids: [Float], groups: CentroidGroupTable?, probes: Int, into codes: UnsafeMutablePointer<Int32>) throws {
            try finishUpload()
            owner.residentAssignCalls += 1
            let labels = copy.withUnsafeBufferPointer { ResidentRecordingBackend.nearest($0.baseAddress!, count, dim, centroids, groups, probes) }
            codes.update(from: labels, count: count)
        }
    }

    struct UncheckedPointer: @unchecked Sendable { let pointer: UnsafePointer<Float> }

    func beginResidentRows(points: UnsafePointer<Float>, count: Int, dim: Int) throws -> (any ResidentKMeansRows)? {
        guard holdsRows else { return nil }
        residentRuns += 1
        return Rows(owner: self, points: points, count: count, dim: dim)
    }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        hostLloydCalls += 1
        return Self.lloyd(points, count, dim, centroids, iterations, .max, 1) { _, _ in nil }
    }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int, exhaustiveIterations: Int,
                         probes: Int, grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] {
        hostLloydCalls += 1
        return Self.lloyd(points, count, dim, centroids, iterations, exhaustiveIterations, probes, grouping)
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        hostAssignCalls += 1
        codes.update(from: Self.nearest(points, count, dim, centroids, nil, 1), count: count)
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable, probes: Int,
                       into codes: UnsafeMutablePointer<Int32>) throws {
        hostAssignCalls += 1
        codes.update(from: Self.nearest(points, count, dim, centroids, groups, probes), count: count)
    }

    static func lloyd(_ points: UnsafePointer<Float>, _ count: Int, _ dim: Int, _ centroids: [Float], _ iterations: Int, _ exhaustiveIterations: Int,
                      _ probes: Int, _ grouping: ([Float], Int) -> CentroidGroupTable?) -> [Float] {
        var current = centroids
        let k = centroids.count / dim
        for iteration in 0..<iterations {
            let groups = iteration >= exhaustiveIterations ? grouping(current, iteration) : nil
            let labels = nearest(points, count, dim, current, groups, probes)
            var sums = [Double](repeating: 0, count: k * dim)
            var sizes = [Int](repeating: 0, count: k)
            for i in 0..<count {
                sizes[Int(labels[i])] += 1
                for j in 0..<dim { sums[Int(labels[i]) * dim + j] += Double(points[i * dim + j]) }
            }
            for c in 0..<k where sizes[c] > 0 {
                for j in 0..<dim { current[c * dim + j] = Float(sums[c * dim + j] / Double(sizes[c])) }
            }
        }
        return current
    }

    /// Nearest centroid (x·c − ½‖c‖², double precision; ties to the smaller index) among the members of each row's
    /// `probes` best non-empty groups (ties to the smaller group), or among all.
    static func nearest(_ points: UnsafePointer<Float>, _ count: Int, _ dim: Int, _ centroids: [Float], _ groups: CentroidGroupTable?,
                        _ probes: Int) -> [Int32] {
        let k = centroids.count / dim
        return centroids.withUnsafeBufferPointer { c in
            func score(_ x: UnsafePointer<Float>, _ table: UnsafePointer<Float>, _ row: Int) -> Double {
                var dot = 0.0, norm = 0.0
                for j in 0..<dim { let w = Double(table[row * dim + j]); dot += Double(x[j]) * w; norm += w * w }
                return dot - 0.5 * norm
            }
            var out = [Int32](repeating: 0, count: count)
            for i in 0..<count {
                let x = points + i * dim
                var best = -Double.infinity, at = Int.max
                func consider(_ m: Int) {
                    let s = score(x, c.baseAddress!, m)
                    if s > best || (s == best && m < at) { best = s; at = m }
                }
                if let groups {
                    groups.centers.withUnsafeBufferPointer { centers in
                        var ranked: [(s: Double, g: Int)] = []
                        for g in 0..<groups.count where groups.offsets[g + 1] > groups.offsets[g] {
                            ranked.append((score(x, centers.baseAddress!, g), g))
                        }
                        ranked.sort { $0.s != $1.s ? $0.s > $1.s : $0.g < $1.g }
                        for (_, g) in ranked.prefix(probes) {
                            for slot in Int(groups.offsets[g])..<Int(groups.offsets[g + 1]) { consider(Int(groups.members[slot])) }
                        }
                    }
                } else {
                    for m in 0..<k { consider(m) }
                }
                out[i] = Int32(at)
            }
            return out
        }
    }
}

/// The device-resident k-means path (`ResidentKMeansBackend`): the sample it gathers is `subsample`'s, and the
/// training and assignment it runs equal the chunked path's bit for bit (same rows, same initial centroids, same
/// iterations, same search); it falls back to the chunked path when the rows do not fit or the device fails.
struct KMeansResidentTests {
    static let dim = 4
    static let points = KMeansAcceleratedTests.clusteredPoints(dim: dim, n: 2_300, centres: 64)
    /// 2 points per centroid: the sample (2,048 rows) is a random subset of the 2,300, so indices matter; 2 Lloyd
    /// iterations (the first grouped one included) keep the double-precision stand-in fast.
    static let config: PlaidConfig = { var c = PlaidConfig(); c.maxPointsPerCentroid = 2; c.kmeansIterations = 2; return c }()

    @Test func sampleIndicesGatherTheSubsample() {
        for (count, limit, seed) in [(3_000, 2_048, UInt64(42)), (50_000, 1_000, 7), (10, 10, 1), (5, 9, 3)] {
            let dim = 3
            let values = (0..<(count * dim)).map { Float($0) }
            let host = KMeans.subsample(values, count: count, dim: dim, limit: limit, seed: KMeans.sampleSeed(seed))
            let indices = KMeans.sampleIndices(count: count, limit: limit, seed: seed)
            #expect((indices == nil) == (count <= limit))
            let gathered = indices.map { $0.flatMap { values[(Int($0) * dim)..<((Int($0) + 1) * dim)] } } ?? values
            #expect(gathered == host)
        }
    }

    @Test(arguments: [(true, true), (false, false)])
    func residentRunEqualsTheChunkedRun(groupedLloyd: Bool, sampleOnDevice: Bool) throws {
        let dim = Self.dim, k = 1_024
        let resident = ResidentRecordingBackend(), chunked = ResidentRecordingBackend()
        resident.lloydToo = groupedLloyd
        chunked.lloydToo = groupedLloyd
        chunked.holdsRows = false
        let a = KMeans.trainAndAssign(points: Self.points, dim: dim, k: k, config: Self.config, backend: resident, sampleOnDevice: sampleOnDevice)
        let b = KMeans.trainAndAssign(points: Self.points, dim: dim, k: k, config: Self.config, backend: chunked, sampleOnDevice: sampleOnDevice)
        #expect(resident.residentRuns == 1 && resident.residentAssignCalls == 1 && resident.hostAssignCalls == 0)
        #expect(resident.copies.count == 1 && resident.copies[0] == Self.points)
        #expect(chunked.residentRuns == 0 && chunked.hostAssignCalls == 1)
        if sampleOnDevice {
            // Lloyd over the sample ran on the resident copy (grouping's own Lloyd over the centroids runs on the host).
            #expect(resident.residentLloydCalls == 1)
            #expect(resident.samplesSeen.count == 1 && resident.samplesSeen[0] == KMeans.sampleIndices(count: 2_300, limit: 2_048, seed: Self.config.seed))
            #expect(a.steps.contains { $0.step == "upload wait" })
        } else {
            // Lloyd on the host-gathered sample, streamed up as without resident rows; the copy only serves the assignment.
            #expect(resident.residentLloydCalls == 0 && resident.hostLloydCalls == chunked.hostLloydCalls)
        }
        #expect(a.centroids.values == b.centroids.values)
        #expect(a.codes == b.codes)
    }

    @Test func failingDeviceFallsBackToTheChunkedPath() throws {
        let dim = Self.dim, k = 1_024
        let failing = ResidentRecordingBackend(), chunked = ResidentRecordingBackend()
        failing.residentLloydFails = true
        chunked.holdsRows = false
        let a = KMeans.trainAndAssign(points: Self.points, dim: dim, k: k, config: Self.config, backend: failing, sampleOnDevice: true)
        let b = KMeans.trainAndAssign(points: Self.points, dim: dim, k: k, config: Self.config, backend: chunked, sampleOnDevice: true)
        #expect(failing.residentLloydCalls == 1 && failing.hostLloydCalls >= 1)
        // Training fell back to the host sample; the assignment still read the resident rows.
        #expect(failing.residentAssignCalls == 1)
        #expect(a.centroids.values == b.centroids.values && a.codes == b.codes)
    }

    /// The codec's training (`trainGrouped` alone, as `ResidualCodec.train` calls it) takes the resident path: on a
    /// training sample no larger than k-means' own (every row, in order: either setting) and, sampling on the
    /// device, on a larger one.
    @Test(arguments: [(64, false), (2, true)])
    func codecTrainingUsesTheResidentRows(pointsPerCentroid: Int, sampleOnDevice: Bool) {
        var config = Self.config
        config.maxPointsPerCentroid = pointsPerCentroid
        let backend = ResidentRecordingBackend(), chunked = ResidentRecordingBackend()
        chunked.holdsRows = false
        let a = KMeans.trainGrouped(points: Self.points, dim: Self.dim, k: 1_024, config: config, backend: backend, sampleOnDevice: sampleOnDevice)
        let b = KMeans.trainGrouped(points: Self.points, dim: Self.dim, k: 1_024, config: config, backend: chunked, sampleOnDevice: sampleOnDevice)
        #expect(backend.residentRuns == 1 && backend.residentLloydCalls == 1 && backend.copies.count == 1)
        #expect(backend.samplesSeen.count == 1 && (backend.samplesSeen[0] == nil) == (pointsPerCentroid * 1_024 >= 2_300))
        #expect(a.centroids == b.centroids && a.groups == b.groups)
    }
}
