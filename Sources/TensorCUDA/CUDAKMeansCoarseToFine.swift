import CCUDA
import Foundation
import Tensor

/// Coarse-to-fine nearest-centroid search on the GPU, the CPU path's algorithm (`CentroidAssigner`): each
/// vector scores the G group centres and keeps its `probes` best (`km_c2f_top`), the (vector, probe)
/// entries are bucketed by group (`km_c2f_scan`, `km_c2f_scatter`), each group's centroids are scored
/// against the vectors that probe it (`km_c2f_fine`) and a vector's best probe is its code
/// (`km_c2f_reduce`). fp32 arithmetic on the fp32 rows as uploaded (no bf16 conversion): at K = 32,768
/// and G = 256 a vector scores 256 + 8 · 128 rows instead of 32,768.
extension CUDABackend: CoarseToFineAssigning {
    /// `KM_PMAX` of the kernels where the grouped search is the default, else 0 (callers then search
    /// exhaustively, the session-8 path). Measured (docs/PERFORMANCE.md, session 9; one H200, 10M vectors,
    /// K = 32,768): bulk assignment at 48-d 0.105–0.12 s grouped vs 0.18–0.19 s exhaustive, at 128-d
    /// 0.31 s both (the host-to-device copy bounds it); grouped Lloyd no faster at 48-d (0.087–0.091 s warm
    /// vs 0.088–0.093) and slower at 128-d (0.41–0.93 s vs 0.25–0.37). So by default: bulk assignment of rows
    /// up to 64 wide. `COLGREP_GPU_COARSE=all` groups everything (Lloyd too, any width), `=0` nothing.
    public func maximumProbes(dim: Int, lloyd: Bool) -> Int {
        switch Self.coarseToFineSetting {
        case "0": return 0
        case "all": return 8
        default: return !lloyd && dim <= 64 ? 8 : 0
        }
    }
    static let coarseToFineSetting = ProcessInfo.processInfo.environment["COLGREP_GPU_COARSE"] ?? ""
    /// `KM_GMAX` of the kernels (the shared-memory histogram's size).
    static let maximumCoarseGroups = 2048
    /// `KM_FINE_ROWS` of the kernels (entries a fine block scores).
    static let coarseToFineTileRows = 128

    /// A grouping on the device: the non-empty groups' centres and biases, the centroids stored group
    /// by group (`rows`) with their biases, original indices and group offsets; and the centroids in their own
    /// order (`byIndex`, fp32, for the codec's residuals: uploaded with the tables, not again for every batch).
    struct CoarseToFineTables {
        let groups: Int
        let centers: CUDAMatrix, centerBias: CUDAMatrix
        let rows: CUDAMatrix, rowBias: CUDAMatrix, rowIndex: CUDAMatrix, offsets: CUDAMatrix
        let byIndex: CUDAMatrix
    }

    /// Per-call scratch for up to `capacity` vectors of `probes` entries each.
    struct CoarseToFineScratch {
        let capacity: Int
        let top: CUDAMatrix, list: CUDAMatrix, score: CUDAMatrix, label: CUDAMatrix
        let counts: CUDAMatrix, starts: CUDAMatrix, cursor: CUDAMatrix, tileStart: CUDAMatrix
    }

    public func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable,
                              probes: Int, into codes: UnsafeMutablePointer<Int32>) throws {
        try context.makeCurrent()
        guard count > 0 else { return }
        let kernels = try kmeansKernels(dim: dim)
        let tables = try cachedGroupTables(centroids: centroids, dim: dim, groups: groups)
        let p = min(probes, tables.groups)
        let plan = RowUploadPlan(count: count, rowBytes: dim * 4, chunkBytes: uploadChunkBytes)
        let scratch = try makeCoarseToFineScratch(capacity: plan.rowsPerChunk, probes: p, groups: tables.groups)
        let labels = try makeMatrix(rows: 1, cols: count, type: .float32)  // 4-byte slots holding Int32
        try streamRows(points, count: count, dim: dim, destination: nil) { chunk, rows in
            try coarseToFine(kernels, tables: tables, vectors: chunk, rows: rows.count, dim: dim, probes: p, scratch: scratch,
                             out: labels.pointer + UInt64(rows.lowerBound * 4))
        }
        try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(codes), labels.pointer, count * 4, context.computeStream), "cuMemcpyDtoHAsync")
        try context.synchronize()
    }

    public func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int,
                                exhaustiveIterations: Int, probes: Int,
                                grouping: (_ centroids: [Float], _ iteration: Int) -> CentroidGroupTable?) throws -> [Float] {
        let (k, kernels, x32) = try lloydInputs(count: count, dim: dim, centroids: centroids)
        try streamRows(points, count: count, dim: dim, destination: x32.pointer) { _, _ in }
        return try lloydOnDevice(kernels, x32: x32, count: count, dim: dim, k: k, centroids: centroids, iterations: iterations,
                                 exhaustiveIterations: exhaustiveIterations, probes: probes, grouping: grouping)
    }

    /// The Lloyd iterations of `lloydIterations` on `count` fp32 rows already on the device (`x32`, stream-ordered
    /// before the compute stream's next work): exhaustive before `exhaustiveIterations`, grouped from it on.
    func lloydOnDevice(_ kernels: KMeansKernels, x32: CUDAMatrix, count: Int, dim: Int, k: Int, centroids: [Float], iterations: Int,
                       exhaustiveIterations: Int, probes: Int,
                       grouping: (_ centroids: [Float], _ iteration: Int) -> CentroidGroupTable?) throws -> [Float] {
        let current = try uploadFloat32(centroids, rows: k, cols: dim)
        let labels = try makeMatrix(rows: 1, cols: count, type: .float32)  // 4-byte slots holding Int32
        let sums = try makeLloydSums(k: k, dim: dim)
        let counts = try makeMatrix(rows: 1, cols: k, type: .float32)  // 4-byte slots holding Int32
        // The exhaustive path's padded activations and centroid table, made when an iteration needs them.
        var exhaustive: (act: CUDAMatrix, table: CUDAMatrix, bias: CUDAMatrix)? = nil
        var scratch: CoarseToFineScratch? = nil
        var host = centroids
        var trace = KMeansStepTrace(context: context, dim: dim, count: count)
        func mark(_ step: String) throws { try trace.mark(step) }
        try mark("upload")
        for iteration in 0..<max(0, iterations) {
            var grouped: CentroidGroupTable? = nil
            if iteration >= exhaustiveIterations {
                if iteration > 0 { host = try downloadFloats(current) }
                try mark("iteration \(iteration) download")
                grouped = grouping(host, iteration)
                try mark("iteration \(iteration) grouping")
            }
            if let grouped, grouped.count > 1, grouped.count <= Self.maximumCoarseGroups, probes > 0 {
                let tables = try uploadGroupTables(centroids: host, dim: dim, groups: grouped)
                try mark("iteration \(iteration) tables")
                let p = min(probes, tables.groups)
                if scratch == nil || scratch!.top.cols < count * p || scratch!.counts.cols < tables.groups + 1 {
                    scratch = try makeCoarseToFineScratch(capacity: count, probes: p, groups: tables.groups)
                }
                try coarseToFine(kernels, tables: tables, vectors: x32.pointer, rows: count, dim: dim, probes: p, scratch: scratch!,
                                 out: labels.pointer)
            } else {
                if exhaustive == nil {
                    let act = try makeMatrix(rows: count, cols: kernels.paddedDim)
                    try convertRows(kernels, source: x32.pointer, rows: count, dim: dim, destination: act.pointer)
                    let (table, bias) = try makeCentroidTable(kernels, count: k)
                    exhaustive = (act, table, bias)
                }
                try prepareCentroids(kernels, source: current.pointer, sourceIsFloat32: true, count: k, dim: dim, euclidean: true,
                                     table: exhaustive!.table, bias: exhaustive!.bias)
                try fusedAssign(kernels, vectors: exhaustive!.act.pointer, rows: count, table: exhaustive!.table, bias: exhaustive!.bias,
                                out: labels.pointer)
            }
            try mark("iteration \(iteration) assign")
            try moveCentroidsToMeans(kernels, x32: x32, count: count, dim: dim, labels: labels, sums: sums, counts: counts,
                                     centroids: current, k: k)
            try mark("iteration \(iteration) accumulate and update")
        }
        return try downloadFloats(current)
    }

    /// `uploadGroupTables`, reused while the same centroids and groups come back: an index build assigns batch
    /// after batch against one codec (a 10M-vector build: ~40 batches, each rebuilding and uploading 32,768 rows
    /// otherwise). Compared by value, so a changed codec never meets stale tables.
    func cachedGroupTables(centroids: [Float], dim: Int, groups: CentroidGroupTable) throws -> CoarseToFineTables {
        if let cached = groupTableCache, cached.dim == dim, cached.groups == groups, cached.centroids == centroids { return cached.tables }
        groupTableCache = nil
        let tables = try uploadGroupTables(centroids: centroids, dim: dim, groups: groups)
        groupTableCache = GroupTableCache(centroids: centroids, dim: dim, groups: groups, tables: tables)
        return tables
    }

    /// The last grouping uploaded by `cachedGroupTables`, with what it was made from.
    struct GroupTableCache {
        let centroids: [Float]
        let dim: Int
        let groups: CentroidGroupTable
        let tables: CoarseToFineTables
    }

    /// Uploads a grouping of `centroids` (`k × dim`): empty groups dropped, centres with −½‖c‖², the
    /// centroids copied group by group with their biases and original indices.
    func uploadGroupTables(centroids: [Float], dim: Int, groups: CentroidGroupTable) throws -> CoarseToFineTables {
        let k = centroids.count / dim
        guard groups.count >= 1, groups.centers.count == groups.count * dim, groups.members.count == k,
              groups.offsets.first == 0, Int(groups.offsets.last!) == k,
              zip(groups.offsets, groups.offsets.dropFirst()).allSatisfy({ $0 <= $1 }),
              groups.members.allSatisfy({ $0 >= 0 && Int($0) < k }) else {
            throw CUDAError.invalidArgument("coarse-to-fine: \(groups.count) groups do not partition \(k) centroids of dimension \(dim)")
        }
        let used = (0..<groups.count).filter { groups.offsets[$0 + 1] > groups.offsets[$0] }
        guard used.count <= Self.maximumCoarseGroups else {
            throw CUDAError.invalidArgument("coarse-to-fine: \(used.count) groups (at most \(Self.maximumCoarseGroups))")
        }
        func halfSquaredNorm(_ row: UnsafePointer<Float>) -> Float {
            var sum: Double = 0
            for j in 0..<dim { sum += Double(row[j]) * Double(row[j]) }
            return Float(-0.5 * sum)
        }
        var centers = [Float](), centerBias = [Float](), rows = [Float](), rowBias = [Float](), offsets: [Int32] = [0]
        centers.reserveCapacity(used.count * dim)
        rows.reserveCapacity(k * dim)
        rowBias.reserveCapacity(k)
        var index = [Int32]()
        index.reserveCapacity(k)
        groups.centers.withUnsafeBufferPointer { c in
            for g in used {
                centers.append(contentsOf: c[(g * dim)..<((g + 1) * dim)])
                centerBias.append(halfSquaredNorm(c.baseAddress! + g * dim))
            }
        }
        centroids.withUnsafeBufferPointer { c in
            for g in used {
                for at in Int(groups.offsets[g])..<Int(groups.offsets[g + 1]) {
                    let m = Int(groups.members[at])
                    rows.append(contentsOf: c[(m * dim)..<((m + 1) * dim)])
                    rowBias.append(halfSquaredNorm(c.baseAddress! + m * dim))
                    index.append(Int32(m))
                }
                offsets.append(Int32(index.count))
            }
        }
        return CoarseToFineTables(groups: used.count,
                                  centers: try uploadFloat32(centers, rows: used.count, cols: dim),
                                  centerBias: try uploadFloat32(centerBias, rows: 1, cols: used.count),
                                  rows: try uploadFloat32(rows, rows: k, cols: dim),
                                  rowBias: try uploadFloat32(rowBias, rows: 1, cols: k),
                                  rowIndex: try uploadInt32(index), offsets: try uploadInt32(offsets),
                                  byIndex: try uploadFloat32(centroids, rows: k, cols: dim))
    }

    /// Host Int32 values to a new device matrix of 4-byte slots.
    func uploadInt32(_ values: [Int32]) throws -> CUDAMatrix {
        let out = try makeMatrix(rows: 1, cols: max(1, values.count), type: .float32)
        try values.withUnsafeBytes { try copyPageable($0, to: out.pointer) }
        return out
    }

    func makeCoarseToFineScratch(capacity: Int, probes: Int, groups: Int) throws -> CoarseToFineScratch {
        let entries = capacity * probes
        guard entries < Int(Int32.max) else {
            throw CUDAError.invalidArgument("coarse-to-fine: \(capacity) vectors × \(probes) probes exceed 32-bit entry numbers")
        }
        func slots(_ n: Int) throws -> CUDAMatrix { try makeMatrix(rows: 1, cols: max(1, n), type: .float32) }
        return CoarseToFineScratch(capacity: capacity, top: try slots(entries), list: try slots(entries), score: try slots(entries),
                                   label: try slots(entries), counts: try slots(groups + 1), starts: try slots(groups + 1),
                                   cursor: try slots(groups + 1), tileStart: try slots(groups + 1))
    }

    /// Codes (Int32 at `out`) of `rows` fp32 vectors (stride `dim`) at `vectors`, queued on the compute stream.
    /// `traced(kernel)`, when given, runs after each launch (the trace synchronizes and times them).
    func coarseToFine(_ kernels: KMeansKernels, tables: CoarseToFineTables, vectors: UInt64, rows: Int, dim: Int, probes p: Int,
                      scratch: CoarseToFineScratch, out: UInt64, traced: ((String) throws -> Void)? = nil) throws {
        guard rows > 0 else { return }
        precondition(rows <= scratch.capacity && rows * p <= scratch.top.cols, "coarse-to-fine scratch too small")
        let g = Int32(tables.groups), n = Int64(rows), d = Int32(dim), probes = Int32(p)
        try context.check(context.driver.cuMemsetD8Async(scratch.counts.pointer, 0, scratch.counts.byteCount, context.computeStream), "cuMemsetD8Async")
        try context.launch(kernels("km_c2f_top"), grid: ((rows + 127) / 128, 1, 1), block: (128, 1, 1), [
            .pointer(vectors), .int64(n), .int32(d), .pointer(tables.centers.pointer), .pointer(tables.centerBias.pointer), .int32(g),
            .int32(probes), .pointer(scratch.top.pointer), .pointer(scratch.counts.pointer),
        ])
        try traced?("top")
        try context.launch(kernels("km_c2f_scan"), grid: (1, 1, 1), block: (256, 1, 1), [
            .pointer(scratch.counts.pointer), .int32(g), .pointer(scratch.starts.pointer), .pointer(scratch.cursor.pointer),
            .pointer(scratch.tileStart.pointer),
        ])
        try traced?("scan")
        try context.launch(kernels("km_c2f_scatter"), grid: ((rows + 255) / 256, 1, 1), block: (256, 1, 1), [
            .pointer(scratch.top.pointer), .int64(n), .int32(probes), .int32(g), .pointer(scratch.cursor.pointer), .pointer(scratch.list.pointer),
        ])
        try traced?("scatter")
        // At most one partial tile per group beyond the full ones; blocks past the last tile return at once.
        let tiles = (rows * p + Self.coarseToFineTileRows - 1) / Self.coarseToFineTileRows + tables.groups
        try context.launch(kernels("km_c2f_fine"), grid: (tiles, 1, 1), block: (Self.coarseToFineTileRows, 1, 1), [
            .pointer(vectors), .int32(d), .int32(probes), .pointer(tables.rows.pointer), .pointer(tables.rowBias.pointer),
            .pointer(tables.rowIndex.pointer), .pointer(tables.offsets.pointer), .pointer(scratch.starts.pointer),
            .pointer(scratch.tileStart.pointer), .int32(g), .pointer(scratch.list.pointer), .pointer(scratch.score.pointer),
            .pointer(scratch.label.pointer),
        ])
        try traced?("fine")
        try launchElementwise("km_c2f_reduce", kernels: kernels, count: rows, [
            .pointer(scratch.score.pointer), .pointer(scratch.label.pointer), .int64(n), .int32(probes), .pointer(out),
        ])
        try traced?("reduce")
    }
}
