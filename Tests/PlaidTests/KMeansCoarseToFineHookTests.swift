import Foundation
@testable import Plaid
import Tensor
import Testing

/// A CPU stand-in for a GPU with the grouped search (`CoarseToFineAssigning`): host loops in double
/// precision, counting the calls and what they were given.
private final class GroupedRecordingBackend: ForwardingBackend, KMeansAccelerating, CoarseToFineAssigning {
    let forwardee: any Backend = CPUBackend(threads: 1, precision: .fp32)
    var groupedLloydCalls = 0, groupingCalls = 0, groupedAssignCalls = 0, exhaustiveAssignCalls = 0
    var probesSeen: [Int] = [], groupCountsSeen: [Int] = []
    var lloydToo = true
    func maximumProbes(dim: Int, lloyd: Bool) -> Int { lloyd && !lloydToo ? 0 : 8 }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        try lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations, exhaustiveIterations: .max,
                            probes: 1) { _, _ in nil }
    }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int, exhaustiveIterations: Int,
                         probes: Int, grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] {
        if exhaustiveIterations < iterations { groupedLloydCalls += 1 }
        var current = centroids
        let k = centroids.count / dim
        for iteration in 0..<iterations {
            var groups: CentroidGroupTable? = nil
            if iteration >= exhaustiveIterations {
                groupingCalls += 1
                groups = grouping(current, iteration)
                if let groups { groupCountsSeen.append(groups.count); probesSeen.append(probes) }
            }
            let labels = Self.nearest(points, count, dim, current, groups: groups, probes: probes)
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

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        exhaustiveAssignCalls += 1
        codes.update(from: Self.nearest(points, count, dim, centroids, groups: nil, probes: 1), count: count)
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable, probes: Int,
                       into codes: UnsafeMutablePointer<Int32>) throws {
        groupedAssignCalls += 1
        probesSeen.append(probes)
        groupCountsSeen.append(groups.count)
        codes.update(from: Self.nearest(points, count, dim, centroids, groups: groups, probes: probes), count: count)
    }

    /// Nearest centroid (x·c − ½‖c‖²) among the members of each row's `probes` best groups, or all.
    static func nearest(_ points: UnsafePointer<Float>, _ count: Int, _ dim: Int, _ centroids: [Float], groups: CentroidGroupTable?,
                        probes: Int) -> [Int32] {
        func score(_ x: UnsafePointer<Float>, _ table: [Float], _ row: Int) -> Double {
            var dot = 0.0, norm = 0.0
            for j in 0..<dim { let c = Double(table[row * dim + j]); dot += Double(x[j]) * c; norm += c * c }
            return dot - 0.5 * norm
        }
        let k = centroids.count / dim
        return (0..<count).map { i in
            let x = points + i * dim
            var candidates = Array(0..<k)
            if let groups {
                let ranked = (0..<groups.count).filter { groups.offsets[$0 + 1] > groups.offsets[$0] }
                    .map { (g: $0, s: score(x, groups.centers, $0)) }.sorted { $0.s != $1.s ? $0.s > $1.s : $0.g < $1.g }
                candidates = ranked.prefix(probes).flatMap { Int(groups.offsets[$0.g])..<Int(groups.offsets[$0.g + 1]) }
                    .map { Int(groups.members[$0]) }.sorted()
            }
            var best = -Double.infinity, at = 0
            for c in candidates where score(x, centroids, c) > best { best = score(x, centroids, c); at = c }
            return Int32(at)
        }
    }
}

/// With grouped centroids (K ≥ 1,024), `KMeans` gives a backend with the grouped search the CPU path's
/// coarse-to-fine Lloyd iterations (groups of the current centroids each iteration) and the grouped final
/// assignment, and gets what the CPU path gets.
struct KMeansCoarseToFineHookTests {
    @Test func groupedLloydAndAssignmentRunOnTheBackend() throws {
        let dim = 4, n = 2_500, k = 1_024
        let points = KMeansAcceleratedTests.clusteredPoints(dim: dim, n: n, centres: 64)
        let backend = GroupedRecordingBackend()
        let config = PlaidConfig()
        let grouped = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: backend, assignCount: 1_000)
        let cpu = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: nil, assignCount: 1_000)
        #expect(backend.groupedLloydCalls == 1)
        #expect(backend.groupingCalls == config.kmeansIterations)  // every iteration grouped, as the CPU's default
        #expect(backend.groupedAssignCalls == 1 && backend.exhaustiveAssignCalls == 0)
        // Lloyd's iterations probe `KMeans.lloydProbes` groups a point, the final assignment the assigner's 8.
        #expect(Set(backend.probesSeen) == [KMeans.lloydProbes, CentroidAssigner.defaultProbes]
                && Set(backend.groupCountsSeen).allSatisfy { $0 > 1 && $0 <= 32 })
        // Same algorithm as the CPU path (the groups themselves come from Lloyd on the backend): codes
        // within near-ties of the CPU's, centroids as good.
        let same = zip(grouped.codes, cpu.codes).filter { $0 == $1 }.count
        #expect(Double(same) / Double(cpu.codes.count) > 0.97, "\(same) of \(cpu.codes.count) codes equal the CPU path's")
        func cost(_ run: (centroids: HostMatrix, codes: [UInt32], trainSeconds: Double, steps: [(step: String, seconds: Double)])) -> Double {
            var total = 0.0
            for (i, code) in run.codes.enumerated() {
                for j in 0..<dim { let d = Double(points[i * dim + j] - run.centroids.values[Int(code) * dim + j]); total += d * d }
            }
            return total
        }
        let ratio = cost(grouped) / cost(cpu)
        #expect(abs(ratio - 1) < 0.02, "assigned cost ratio backend / CPU \(ratio)")
    }

    /// A backend that prefers the grouped search for assignment only (the GPU's default) gets exhaustive
    /// Lloyd iterations and the grouped final assignment.
    @Test func groupedAssignmentWithExhaustiveLloyd() throws {
        let dim = 4, n = 1_500, k = 1_024
        let points = KMeansAcceleratedTests.clusteredPoints(dim: dim, n: n, centres: 64)
        let backend = GroupedRecordingBackend()
        backend.lloydToo = false
        _ = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: backend, assignCount: 500)
        #expect(backend.groupedLloydCalls == 0 && backend.groupingCalls == 0)
        #expect(backend.groupedAssignCalls == 1 && backend.exhaustiveAssignCalls == 0)
    }
}
