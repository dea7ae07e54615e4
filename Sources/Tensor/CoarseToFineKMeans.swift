/// Centroids partitioned into groups around coarse centres, as the CPU's coarse-to-fine search uses them:
/// group `g` holds centroids `members[offsets[g]..<offsets[g + 1]]`.
public struct CentroidGroupTable: Sendable, Equatable {
    /// `count × dim` coarse centres.
    public let centers: [Float]
    /// `count + 1` increasing offsets into `members`, from 0 to K.
    public let offsets: [Int32]
    /// Every centroid index exactly once, group by group.
    public let members: [Int32]

    public init(centers: [Float], offsets: [Int32], members: [Int32]) {
        self.centers = centers
        self.offsets = offsets
        self.members = members
    }

    /// Number of groups.
    public var count: Int { max(0, offsets.count - 1) }
}

/// A backend that searches centroids coarse-to-fine the way the CPU path does (each vector scores the
/// group centres, then exactly the centroids of its `probes` best groups; ties to the smaller centroid
/// index), for bulk assignment and for Lloyd iterations whose assignments are grouped.
public protocol CoarseToFineAssigning: AnyObject {
    /// The most groups a vector may probe in a grouped search of `dim`-wide rows where this backend prefers it
    /// to its exhaustive search (for bulk assignment, or for Lloyd iterations when `lloyd`); 0 where it does not.
    func maximumProbes(dim: Int, lloyd: Bool) -> Int

    /// Writes to `codes` the nearest of the centroids in the `probes` best `groups` for each of the `count`
    /// rows (`dim` floats) at `points`.
    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable,
                       probes: Int, into codes: UnsafeMutablePointer<Int32>) throws

    /// Lloyd iterations as `KMeansAccelerating.lloydIterations`, except that from iteration
    /// `exhaustiveIterations` on, the current centroids are grouped by `grouping(centroids, iteration)` and
    /// assigned coarse-to-fine over `probes` groups (exhaustively when `grouping` gives nil).
    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int,
                         exhaustiveIterations: Int, probes: Int,
                         grouping: (_ centroids: [Float], _ iteration: Int) -> CentroidGroupTable?) throws -> [Float]
}

/// How a backend groups the current centroids on its own side in each grouped Lloyd iteration, the way `KMeans.group`
/// does on the host: `iterations` Lloyd iterations of the K centroids into `groups` coarse centres, starting in Lloyd
/// iteration i from the centroids `initialCenters[i]`; then each centroid in its nearest centre's group (members in
/// increasing index order), and a group left empty never probed.
public struct CentroidGroupingPlan: Sendable, Equatable {
    public let groups: Int
    public let iterations: Int
    public let initialCenters: [[Int32]]

    public init(groups: Int, iterations: Int, initialCenters: [[Int32]]) {
        self.groups = groups
        self.iterations = iterations
        self.initialCenters = initialCenters
    }
}

/// A backend that runs grouped Lloyd iterations whole, grouping the centroids itself in each one, so no centroids
/// cross between iterations (the host's grouping of 32,768 centroids and the tables' upload cost more than a grouped
/// assignment of a million rows on a GPU).
public protocol DeviceGroupedLloyd: CoarseToFineAssigning, KMeansAccelerating {
    /// Whether it runs them for `dim`-wide rows.
    func groupsLloydOnDevice(dim: Int) -> Bool

    /// `iterations` Lloyd iterations over the rows `sample` of `points` (gathered by the backend, in this order) from
    /// `centroids`, every assignment coarse-to-fine over `probes` groups of the current centroids grouped as
    /// `grouping` says; the update as in `KMeansAccelerating.lloydIterations`. Returns the final centroids.
    func groupedLloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int,
                                probes: Int, grouping: CentroidGroupingPlan) throws -> [Float]
}
