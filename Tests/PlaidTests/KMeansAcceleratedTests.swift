import Foundation
import Plaid
import Tensor
import Testing

/// A CPU stand-in for a GPU that runs whole Lloyd iterations and bulk assignment (`KMeansAccelerating`):
/// plain host loops, with call counts, or failing every call to exercise the fallback.
private final class RecordingKMeansBackend: KMeansAccelerating {
    let inner = CPUBackend(threads: 1, precision: .fp32)
    let failing: Bool
    var lloydCalls = 0, assignCalls = 0, assignedRows = 0
    /// The samples handed over as row indices (`lloydIterations(points:sample:...)`), gathered here as a device would.
    var gatheredSamples: [[Int]] = []
    init(failing: Bool) { self.failing = failing }

    struct Failure: Error {}

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        lloydCalls += 1
        if failing { throw Failure() }
        var current = centroids
        let k = centroids.count / dim
        var labels = [Int32](repeating: 0, count: count)
        for _ in 0..<iterations {
            try current.withUnsafeBufferPointer { try nearest(points, count, dim, $0.baseAddress!, k, into: &labels) }
            var sums = [Float](repeating: 0, count: k * dim)
            var sizes = [Int](repeating: 0, count: k)
            for i in 0..<count {
                let c = Int(labels[i])
                sizes[c] += 1
                for j in 0..<dim { sums[c * dim + j] += points[i * dim + j] }
            }
            for c in 0..<k where sizes[c] > 0 {
                for j in 0..<dim { current[c * dim + j] = sums[c * dim + j] * (1 / Float(sizes[c])) }
            }
        }
        return current
    }

    func lloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        gatheredSamples.append(sample)
        let rows = sample.flatMap { row in (0..<dim).map { points[row * dim + $0] } }
        return try rows.withUnsafeBufferPointer {
            try lloydIterations(points: $0.baseAddress!, count: sample.count, dim: dim, centroids: centroids, iterations: iterations)
        }
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        assignCalls += 1
        assignedRows += count
        if failing { throw Failure() }
        var labels = [Int32](repeating: 0, count: count)
        try centroids.withUnsafeBufferPointer { try nearest(points, count, dim, $0.baseAddress!, centroids.count / dim, into: &labels) }
        codes.update(from: labels, count: count)
    }

    private func nearest(_ points: UnsafePointer<Float>, _ count: Int, _ dim: Int, _ c: UnsafePointer<Float>, _ k: Int, into labels: inout [Int32]) throws {
        for i in 0..<count {
            var best = Float.infinity
            for j in 0..<k {
                var distance: Float = 0
                for d in 0..<dim { let diff = points[i * dim + d] - c[j * dim + d]; distance += diff * diff }
                if distance < best { best = distance; labels[i] = Int32(j) }
            }
        }
    }

    var name: String { "recording k-means" }
    func upload(_ matrix: HostMatrix) throws -> any DeviceMatrix { try inner.upload(matrix) }
    func download(_ matrix: any DeviceMatrix) throws -> HostMatrix { try inner.download(matrix) }
    func download(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> [HostMatrix] { try inner.download(matrix, rowGroups: rowGroups) }
    func downloadBlock(_ matrix: any DeviceMatrix, rowGroups: [[Int]]) throws -> HostRowBlock { try inner.downloadBlock(matrix, rowGroups: rowGroups) }
    func gather(_ table: any DeviceMatrix, ids: [Int32]) throws -> any DeviceMatrix { try inner.gather(table, ids: ids) }
    func layerNorm(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        try inner.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }
    func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, activation: Activation,
                residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        try inner.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
    }
    func geglu(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try inner.geglu(x) }
    func add(_ a: any DeviceMatrix, _ b: any DeviceMatrix) throws -> any DeviceMatrix { try inner.add(a, b) }
    func attention(_ qkv: any DeviceMatrix, batch: PackedBatch, heads: Int, headDim: Int, rotary: Rotary?, window: Int?) throws -> any DeviceMatrix {
        try inner.attention(qkv, batch: batch, heads: heads, headDim: headDim, rotary: rotary, window: window)
    }
    func l2Normalize(_ x: any DeviceMatrix) throws -> any DeviceMatrix { try inner.l2Normalize(x) }
}

/// `KMeans` hands whole Lloyd runs and bulk assignment to a backend that offers them, gets the same
/// centroids as the CPU path on well-separated data, and falls back to the CPU when the backend fails.
struct KMeansAcceleratedTests {
    /// 2,000 points around 16 far-apart centres (no point near a boundary: every path agrees exactly).
    static func clusteredPoints(dim: Int, n: Int, centres: Int) -> [Float] {
        var state: UInt64 = 11
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let c = (0..<(centres * dim)).map { _ in 4 * next() }
        return (0..<n).flatMap { i in (0..<dim).map { c[(i % centres) * dim + $0] + 0.05 * next() } }
    }

    @Test func lloydAndAssignmentRunOnTheBackend() throws {
        let dim = 8, n = 2_000, k = 16
        let points = Self.clusteredPoints(dim: dim, n: n, centres: k)
        let backend = RecordingKMeansBackend(failing: false)
        let accelerated = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: backend, assignCount: 700)
        let cpu = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: nil, assignCount: 700)
        #expect(backend.lloydCalls == 1)
        #expect(backend.assignCalls == 1 && backend.assignedRows == 700)
        let difference = zip(accelerated.centroids.values, cpu.centroids.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference < 1e-4, "centroids differ from the CPU path's by \(difference)")
        #expect(accelerated.codes == cpu.codes)
    }

    /// With more points than the sample holds, the backend is handed the sample's row indices and gathers them itself:
    /// the same rows in the same order as the host's sample, so the same centroids and codes as the CPU path; a failing
    /// backend's sample falls back to the host path.
    @Test func theSampleIsGatheredByTheBackend() throws {
        let dim = 8, n = 2_000, k = 16
        let points = Self.clusteredPoints(dim: dim, n: n, centres: k)
        var config = PlaidConfig()
        config.maxPointsPerCentroid = 40  // a sample of 640 of the 2,000 rows
        let backend = RecordingKMeansBackend(failing: false)
        let accelerated = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: backend, assignCount: 700)
        let cpu = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: nil, assignCount: 700)
        #expect(backend.gatheredSamples.count == 1 && backend.lloydCalls == 1)
        let sample = backend.gatheredSamples.first ?? []
        #expect(sample.count == 640 && Set(sample).count == 640 && sample.allSatisfy { (0..<n).contains($0) })
        let difference = zip(accelerated.centroids.values, cpu.centroids.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference == 0, "centroids differ from the CPU path's by \(difference)")
        #expect(accelerated.codes == cpu.codes)

        let failing = RecordingKMeansBackend(failing: true)
        let fallback = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: failing, assignCount: 700)
        #expect(failing.gatheredSamples.count == 1)
        #expect(fallback.centroids.values == cpu.centroids.values && fallback.codes == cpu.codes)
    }

    @Test func aFailingBackendFallsBackToTheCPU() throws {
        let dim = 8, n = 2_000, k = 16
        let points = Self.clusteredPoints(dim: dim, n: n, centres: k)
        let backend = RecordingKMeansBackend(failing: true)
        let fallback = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: backend, assignCount: 700)
        let cpu = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: nil, assignCount: 700)
        #expect(backend.lloydCalls == 1 && backend.assignCalls > 1)  // every Lloyd assignment retried it, then the final one
        let difference = zip(fallback.centroids.values, cpu.centroids.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference < 1e-4, "centroids differ from the CPU path's by \(difference)")
        #expect(fallback.codes == cpu.codes)
    }
}
