import Tensor

/// Self-test checks of device-resident k-means (`CUDAResidentRows`): rows copied up in many small chunks on the
/// background stream, a sample gathered on the device (`km_gather_rows`) and trained on against a double-precision
/// Lloyd on the same rows gathered on the host, and every row assigned exhaustively and coarse-to-fine in several
/// passes against double-precision searches.
extension CUDASelfTest {
    static func residentChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        var checks: [Check] = []
        func attempt(_ name: String, tolerance: Double, _ error: () throws -> Double) {
            checks.append(attempted(precision, name, tolerance: tolerance, error))
        }
        let saved = (backend.residentChunkBytes, backend.residentRowsPerPass, backend.residentMaximumDim)
        defer { (backend.residentChunkBytes, backend.residentRowsPerPass, backend.residentMaximumDim) = saved }
        // Every width the kernels take, whatever the default holds resident.
        backend.residentMaximumDim = .max
        for dim in [48, 130] {
            // Clusters as in `kmeansChecks` (values on the bf16 grid), one initial centroid far away (never moves).
            let clusters = 29, count = 2_003, iterations = 3
            let centres = randomMatrix(rows: clusters, cols: dim, &random)
            var points = [Float](repeating: 0, count: count * dim)
            for i in 0..<count {
                let c = (i * 7) % clusters
                for j in 0..<dim { points[i * dim + j] = centres.values[c * dim + j] + roundToBF16(Float.random(in: -0.05...0.05, using: &random)) }
            }
            var initial = [Float](repeating: 0, count: (clusters + 1) * dim)
            for c in 0..<clusters {
                for j in 0..<dim { initial[c * dim + j] = centres.values[c * dim + j] + roundToBF16(Float.random(in: -0.2...0.2, using: &random)) }
            }
            for j in 0..<dim { initial[clusters * dim + j] = 50 }
            // A sample without replacement of 1,201 rows in shuffled order, the last row among them.
            var order = Array(0..<Int32(count))
            order.shuffle(using: &random)
            var sample = Array(order.prefix(1_201))
            if !sample.contains(Int32(count - 1)) { sample[600] = Int32(count - 1) }
            let gathered = sample.flatMap { points[(Int($0) * dim)..<((Int($0) + 1) * dim)] }
            // Chunks of 7 rows and 12 bytes (both pinned buffers reused many times); passes of 250 rows.
            backend.residentChunkBytes = 7 * dim * 4 + 12
            backend.residentRowsPerPass = 250
            let centroids = randomMatrix(rows: 203, cols: dim, &random)
            let groups = nearestCentreGroups(centroids.values, dim: dim, groupCount: 13, emptyGroup: true)
            // A bf16 build holds the rows as the kernels' bf16 rows: the grouped search is then checked against the
            // double-precision grouped search of those rounded rows (rounding alone can change a row's probed groups,
            // and with them its code, by more than any tolerance of the search itself).
            let heldAsBF16 = backend.residentRowFormat(dim: dim).isBF16
            let searched = heldAsBF16 ? points.map(roundToBF16) : points
            points.withUnsafeBufferPointer { p in
                var rows: (any ResidentKMeansRows)? = nil
                attempt("resident rows copied in chunks d=\(dim) n=\(count)", tolerance: 0) {
                    rows = try backend.beginResidentRows(points: p.baseAddress!, count: count, dim: dim)
                    guard let rows else { return .infinity }
                    try rows.finishUpload()
                    return 0
                }
                guard let rows else { return }
                defer { _ = try? rows.finishUpload() }
                // Both widths search exhaustively or on tensor cores by default, so a bf16 build holds bf16 rows (grouped at
                // 130 they are widened to fp32 a pass at a time).
                attempt("resident rows held as \(precision == .bf16 ? "bf16" : "fp32") d=\(dim)", tolerance: 0.5) {
                    guard let held = rows as? CUDAResidentRows else { return 1 }
                    return held.format.isBF16 == heldAsBF16 && heldAsBF16 == (precision == .bf16) ? 0 : 1
                }
                attempt("resident lloydIterations on a device-gathered sample d=\(dim) k=\(clusters + 1) (one empty)",
                        tolerance: precision == .fp32 ? 1e-5 : 1e-2) {
                    let trained = try rows.lloydIterations(sample: sample, centroids: initial, iterations: iterations,
                                                           exhaustiveIterations: .max, probes: 0) { _, _ in nil }
                    return relativeError(trained, referenceLloyd(points: gathered, dim: dim, centroids: initial, iterations: iterations))
                }
                attempt("resident assignNearest exhaustive (passes of 250) d=\(dim) n=\(count) k=203", tolerance: precision == .fp32 ? 1e-5 : 2e-2) {
                    var codes = [Int32](repeating: -1, count: count)
                    try codes.withUnsafeMutableBufferPointer { try rows.assignNearest(centroids: centroids.values, groups: nil, probes: 0, into: $0.baseAddress!) }
                    return worstScoreGap(codes, HostMatrix(rows: count, cols: dim, values: points), centroids, euclidean: true)
                }
                attempt("resident assignNearest coarse-to-fine (passes of 250) d=\(dim) n=\(count) k=203 groups=13 probes=5", tolerance: 1e-5) {
                    var codes = [Int32](repeating: -1, count: count)
                    try codes.withUnsafeMutableBufferPointer { try rows.assignNearest(centroids: centroids.values, groups: groups, probes: 5, into: $0.baseAddress!) }
                    return worstGroupedGap(codes, searched, centroids.values.map(Double.init), dim: dim, groups: groups, probes: 5)
                }
            }
            // Assigned straight after the copy began: each pass waits only for its own rows (both searches).
            for grouped in [false, true] {
                attempt("resident assignNearest \(grouped ? "coarse-to-fine" : "exhaustive") while the copy runs d=\(dim) n=\(count)",
                        tolerance: grouped || precision == .fp32 ? 1e-5 : 2e-2) {
                    var codes = [Int32](repeating: -1, count: count)
                    try points.withUnsafeBufferPointer { p in
                        guard let fresh = try backend.beginResidentRows(points: p.baseAddress!, count: count, dim: dim) else { return }
                        defer { _ = try? fresh.finishUpload() }
                        try codes.withUnsafeMutableBufferPointer {
                            try fresh.assignNearest(centroids: centroids.values, groups: grouped ? groups : nil, probes: grouped ? 5 : 0, into: $0.baseAddress!)
                        }
                    }
                    return grouped ? worstGroupedGap(codes, searched, centroids.values.map(Double.init), dim: dim, groups: groups, probes: 5)
                        : worstScoreGap(codes, HostMatrix(rows: count, cols: dim, values: points), centroids, euclidean: true)
                }
            }
        }
        return checks
    }
}
