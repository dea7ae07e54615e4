/// How "nearest" is measured when vectors are assigned to centroids.
public enum CentroidMetric: Sendable, Equatable {
    /// Largest `x · c` (PLAID's assignment; the same as cosine when centroids are unit length).
    case innerProduct
    /// Smallest `‖x − c‖²`, computed as the largest `x · c − ½‖c‖²`.
    case euclidean
}

/// A backend that assigns vectors to centroids where the vectors already are (on CUDA a fused kernel:
/// score tiles and a running argmax in registers), so that only one `Int32` code per vector comes back.
/// Backends without it get the portable default of `Backend.nearestCentroids`.
public protocol NearestCentroidAccelerating: Backend {
    func acceleratedNearestCentroids(_ x: any DeviceMatrix, centroids: any DeviceMatrix, metric: CentroidMetric) throws -> [Int32]
}

extension Backend {
    /// For each row of `x` (`n × d`), the index of its nearest row of `centroids` (`k × d`); ties go
    /// to the smaller index. Index building (k-means, codec assignment) calls this with chunks of
    /// rows: the portable path materialises the `n × k` score matrix on the host.
    public func nearestCentroids(_ x: any DeviceMatrix, centroids: any DeviceMatrix,
                                 metric: CentroidMetric = .innerProduct) throws -> [Int32] {
        if let accelerated = self as? any NearestCentroidAccelerating {
            return try accelerated.acceleratedNearestCentroids(x, centroids: centroids, metric: metric)
        }
        precondition(x.cols == centroids.cols, "nearestCentroids: \(x.cols)-d vectors against \(centroids.cols)-d centroids")
        let scores = try download(linear(x, weight: centroids, bias: nil, activation: .none, residual: nil))
        var offsets = [Float](repeating: 0, count: centroids.rows)
        if metric == .euclidean {
            let host = try download(centroids)
            for k in 0..<host.rows {
                var sum: Float = 0
                for v in host.row(k) { sum += v * v }
                offsets[k] = -0.5 * sum
            }
        }
        return scores.values.withUnsafeBufferPointer { values in
            (0..<scores.rows).map { row -> Int32 in
                let base = row * scores.cols
                var best = -Float.infinity
                var index = 0
                for k in 0..<scores.cols {
                    let score = values[base + k] + offsets[k]
                    if score > best { best = score; index = k }
                }
                return Int32(index)
            }
        }
    }
}
