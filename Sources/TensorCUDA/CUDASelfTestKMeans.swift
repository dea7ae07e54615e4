import Tensor

/// Self-test checks of the k-means module: the fused nearest-centroid kernels (warpgroup MMA on Hopper, tensor-core,
/// portable, and the GEMM path for comparison) at sizes that are not multiples of any tile, bulk assignment of
/// host vectors streamed in many small chunks, and device-resident Lloyd iterations against a
/// double-precision host Lloyd (an empty centroid must stay put).
extension CUDASelfTest {
    static func kmeansChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) -> [Check] {
        let precision = backend.precision
        let scoreTolerance = precision == .fp32 ? 1e-5 : 2e-2
        var checks: [Check] = []
        func attempt(_ name: String, tolerance: Double, _ error: () throws -> Double) {
            checks.append(attempted(precision, name, tolerance: tolerance, error))
        }
        let saved = (backend.nearestCentroidKernel, backend.uploadChunkBytes, backend.uploadStagingBytes)
        defer { (backend.nearestCentroidKernel, backend.uploadChunkBytes, backend.uploadStagingBytes) = saved }
        // The warpgroup-MMA kernel runs where it loads (compute capability 9.0, bf16) up to 128 dimensions; elsewhere
        // `.warpgroup` falls back to km_assign_mma, and a check says which ran.
        let hopper = precision == .bf16 && backend.context.architecture == WarpgroupGemmSetting.deviceArchitecture
        // n and K off every tile size (64, 128, 192, 256 vectors; 64, 128 centroids).
        let n = 301, k = 203
        for dim in [48, 128, 384] {
            let vectors = randomMatrix(rows: n, cols: dim, &random)
            let centroids = randomMatrix(rows: k, cols: dim, &random)
            let kernels: [NearestCentroidKernel] = (precision == .bf16 ? [.warpgroup, .tensorCore] : []) + [.plain, .gemm]
            for kernel in kernels {
                backend.nearestCentroidKernel = kernel
                let launched = backend.warpgroupAssignCount
                for metric in [CentroidMetric.euclidean, .innerProduct] {
                    attempt("nearestCentroids \(kernel.rawValue) d=\(dim) n=\(n) k=\(k) \(metric)", tolerance: scoreTolerance) {
                        let codes = try backend.nearestCentroids(backend.upload(vectors), centroids: backend.upload(centroids), metric: metric)
                        return worstScoreGap(codes, vectors, centroids, euclidean: metric == .euclidean)
                    }
                }
                if kernel == .warpgroup {
                    let expected = hopper && KMeansKernels.paddedDim(dim) <= KMeansWarpgroupPlan.maxPaddedDim
                    attempt("km_assign_wgmma \(expected ? "ran" : "did not run") d=\(dim)", tolerance: 0.5) {
                        (backend.warpgroupAssignCount > launched) == expected ? 0 : 1
                    }
                }
            }
            // Host vectors streamed up in chunks of 7 rows or so (many chunks, both staging slots reused), each
            // crossing in pieces of 3, 3 and 1 rows.
            backend.nearestCentroidKernel = .automatic
            backend.uploadChunkBytes = 7 * dim * 4 + 12
            backend.uploadStagingBytes = 3 * dim * 4 + 5
            attempt("assignNearest (chunked upload) d=\(dim) n=\(n) k=\(k)", tolerance: scoreTolerance) {
                var codes = [Int32](repeating: -1, count: n)
                try vectors.values.withUnsafeBufferPointer { v in
                    try codes.withUnsafeMutableBufferPointer {
                        try backend.assignNearest(points: v.baseAddress!, count: n, dim: dim, centroids: centroids.values, into: $0.baseAddress!)
                    }
                }
                return worstScoreGap(codes, vectors, centroids, euclidean: true)
            }
            (backend.uploadChunkBytes, backend.uploadStagingBytes) = (saved.1, saved.2)
        }

        // Rows rounded to bf16 on the host while staged (streamRows' bf16 format, the exhaustive bulk assignment's input)
        // equal the device's own conversion (km_convert_rows) bit for bit, padding included; chunks in several pieces.
        if precision == .bf16 {
            for dim in [48, 130] {
                let rows = 1_003
                var values = randomMatrix(rows: rows, cols: dim, &random).values
                values[5] = 0; values[6] = -0.0; values[7] = 1e-40; values[8] = -3.4e38; values[9] = 1.00390625  // a tie at bf16
                backend.uploadChunkBytes = 400 * dim * 4
                backend.uploadStagingBytes = 150 * KMeansKernels.paddedDim(dim) * 2
                attempt("rows staged as bf16 on the host = km_convert_rows d=\(dim) n=\(rows)", tolerance: 0) {
                    let kernels = try backend.kmeansKernels(dim: dim)
                    let staged = try backend.makeMatrix(rows: rows, cols: kernels.paddedDim, type: .bfloat16)
                    try values.withUnsafeBufferPointer {
                        try backend.streamRows($0.baseAddress!, count: rows, dim: dim, destination: staged.pointer,
                                               format: .bf16(paddedDim: kernels.paddedDim)) { _, _ in }
                    }
                    let fp32 = try backend.uploadFloat32(values, rows: rows, cols: dim)
                    let converted = try backend.makeMatrix(rows: rows, cols: kernels.paddedDim, type: .bfloat16)
                    try backend.convertRows(kernels, source: fp32.pointer, rows: rows, dim: dim, destination: converted.pointer)
                    let (a, b) = (try backend.downloadFloats(staged), try backend.downloadFloats(converted))
                    return zip(a, b).contains { $0.bitPattern != $1.bitPattern } ? 1 : 0
                }
                (backend.uploadChunkBytes, backend.uploadStagingBytes) = (saved.1, saved.2)
            }
        }
        // The warpgroup kernel's ring of four centroid stages wrapping, an odd tile count (its two accumulator sets
        // alternating, the sweep ending on either), ties between identical centroids (the smallest index must win).
        if precision == .bf16 {
            backend.nearestCentroidKernel = .warpgroup
            for (dim, n, k) in [(48, 1_000, 600), (128, 777, 1_100)] {
                let vectors = randomMatrix(rows: n, cols: dim, &random)
                var centroids = randomMatrix(rows: k, cols: dim, &random)
                for c in 50..<k { for j in 0..<dim { centroids.values[c * dim + j] = centroids.values[(c % 50) * dim + j] } }
                attempt("nearestCentroids warpgroup d=\(dim) n=\(n) k=\(k) (ties: smallest index)", tolerance: 0.5) {
                    let codes = try backend.nearestCentroids(backend.upload(vectors), centroids: backend.upload(centroids), metric: .euclidean)
                    // Copies of a centroid score alike, so the code must be below 50; and within tolerance of the best.
                    let gap = worstScoreGap(codes, vectors, centroids, euclidean: true)
                    return codes.allSatisfy { $0 >= 0 && $0 < 50 } && gap <= scoreTolerance ? 0 : 1
                }
            }
        }

        // Lloyd: well-separated clusters, initial centroids near the cluster centres plus one far away
        // that never gets a point (it must not move).
        for dim in [48, 130] {
            let clusters = 29, count = 1_000, iterations = 3
            let centres = randomMatrix(rows: clusters, cols: dim, &random)
            var points = [Float](repeating: 0, count: count * dim)
            for i in 0..<count {
                let c = i % clusters
                for j in 0..<dim { points[i * dim + j] = centres.values[c * dim + j] + roundToBF16(Float.random(in: -0.05...0.05, using: &random)) }
            }
            var initial = [Float](repeating: 0, count: (clusters + 1) * dim)
            for c in 0..<clusters {
                for j in 0..<dim { initial[c * dim + j] = centres.values[c * dim + j] + roundToBF16(Float.random(in: -0.2...0.2, using: &random)) }
            }
            for j in 0..<dim { initial[clusters * dim + j] = 50 }
            backend.uploadChunkBytes = 100 * dim * 4
            backend.uploadStagingBytes = 33 * dim * 4  // each chunk in pieces of 33, 33, 33 and 1 rows
            attempt("lloydIterations d=\(dim) k=\(clusters + 1) (one empty)", tolerance: precision == .fp32 ? 1e-5 : 1e-2) {
                let trained = try points.withUnsafeBufferPointer {
                    try backend.lloydIterations(points: $0.baseAddress!, count: count, dim: dim, centroids: initial, iterations: iterations)
                }
                return relativeError(trained, referenceLloyd(points: points, dim: dim, centroids: initial, iterations: iterations))
            }
            (backend.uploadChunkBytes, backend.uploadStagingBytes) = (saved.1, saved.2)
        }
        return checks
    }

    /// Worst `(best − chosen) / max(|best|, 1)` over the rows, scores in double precision (−½‖c‖² added
    /// when `euclidean`); an index out of range counts as −∞ (the check fails).
    static func worstScoreGap(_ codes: [Int32], _ vectors: HostMatrix, _ centroids: HostMatrix, euclidean: Bool) -> Double {
        guard codes.count == vectors.rows else { return .infinity }
        let dim = vectors.cols, k = centroids.rows
        var worst = 0.0
        for r in 0..<vectors.rows {
            var best = -Double.infinity, chosen = -Double.infinity
            for c in 0..<k {
                var dot = 0.0, norm = 0.0
                for j in 0..<dim {
                    let w = Double(centroids.values[c * dim + j])
                    dot += Double(vectors.values[r * dim + j]) * w
                    norm += w * w
                }
                let score = euclidean ? dot - 0.5 * norm : dot
                best = max(best, score)
                if Int(codes[r]) == c { chosen = score }
            }
            worst = max(worst, (best - chosen) / max(abs(best), 1))
        }
        return worst
    }

    /// Lloyd in double precision: exact nearest centroid (ties to the smaller index), means of the
    /// members, empty centroids unchanged.
    static func referenceLloyd(points: [Float], dim: Int, centroids initial: [Float], iterations: Int) -> [Double] {
        var centroids = initial.map(Double.init)
        let k = centroids.count / dim, count = points.count / dim
        for _ in 0..<iterations {
            var sums = [Double](repeating: 0, count: k * dim)
            var sizes = [Int](repeating: 0, count: k)
            for i in 0..<count {
                var best = Double.infinity, label = 0
                for c in 0..<k {
                    var distance = 0.0
                    for j in 0..<dim {
                        let diff = Double(points[i * dim + j]) - centroids[c * dim + j]
                        distance += diff * diff
                    }
                    if distance < best { best = distance; label = c }
                }
                sizes[label] += 1
                for j in 0..<dim { sums[label * dim + j] += Double(points[i * dim + j]) }
            }
            for c in 0..<k where sizes[c] > 0 {
                for j in 0..<dim { centroids[c * dim + j] = sums[c * dim + j] / Double(sizes[c]) }
            }
        }
        return centroids
    }
}
