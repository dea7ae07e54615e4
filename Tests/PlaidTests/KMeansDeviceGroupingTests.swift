import Foundation
@testable import Plaid
import Tensor
import Testing

/// A CPU stand-in for a GPU that groups the centroids on its own side in every grouped Lloyd iteration
/// (`DeviceGroupedLloyd`): it follows the plan it is handed with the host's own functions, so the run matches the CPU
/// path bit for bit exactly when the plan names the host's initial group centres and the sample its rows.
private final class GroupingDevice: ForwardingBackend, DeviceGroupedLloyd {
    let forwardee: any Backend = CPUBackend(threads: 1, precision: .fp32)
    let failing: Bool
    var plans: [CentroidGroupingPlan] = [], samples: [[Int]] = [], probes: [Int] = []
    init(failing: Bool) { self.failing = failing }

    struct Failure: Error {}

    func groupsLloydOnDevice(dim: Int) -> Bool { true }
    func maximumProbes(dim: Int, lloyd: Bool) -> Int { lloyd ? 0 : 8 }

    func groupedLloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int,
                                probes: Int, grouping plan: CentroidGroupingPlan) throws -> [Float] {
        plans.append(plan)
        samples.append(sample)
        self.probes.append(probes)
        if failing { throw Failure() }
        let rows = sample.flatMap { row in (0..<dim).map { points[row * dim + $0] } }
        var current = centroids
        var labels = [Int32](repeating: 0, count: sample.count)
        for iteration in 0..<iterations {
            let groups = try #require(KMeans.group(centroids: current, dim: dim, initialCenters: plan.initialCenters[iteration].map { Int($0) }))
            #expect(plan.iterations == KMeans.groupIterations && groups.count <= plan.groups)
            let assigner = CentroidAssigner(centroids: current, dim: dim, groups: groups, probes: probes)
            rows.withUnsafeBufferPointer { r in labels.withUnsafeMutableBufferPointer { assigner.assignOnCPU(r.baseAddress!, count: sample.count, into: $0.baseAddress!) } }
            rows.withUnsafeBufferPointer { KMeans.updateMeans(points: $0.baseAddress!, count: sample.count, dim: dim, labels: labels, centroids: &current) }
        }
        return current
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable, probes: Int,
                       into codes: UnsafeMutablePointer<Int32>) throws {
        let table = CentroidGroups(centers: groups.centers, offsets: groups.offsets, members: groups.members)
        CentroidAssigner(centroids: centroids, dim: dim, groups: table, probes: probes).assignOnCPU(points, count: count, into: codes)
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        CentroidAssigner(centroids: centroids, dim: dim).assignOnCPU(points, count: count, into: codes)
    }

    /// The exhaustive Lloyd the final grouping's centres run (the host's loop: packed nearest, then the means).
    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        let k = centroids.count / dim
        #expect(k < 1_024, "only the group centres' Lloyd is exhaustive here; the centroids' is grouped")
        var current = centroids
        var labels = [Int32](repeating: 0, count: count)
        for _ in 0..<iterations {
            let packed = current.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
            labels.withUnsafeMutableBufferPointer { KMeans.nearestInParallel(packed, points: points, count: count, into: $0.baseAddress!) }
            KMeans.updateMeans(points: points, count: count, dim: dim, labels: labels, centroids: &current)
        }
        return current
    }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int, exhaustiveIterations: Int,
                         probes: Int, grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] {
        throw Failure()
    }
}

struct KMeansDeviceGroupingTests {
    /// 1,024 centroids (32 groups) trained on a 2,048-row sample of 3,000 points: enough groups that a grouping drawn
    /// from other initial centres changes some assignments.
    @Test func groupedLloydRunsWholeOnADeviceThatGroupsAndMatchesTheCPU() throws {
        let dim = 4, n = 3_000, k = 1_024
        var state: UInt64 = 5
        let points = (0..<(n * dim)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        var config = PlaidConfig()
        config.maxPointsPerCentroid = 2
        let device = GroupingDevice(failing: false)
        let onDevice = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: device, assignCount: 900)
        let cpu = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: nil, assignCount: 900)
        #expect(device.plans.count == 1 && device.probes == [KMeans.lloydProbes])
        let plan = try #require(device.plans.first)
        #expect(plan.groups == 32 && plan.initialCenters.count == config.kmeansIterations)
        #expect(plan.initialCenters.allSatisfy { $0.count == 32 && Set($0).count == 32 && $0.allSatisfy { (0..<Int32(k)).contains($0) } })
        #expect(Set(plan.initialCenters.map { $0 }).count == config.kmeansIterations, "each iteration draws its own initial centres")
        #expect(device.samples.first?.count == 2_048)
        let sameCentroids = onDevice.centroids.values == cpu.centroids.values, sameCodes = onDevice.codes == cpu.codes
        #expect(sameCentroids, "the device's grouped Lloyd is not the CPU's")
        #expect(sameCodes, "the codes differ from the CPU path's")

        // The plan matters: the same device handed one iteration's centres for every iteration trains other centroids.
        let reused = CentroidGroupingPlan(groups: plan.groups, iterations: plan.iterations,
                                          initialCenters: Array(repeating: plan.initialCenters[0], count: plan.initialCenters.count))
        let sample = try #require(device.samples.first)
        let start = (0..<k).map { i in Array(points[(sample[i] * dim)..<(sample[i] * dim + dim)]) }.flatMap { $0 }
        let other = try points.withUnsafeBufferPointer {
            try GroupingDevice(failing: false).groupedLloydIterations(points: $0.baseAddress!, sample: sample, dim: dim, centroids: start,
                                                                      iterations: config.kmeansIterations, probes: KMeans.lloydProbes, grouping: reused)
        }
        let followed = try points.withUnsafeBufferPointer {
            try GroupingDevice(failing: false).groupedLloydIterations(points: $0.baseAddress!, sample: sample, dim: dim, centroids: start,
                                                                      iterations: config.kmeansIterations, probes: KMeans.lloydProbes, grouping: plan)
        }
        let differs = other != followed
        #expect(differs, "a plan with other initial centres trained the same centroids: the test cannot tell plans apart")

        // A device that fails hands the run back to the host (its Lloyd, the device's exhaustive assignments).
        let failing = GroupingDevice(failing: true)
        let fallback = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: failing, assignCount: 900)
        #expect(failing.plans.count == 1)
        #expect(fallback.centroids.values.count == k * dim && fallback.centroids.values.allSatisfy(\.isFinite))
        #expect(fallback.codes.count == 900 && fallback.codes.allSatisfy { $0 < UInt32(k) })
    }
}
