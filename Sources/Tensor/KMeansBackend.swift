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

}

/// Bulk nearest-centroid assignment of host rows (a `KMeansAccelerating` backend's, and what
/// `SplitKMeansBackend` splits over several of them).
public protocol NearestRowAssigning: AnyObject {
    /// Writes to `codes` the index of the nearest (Euclidean) of `centroids` (`k × dim`) for each of the
    /// `count` rows at `points`.
    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float],
                       into codes: UnsafeMutablePointer<Int32>) throws
}
