import Plaid
import Tensor
import Testing

/// `KMeans.trainAndAssign` (what `bench gpu-kmeans` times): k unit centroids, and each assigned point's
/// code is its nearest centroid, on the CPU path and through a backend's `nearestCentroids`.
struct KMeansTrainAndAssignTests {
    @Test(arguments: [false, true])
    func codesAreTheNearestTrainedCentroid(throughBackend: Bool) throws {
        let dim = 8, n = 2_000, k = 16
        var state: UInt64 = 3
        let points = (0..<(n * dim)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let backend: (any Backend)? = throughBackend ? CPUBackend(threads: 1, precision: .fp32) : nil
        let result = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: PlaidConfig(), backend: backend, assignCount: 500)
        #expect(result.centroids.rows == k && result.centroids.cols == dim)
        #expect(result.codes.count == 500)
        let c = result.centroids.values
        for i in 0..<500 {
            func distance(_ j: Int) -> Float { (0..<dim).reduce(0) { $0 + (points[i * dim + $1] - c[j * dim + $1]) * (points[i * dim + $1] - c[j * dim + $1]) } }
            let best = (0..<k).map(distance).min()!
            #expect(distance(Int(result.codes[i])) <= best + 1e-4)
        }
    }
}
