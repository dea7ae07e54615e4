/// A backend that can hold every vector of a k-means run in its own memory: the copy starts at once and runs
/// in the background (while the host draws the training sample), the sample is gathered there from the
/// copied rows, Lloyd trains on it, and the final assignment reads the same rows, so the vectors cross to the
/// device once and only centroids and one code per vector come back. Plaid's `KMeans` uses it when the
/// backend offers it and the rows fit; otherwise the chunked path (`KMeansAccelerating`) runs as before.
public protocol ResidentKMeansBackend: AnyObject {
    /// Starts copying the `count` rows (`dim` floats each, row-major) at `points` to the device and returns at
    /// once; nil when they do not fit in this backend's share of free device memory (callers then stream them
    /// in chunks). `points` must stay valid and unchanged until the handle's `finishUpload()` has returned.
    func beginResidentRows(points: UnsafePointer<Float>, count: Int, dim: Int) throws -> (any ResidentKMeansRows)?
}

/// Rows being copied to (then held in) device memory for one k-means run.
public protocol ResidentKMeansRows: AnyObject {
    var count: Int { get }
    var dim: Int { get }

    /// Waits until every row has reached the device (or the copy failed: rethrows its error); the seconds
    /// waited. Safe to call more than once; a handle must be finished before its host rows go away.
    @discardableResult func finishUpload() throws -> Double

    /// Lloyd iterations (`CoarseToFineAssigning.lloydIterations`' meaning) on the rows `sample` (indices into
    /// these rows, gathered on the device; every row in order when nil), from `centroids`.
    func lloydIterations(sample: [Int32]?, centroids: [Float], iterations: Int, exhaustiveIterations: Int, probes: Int,
                         grouping: (_ centroids: [Float], _ iteration: Int) -> CentroidGroupTable?) throws -> [Float]

    /// Writes to `codes` (`count` entries) the nearest of `centroids` for every row: coarse-to-fine over the
    /// `probes` best of `groups` when given, else exhaustively.
    func assignNearest(centroids: [Float], groups: CentroidGroupTable?, probes: Int, into codes: UnsafeMutablePointer<Int32>) throws
}
