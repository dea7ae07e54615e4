import Tensor

/// Self-test checks of grouped Lloyd with the grouping made on the device (`DeviceGroupedLloyd`): the member table of
/// one grouping (a partition, each group's members in increasing order, every centroid in its nearest non-empty
/// group, empty groups never probed), and whole grouped iterations on a gathered sample against a double-precision Lloyd.
extension CUDASelfTest {
    static func deviceGroupingChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        var checks: [Check] = []
        func attempt(_ name: String, tolerance: Double, _ error: () throws -> Double) {
            checks.append(attempted(precision, name, tolerance: tolerance, error))
        }
        for dim in [48, 128] {
            // One grouping of 203 random centroids into 13 groups, from 13 distinct initial centroids.
            let k = 203, groups = 13
            let centroids = randomMatrix(rows: k, cols: dim, &random)
            var initial = Array(0..<Int32(k))
            initial.shuffle(using: &random)
            let seeds = Array(initial.prefix(groups))
            attempt("device grouping: member table d=\(dim) k=\(k) groups=\(groups)", tolerance: precision == .fp32 ? 1e-5 : 2e-2) {
                let kernels = try backend.kmeansKernels(dim: dim)
                let grouping = try CUDABackend.DeviceCentroidGrouping(backend, kernels: kernels, k: k, dim: dim, groups: groups,
                                                                      tensorCore: backend.coarseToFineOnTensorCores(dim: dim))
                let device = try backend.uploadFloat32(centroids.values, rows: k, cols: dim)
                let tables = try grouping.tables(of: device, initialCenters: seeds, iterations: 8)
                func ints(_ m: CUDAMatrix, _ n: Int) throws -> [Int] { try backend.downloadFloats(m).prefix(n).map { Int(Int32(bitPattern: $0.bitPattern)) } }
                let offsets = try ints(tables.offsets, groups + 1), members = try ints(tables.rowIndex, k)
                let centers = try backend.downloadFloats(tables.centers).map(Double.init)
                let bias = try backend.downloadFloats(tables.centerBias)
                return memberTableError(offsets: offsets, members: members, centers: centers, bias: bias, centroids: centroids.values, dim: dim)
            }

            // Grouped Lloyd on a gathered sample (rows taken backwards, every third skipped) of 48 well-separated clusters, one
            // far centroid that never gets a point: every grouping finds each row's cluster, so the means are a double-precision
            // Lloyd's.
            let (clusters, count, iterations, probes) = (separatedClusters.clusters, separatedClusters.count, 3, 3)
            let (points, start) = separatedClusterInputs(dim: dim, &random)
            let sample = (0..<count).reversed().filter { $0 % 3 != 1 }
            let plan = CentroidGroupingPlan(groups: 7, iterations: 8, initialCenters: (0..<iterations).map { i in (0..<7).map { Int32(($0 * 7 + i) % (clusters + 1)) } })
            attempt("groupedLloydIterations (grouped on the device, gathered sample) d=\(dim) k=\(clusters + 1) (one empty)", tolerance: 1e-5) {
                let trained = try points.withUnsafeBufferPointer {
                    try backend.groupedLloydIterations(points: $0.baseAddress!, sample: sample, dim: dim, centroids: start, iterations: iterations,
                                                       probes: probes, grouping: plan)
                }
                let rows = sample.flatMap { points[($0 * dim)..<(($0 + 1) * dim)] }
                return relativeError(trained, referenceGroupedLloyd(points: rows, dim: dim, centroids: start, iterations: iterations, probes: probes) { current, _ in
                    nearestCentreGroups(current, dim: dim, groupCount: 7, emptyGroup: false)
                })
            }
        }
        return checks
    }

    /// How far a device grouping's member table is from `KMeans.group`'s contract: 1 when the offsets and members are not a
    /// partition of the centroids listed group by group in increasing order, or an empty group's bias is not −∞ (or a
    /// non-empty one's is); else the worst (best score − its group's score) ÷ max(|best|, 1) over the centroids, scores
    /// c·g − ½‖g‖² in double against the non-empty groups' centres (bf16 rows give ~1e-2 on near-ties).
    static func memberTableError(offsets: [Int], members: [Int], centers: [Double], bias: [Float], centroids: [Float], dim: Int) -> Double {
        let groups = offsets.count - 1, k = members.count
        guard offsets.first == 0, offsets.last == k, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
              Set(members).count == k, members.allSatisfy({ (0..<k).contains($0) }) else { return 1 }
        var groupOf = [Int](repeating: -1, count: k)
        for g in 0..<groups {
            let list = members[offsets[g]..<offsets[g + 1]]
            guard zip(list, list.dropFirst()).allSatisfy({ $0 < $1 }) else { return 1 }
            guard list.isEmpty == (bias[g] == -.infinity) else { return 1 }
            for j in list { groupOf[j] = g }
        }
        var worst = 0.0
        for j in 0..<k {
            func score(_ g: Int) -> Double {
                var dot = 0.0, norm = 0.0
                for q in 0..<dim { dot += Double(centroids[j * dim + q]) * centers[g * dim + q]; norm += centers[g * dim + q] * centers[g * dim + q] }
                return dot - 0.5 * norm
            }
            let best = (0..<groups).filter { offsets[$0 + 1] > offsets[$0] }.map(score).max() ?? 0
            worst = max(worst, (best - score(groupOf[j])) / max(abs(best), 1))
        }
        return worst
    }
}
