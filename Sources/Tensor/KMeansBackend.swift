/// A backend that runs k-means where its arithmetic is: whole Lloyd iterations (assignment, per-centroid
/// sums and counts, the centroid update) stay on the device, and bulk assignment of host vectors streams
/// them up in chunks, so only centroids and one code per vector come back. Plaid's `KMeans` uses it when
/// the backend it is given offers it; the CPU path is unchanged.
public protocol KMeansAccelerating: Backend, NearestRowAssigning {
    /// `iterations` Lloyd iterations over the `count` rows (`dim` floats each, row-major) at `points`,
    /// starting from `centroids` (`k × dim`): each point goes to its nearest centroid (smallest
    /// `‖x − c‖²`, ties to the smaller index), each centroid with points moves to their mean, and an
    /// empty one stays where it is. Returns the final `k × dim` centroids.
    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float]

    /// The same iterations over the rows `sample` of `points` (indices into its rows, taken in this order), gathered
    /// by the backend itself: a device gathers them straight into its upload staging, so the sample never exists as
    /// a host array (10M 128-d vectors: a 512 MB array written, then read again for the upload).
    func lloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int) throws -> [Float]
}

extension KMeansAccelerating {
    /// Gathers the sample on the host, then runs the iterations on it.
    public func lloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        var rows = [Float](repeating: 0, count: sample.count * dim)
        rows.withUnsafeMutableBufferPointer { out in
            for (i, row) in sample.enumerated() { (out.baseAddress! + i * dim).update(from: points + row * dim, count: dim) }
        }
        return try rows.withUnsafeBufferPointer {
            try lloydIterations(points: $0.baseAddress!, count: sample.count, dim: dim, centroids: centroids, iterations: iterations)
        }
    }
}

/// Bulk nearest-centroid assignment of host rows (a `KMeansAccelerating` backend's, and what
/// `SplitKMeansBackend` splits over several of them).
public protocol NearestRowAssigning: AnyObject {
    /// Writes to `codes` the index of the nearest (Euclidean) of `centroids` (`k × dim`) for each of the
    /// `count` rows at `points`.
    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float],
                       into codes: UnsafeMutablePointer<Int32>) throws
}
