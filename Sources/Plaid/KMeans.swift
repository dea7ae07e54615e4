import Tensor

/// k-means as the reference trains its centroids (fastkmeans): random initial points, a few Lloyd
/// iterations on at most `maxPointsPerCentroid · k` points, then L2-normalised centroids.
public enum KMeans {
    /// Trains `k` unit centroids on the rows of `points` (row-major `count × dim`).
    public static func train(points: [Float], dim: Int, k: Int, config: PlaidConfig, backend: (any Backend)?) -> HostMatrix {
        let count = points.count / dim
        precondition(count > 0 && k > 0, "KMeans.train needs points and k > 0")
        let k = min(k, count)
        var sample = points
        var sampleCount = count
        let limit = k * max(1, config.maxPointsPerCentroid)
        if count > limit {
            var generator = SplitMix64(seed: config.seed ^ 0x5A5A)
            var order = Array(0..<count)
            for i in 0..<limit {
                let j = Int.random(in: i..<count, using: &generator)
                order.swapAt(i, j)
            }
            sample = [Float](repeating: 0, count: limit * dim)
            for i in 0..<limit {
                let source = order[i] * dim
                for d in 0..<dim { sample[i * dim + d] = points[source + d] }
            }
            sampleCount = limit
        }
        var centroids = lloyd(points: sample, count: sampleCount, dim: dim, k: k, iterations: config.kmeansIterations,
                              seed: config.seed, backend: backend)
        LinearAlgebra.normalizeRows(&centroids, cols: dim)
        return HostMatrix(rows: k, cols: dim, values: centroids)
    }

    /// Plain Lloyd iterations from `k` distinct random points; empty clusters keep their centroid.
    static func lloyd(points: [Float], count: Int, dim: Int, k: Int, iterations: Int, seed: UInt64,
                      backend: (any Backend)?) -> [Float] {
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<count)
        for i in 0..<k {
            let j = Int.random(in: i..<count, using: &generator)
            order.swapAt(i, j)
        }
        var centroids = [Float](repeating: 0, count: k * dim)
        for i in 0..<k {
            for d in 0..<dim { centroids[i * dim + d] = points[order[i] * dim + d] }
        }
        for _ in 0..<max(0, iterations) {
            let assigner = CentroidAssigner(centroids: centroids, dim: dim)
            let labels = points.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: count, backend: backend) }
            var sums = [Float](repeating: 0, count: k * dim)
            var sizes = [Int](repeating: 0, count: k)
            points.withUnsafeBufferPointer { p in
                sums.withUnsafeMutableBufferPointer { s in
                    for i in 0..<count {
                        let c = Int(labels[i])
                        sizes[c] += 1
                        let target = s.baseAddress! + c * dim
                        let source = p.baseAddress! + i * dim
                        for d in 0..<dim { target[d] += source[d] }
                    }
                }
            }
            for c in 0..<k where sizes[c] > 0 {
                let inverse = 1 / Float(sizes[c])
                for d in 0..<dim { centroids[c * dim + d] = sums[c * dim + d] * inverse }
            }
        }
        return centroids
    }
}
