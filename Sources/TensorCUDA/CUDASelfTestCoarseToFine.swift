import Tensor

/// Self-test checks of the coarse-to-fine kernels (`km_c2f_*`): bulk assignment of host vectors streamed
/// in many small chunks against the same grouped search in double precision, and Lloyd iterations whose
/// later assignments are grouped against a double-precision Lloyd grouped the same way.
extension CUDASelfTest {
    static func coarseToFineChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        var checks: [Check] = []
        func attempt(_ name: String, tolerance: Double, _ error: () throws -> Double) {
            checks.append(attempted(precision, name, tolerance: tolerance, error))
        }
        let savedChunk = backend.uploadChunkBytes
        defer { backend.uploadChunkBytes = savedChunk }
        let (n, k, groupCount, probes) = groupedShape
        // 48 and 128: on tensor cores in bf16 (rows streamed as bf16; the inputs are bf16 values, so the scores are the
        // double-precision ones up to fp32 sums); 130: fp32 FMA in both precisions.
        for dim in [48, 128, 130] {
            let (vectors, centroids, groups) = groupedInputs(dim: dim, &random)
            if backend.coarseToFineOnTensorCores(dim: dim) {
                attempt("km_c2f_fine_mma loaded d=\(dim)", tolerance: 0.5) {
                    try backend.kmeansKernels(dim: dim).coarseToFineTensorCore == nil ? 1 : 0
                }
            }
            backend.uploadChunkBytes = streamedChunkBytes(dim: dim)
            attempt("assignNearest coarse-to-fine (chunked upload) d=\(dim) n=\(n) k=\(k) groups=\(groupCount) probes=\(probes)",
                    tolerance: 1e-5) {
                var codes = [Int32](repeating: -1, count: n)
                try vectors.values.withUnsafeBufferPointer { v in
                    try codes.withUnsafeMutableBufferPointer {
                        try backend.assignNearest(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values, groups: groups,
                                                  probes: probes, into: $0.baseAddress!)
                    }
                }
                return worstGroupedGap(codes, vectors.values, centroids.values.map(Double.init), dim: dim, groups: groups, probes: probes)
            }
            // Again with the same tables (reused from the cache), then with the centroids negated and the same groups (the
            // cache must miss: stale tables would pick nearly every code from the old centroids).
            let moved = centroids.values.map { -$0 }
            for (label, table) in [("same centroids (tables reused)", centroids.values), ("centroids negated (tables rebuilt)", moved)] {
                attempt("assignNearest coarse-to-fine again, \(label) d=\(dim)", tolerance: 1e-5) {
                    var codes = [Int32](repeating: -1, count: n)
                    try vectors.values.withUnsafeBufferPointer { v in
                        try codes.withUnsafeMutableBufferPointer {
                            try backend.assignNearest(points: v.baseAddress!, count: n, dim: dim, centroids: table, groups: groups,
                                                      probes: probes, into: $0.baseAddress!)
                        }
                    }
                    return worstGroupedGap(codes, vectors.values, table.map(Double.init), dim: dim, groups: groups, probes: probes)
                }
            }
            backend.uploadChunkBytes = savedChunk
        }

        // Lloyd: clusters as in `kmeansChecks`, one far centroid that never gets a point; iteration 0
        // exhaustive, later ones grouped around the current centroids.
        for dim in [48, 130] {
            let (clusters, count, iterations, lloydProbes) = (separatedClusters.clusters, separatedClusters.count, 3, 3)
            let (points, initial) = separatedClusterInputs(dim: dim, &random)
            let grouping: ([Float], Int) -> CentroidGroupTable? = { current, _ in
                nearestCentreGroups(current, dim: dim, groupCount: 7, emptyGroup: false)
            }
            attempt("lloydIterations coarse-to-fine d=\(dim) k=\(clusters + 1) (one empty)", tolerance: 1e-5) {
                let trained = try points.withUnsafeBufferPointer {
                    try backend.lloydIterations(points: $0.baseAddress!, count: count, dim: dim, centroids: initial, iterations: iterations,
                                                exhaustiveIterations: 1, probes: lloydProbes, grouping: grouping)
                }
                return relativeError(trained, referenceGroupedLloyd(points: points, dim: dim, centroids: initial, iterations: iterations,
                                                                   probes: lloydProbes, grouping: grouping))
            }
        }
        return checks
    }

    /// The grouped Lloyd checks' rows: `count` rows around `clusters` random centres (±0.05), far apart.
    static let separatedClusters = (clusters: 47, count: 1_500)

    /// `separatedClusters`' rows at `dim`, and Lloyd's start: a centroid near each centre (±0.2) and one far centroid
    /// (every value 50) that never gets a row.
    static func separatedClusterInputs(dim: Int, _ random: inout SeededGenerator) -> (points: [Float], start: [Float]) {
        let (clusters, count) = separatedClusters
        let centres = randomMatrix(rows: clusters, cols: dim, &random)
        var points = [Float](repeating: 0, count: count * dim)
        for i in 0..<count {
            for j in 0..<dim { points[i * dim + j] = centres.values[(i % clusters) * dim + j] + Float.random(in: -0.05...0.05, using: &random) }
        }
        var start = [Float](repeating: 0, count: (clusters + 1) * dim)
        for c in 0..<clusters {
            for j in 0..<dim { start[c * dim + j] = centres.values[c * dim + j] + Float.random(in: -0.2...0.2, using: &random) }
        }
        for j in 0..<dim { start[clusters * dim + j] = 50 }
        return (points, start)
    }

    /// Rows, centroids, groups and probes of the grouped-search checks: n, K and the group sizes off every tile size
    /// (128 entries, 32 or 8 centroids).
    static let groupedShape = (n: 301, k: 203, groups: 13, probes: 5)

    /// Random rows and centroids of `groupedShape` at `dim`, the centroids grouped around their first rows with one
    /// empty group.
    static func groupedInputs(dim: Int, _ random: inout SeededGenerator) -> (vectors: HostMatrix, centroids: HostMatrix, groups: CentroidGroupTable) {
        let vectors = randomMatrix(rows: groupedShape.n, cols: dim, &random)
        let centroids = randomMatrix(rows: groupedShape.k, cols: dim, &random)
        return (vectors, centroids, nearestCentreGroups(centroids.values, dim: dim, groupCount: groupedShape.groups, emptyGroup: true))
    }

    /// Upload chunks of 7 rows and a few bytes: every check streams its rows through many chunks and a partial last one.
    static func streamedChunkBytes(dim: Int) -> Int { 7 * dim * 4 + 12 }

    /// Groups of `centroids` around their first `groupCount` rows (each centroid to its nearest such row,
    /// members in increasing order); with `emptyGroup`, one more group with no members in the middle.
    static func nearestCentreGroups(_ centroids: [Float], dim: Int, groupCount: Int, emptyGroup: Bool) -> CentroidGroupTable {
        let k = centroids.count / dim
        var members = [[Int32]](repeating: [], count: groupCount)
        for c in 0..<k {
            var best = -Double.infinity, at = 0
            for g in 0..<groupCount {
                var dot = 0.0, norm = 0.0
                for j in 0..<dim {
                    let w = Double(centroids[g * dim + j])
                    dot += Double(centroids[c * dim + j]) * w
                    norm += w * w
                }
                if dot - 0.5 * norm > best { best = dot - 0.5 * norm; at = g }
            }
            members[at].append(Int32(c))
        }
        var centers = Array(centroids[0..<(groupCount * dim)])
        if emptyGroup {
            members.insert([], at: groupCount / 2)
            centers.insert(contentsOf: [Float](repeating: 0.5, count: dim), at: groupCount / 2 * dim)
        }
        var offsets: [Int32] = [0]
        for m in members { offsets.append(offsets.last! + Int32(m.count)) }
        return CentroidGroupTable(centers: centers, offsets: offsets, members: members.flatMap { $0 })
    }

    /// The nearest centroid (score x·c − ½‖c‖², double precision) among the members of each row's `probes`
    /// best non-empty groups, for each row.
    static func groupedNearest(_ points: [Float], _ centroids: [Double], dim: Int, groups: CentroidGroupTable, probes: Int) -> [(index: Int, score: Double)] {
        func score(_ x: ArraySlice<Float>, _ c: [Double], _ row: Int) -> Double {
            var dot = 0.0, norm = 0.0
            for (j, v) in x.enumerated() { dot += Double(v) * c[row * dim + j]; norm += c[row * dim + j] * c[row * dim + j] }
            return dot - 0.5 * norm
        }
        let centers = groups.centers.map(Double.init)
        let used = (0..<groups.count).filter { groups.offsets[$0 + 1] > groups.offsets[$0] }
        return (0..<(points.count / dim)).map { r in
            let x = points[(r * dim)..<((r + 1) * dim)]
            let ranked = used.map { (g: $0, s: score(x, centers, $0)) }.sorted { $0.s != $1.s ? $0.s > $1.s : $0.g < $1.g }
            var best = (index: Int.max, score: -Double.infinity)
            for (g, _) in ranked.prefix(probes) {
                for at in Int(groups.offsets[g])..<Int(groups.offsets[g + 1]) {
                    let m = Int(groups.members[at]), s = score(x, centroids, m)
                    if s > best.score || (s == best.score && m < best.index) { best = (m, s) }
                }
            }
            return best
        }
    }

    /// Worst `(best − chosen) / max(|best|, 1)` over the rows against the grouped search in double
    /// precision; an index out of range counts as −∞ (the check fails).
    static func worstGroupedGap(_ codes: [Int32], _ points: [Float], _ centroids: [Double], dim: Int, groups: CentroidGroupTable, probes: Int) -> Double {
        let k = centroids.count / dim
        guard codes.count == points.count / dim else { return .infinity }
        var worst = 0.0
        for (r, best) in groupedNearest(points, centroids, dim: dim, groups: groups, probes: probes).enumerated() {
            let c = Int(codes[r])
            guard c >= 0, c < k else { return .infinity }
            var dot = 0.0, norm = 0.0
            for j in 0..<dim { dot += Double(points[r * dim + j]) * centroids[c * dim + j]; norm += centroids[c * dim + j] * centroids[c * dim + j] }
            worst = max(worst, (best.score - (dot - 0.5 * norm)) / max(abs(best.score), 1))
        }
        return worst
    }

    /// Lloyd in double precision whose iterations from 1 on assign over `grouping`'s groups of the current
    /// centroids (iteration 0 exhaustive); means of the members, empty centroids unchanged.
    static func referenceGroupedLloyd(points: [Float], dim: Int, centroids initial: [Float], iterations: Int, probes: Int,
                                      grouping: ([Float], Int) -> CentroidGroupTable?) -> [Double] {
        var centroids = initial.map(Double.init)
        let k = centroids.count / dim, count = points.count / dim
        for iteration in 0..<iterations {
            let labels: [Int]
            if iteration >= 1, let groups = grouping(centroids.map { Float($0) }, iteration) {
                labels = groupedNearest(points, centroids, dim: dim, groups: groups, probes: probes).map(\.index)
            } else {
                let all = CentroidGroupTable(centers: [Float](repeating: 0, count: dim), offsets: [0, Int32(k)], members: (0..<Int32(k)).map { $0 })
                labels = groupedNearest(points, centroids, dim: dim, groups: all, probes: 1).map(\.index)
            }
            var sums = [Double](repeating: 0, count: k * dim)
            var sizes = [Int](repeating: 0, count: k)
            for i in 0..<count {
                sizes[labels[i]] += 1
                for j in 0..<dim { sums[labels[i] * dim + j] += Double(points[i * dim + j]) }
            }
            for c in 0..<k where sizes[c] > 0 {
                for j in 0..<dim { centroids[c * dim + j] = sums[c * dim + j] / Double(sizes[c]) }
            }
        }
        return centroids
    }
}
