import CCUDA
import Foundation
import Tensor

/// Coarse-to-fine nearest-centroid search on the GPU, the CPU path's algorithm (`CentroidAssigner`): each
/// vector scores the G group centres and keeps its `probes` best (`km_c2f_top`), the (vector, probe)
/// entries are bucketed by group (`km_c2f_scan`, `km_c2f_scatter`), each group's centroids are scored
/// against the vectors that probe it (`km_c2f_fine`) and a vector's best probe is its code
/// (`km_c2f_reduce`). At K = 32,768 and G = 256 a vector scores 256 + 8 · 128 rows instead of 32,768.
///
/// Two forms of the search. In bf16 builds up to 128 padded dimensions (`KMeansKernels.coarseToFineTensorCore`) the
/// vectors are bf16 rows (streamed so from the host, or converted on the device) and the fine search runs on tensor
/// cores (`km_c2f_fine_mma`): the scores the exhaustive bf16 search computes, at a twentieth of its work. Elsewhere,
/// and with `COLGREP_GPU_COARSE_MMA=0`, fp32 FMA on the fp32 rows (`km_c2f_top`, `km_c2f_fine`).
extension CUDABackend: CoarseToFineAssigning {
    /// `KM_PMAX` of the kernels where the grouped search is the default, else 0 (callers then search
    /// exhaustively, the session-8 path). Measured (docs/PERFORMANCE.md, session 9; one H200, 10M vectors,
    /// K = 32,768): bulk assignment at 48-d 0.105–0.12 s grouped vs 0.18–0.19 s exhaustive, at 128-d
    /// 0.31 s both (the host-to-device copy bounds it); grouped Lloyd no faster at 48-d (0.087–0.091 s warm
    /// vs 0.088–0.093) and slower at 128-d (0.41–0.93 s vs 0.25–0.37). So by default: bulk assignment of rows
    /// up to 64 wide, and wider rows where the search runs on tensor cores (bf16 rows: half the bytes up, and
    /// the fine search no longer fp32 FMA). `COLGREP_GPU_COARSE=all` groups everything (Lloyd too, any width),
    /// `=0` nothing.
    public func maximumProbes(dim: Int, lloyd: Bool) -> Int {
        switch Self.coarseToFineSetting {
        case "0": return 0
        case "all": return 8
        default: return !lloyd && (dim <= 64 || coarseToFineOnTensorCores(dim: dim)) ? 8 : 0
        }
    }
    static let coarseToFineSetting = ProcessInfo.processInfo.environment["COLGREP_GPU_COARSE"] ?? ""
    /// `COLGREP_GPU_COARSE_MMA=0`: the grouped search in fp32 FMA even where tensor cores would run it (for measuring).
    static let coarseToFineTensorCoreSetting = ProcessInfo.processInfo.environment["COLGREP_GPU_COARSE_MMA"] != "0"

    /// Whether the grouped search of `dim`-wide rows runs on tensor cores here (what `kmeansKernels` loads for it).
    func coarseToFineOnTensorCores(dim: Int) -> Bool {
        Self.coarseToFineTensorCoreSetting && precision == .bf16 && KMeansKernels.paddedDim(dim) <= 128
    }

    /// The tensor-core kernels of the grouped search, where they loaded and are not switched off.
    func coarseToFineTensorCore(_ kernels: KMeansKernels) -> CoarseToFineTensorCoreKernels? {
        Self.coarseToFineTensorCoreSetting ? kernels.coarseToFineTensorCore : nil
    }
    /// `KM_GMAX` of the kernels (the shared-memory histogram's size).
    static let maximumCoarseGroups = 2048
    /// `KM_FINE_ROWS` of the kernels (entries a fine block scores).
    static let coarseToFineTileRows = 128

    /// A grouping on the device: the non-empty groups' centres and biases, the centroids stored group
    /// by group (`rows`) with their biases, original indices and group offsets; and the centroids in their own
    /// order (`byIndex`, fp32, for the codec's residuals: uploaded with the tables, not again for every batch);
    /// where the search runs on tensor cores, the centres and the group-ordered centroids also as padded bf16 rows
    /// (`centersAct`, `rowsAct`).
    struct CoarseToFineTables {
        let groups: Int
        let centers: CUDAMatrix, centerBias: CUDAMatrix
        let rows: CUDAMatrix, rowBias: CUDAMatrix, rowIndex: CUDAMatrix, offsets: CUDAMatrix
        let byIndex: CUDAMatrix
        let centersAct: CUDAMatrix?, rowsAct: CUDAMatrix?
    }

    /// Per-call scratch for up to `capacity` vectors of `probes` entries each; `act` holds fp32 vectors converted for
    /// the tensor-core search (made where that search takes fp32 vectors).
    struct CoarseToFineScratch {
        let capacity: Int
        let top: CUDAMatrix, list: CUDAMatrix, score: CUDAMatrix, label: CUDAMatrix
        let counts: CUDAMatrix, starts: CUDAMatrix, cursor: CUDAMatrix, tileStart: CUDAMatrix
        /// Each fine tile's group (`km_c2f_tile_groups` writes it): room for every full tile and one partial tile a group.
        let tileGroup: CUDAMatrix
        let act: CUDAMatrix?
    }

    /// The vectors `coarseToFine` searches: fp32 rows of stride `dim` (converted to bf16 rows first where the search runs
    /// on tensor cores), or rows already in the kernels' padded bf16 form (`streamRows`' `.bf16`).
    enum CoarseToFineVectors {
        case float32(UInt64)
        case act(UInt64)
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
        var trace = KMeansStepTrace(context: context, dim: dim, count: count)
        try trace.mark("grouped assign: tables and scratch")
        // On tensor cores the rows are rounded to bf16 on the host as they are staged (the kernels' input, bit for
        // bit): half the bytes up, as in the exhaustive search.
        let onTensorCores = coarseToFineTensorCore(kernels) != nil
        let format: StreamedRowFormat = onTensorCores ? .bf16(paddedDim: kernels.paddedDim) : .float32
        try streamRows(points, count: count, dim: dim, destination: nil, format: format) { chunk, rows in
            try coarseToFine(kernels, tables: tables, vectors: onTensorCores ? .act(chunk) : .float32(chunk), rows: rows.count, dim: dim,
                             probes: p, scratch: scratch, out: labels.pointer + UInt64(rows.lowerBound * 4))
        }
        try trace.mark("grouped assign: rows streamed and assigned")
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
        let (current, labels, sums, counts) = try lloydBuffers(centroids: centroids, k: k, dim: dim, rows: count)
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
                    scratch = try makeCoarseToFineScratch(capacity: count, probes: p, groups: tables.groups, convertingFor: kernels)
                }
                try coarseToFine(kernels, tables: tables, vectors: .float32(x32.pointer), rows: count, dim: dim, probes: p, scratch: scratch!,
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
        // Each group's members in increasing index order: the tensor-core search's tie rule (the smallest position
        // among equal scores) then gives the smallest index, as the fp32 search's explicit comparison does.
        var index = [Int32](), offsets: [Int32] = [0], centers = [Float]()
        index.reserveCapacity(k)
        centers.reserveCapacity(used.count * dim)
        for g in used {
            index.append(contentsOf: groups.members[Int(groups.offsets[g])..<Int(groups.offsets[g + 1])].sorted())
            offsets.append(Int32(index.count))
            centers.append(contentsOf: groups.centers[(g * dim)..<((g + 1) * dim)])
        }
        // Only the centroids, centres and the member order cross; the group-ordered table and every bias (−½‖c‖²,
        // summed in double as the host would) are made on the device (was ~20–30 ms of host work and uploads at
        // K = 32,768, 128-d, inside every grouped assignment; session 28).
        let kernels = try kmeansKernels(dim: dim)
        let byIndex = try uploadFloat32(centroids, rows: k, cols: dim)
        let rowIndex = try uploadInt32(index)
        let rows = try makeMatrix(rows: k, cols: dim, type: .float32)
        try launchElementwise("km_gather_rows", kernels: kernels, count: k * dim, [
            .pointer(byIndex.pointer), .pointer(rowIndex.pointer), .int64(Int64(k)), .int32(Int32(dim)), .pointer(rows.pointer),
        ])
        let deviceCenters = try uploadFloat32(centers, rows: used.count, cols: dim)
        func halfSquaredNorms(_ matrix: CUDAMatrix, count: Int) throws -> CUDAMatrix {
            let out = try makeMatrix(rows: 1, cols: count, type: .float32)
            try self.halfSquaredNorms(kernels, of: matrix, count: count, dim: dim, into: out)
            return out
        }
        var rowsAct: CUDAMatrix? = nil, centersAct: CUDAMatrix? = nil
        if coarseToFineOnTensorCores(dim: dim), coarseToFineTensorCore(kernels) != nil {
            rowsAct = try makeMatrix(rows: k, cols: kernels.paddedDim)
            try convertRows(kernels, source: rows.pointer, rows: k, dim: dim, destination: rowsAct!.pointer)
            centersAct = try makeMatrix(rows: used.count, cols: kernels.paddedDim)
            try convertRows(kernels, source: deviceCenters.pointer, rows: used.count, dim: dim, destination: centersAct!.pointer)
        }
        return CoarseToFineTables(groups: used.count, centers: deviceCenters, centerBias: try halfSquaredNorms(deviceCenters, count: used.count),
                                  rows: rows, rowBias: try halfSquaredNorms(rows, count: k), rowIndex: rowIndex,
                                  offsets: try uploadInt32(offsets), byIndex: byIndex, centersAct: centersAct, rowsAct: rowsAct)
    }

    /// Fine blocks for `entries` (vector, probe) entries over `groups` groups: at most one partial tile per group beyond
    /// the full ones (blocks past the last tile return at once).
    static func fineTiles(entries: Int, groups: Int) -> Int {
        (entries + coarseToFineTileRows - 1) / coarseToFineTileRows + groups
    }

    /// Host Int32 values to a new device matrix of 4-byte slots.
    func uploadInt32(_ values: [Int32]) throws -> CUDAMatrix {
        let out = try makeMatrix(rows: 1, cols: max(1, values.count), type: .float32)
        try values.withUnsafeBytes { try copyPageable($0, to: out.pointer) }
        return out
    }

    /// Scratch for `coarseToFine`; with `convertingFor` kernels whose search runs on tensor cores, room for `capacity`
    /// fp32 vectors converted to their bf16 rows.
    func makeCoarseToFineScratch(capacity: Int, probes: Int, groups: Int, convertingFor kernels: KMeansKernels? = nil) throws -> CoarseToFineScratch {
        let entries = capacity * probes
        guard entries < Int(Int32.max) else {
            throw CUDAError.invalidArgument("coarse-to-fine: \(capacity) vectors × \(probes) probes exceed 32-bit entry numbers")
        }
        func slots(_ n: Int) throws -> CUDAMatrix { try makeMatrix(rows: 1, cols: max(1, n), type: .float32) }
        return CoarseToFineScratch(capacity: capacity, top: try slots(entries), list: try slots(entries), score: try slots(entries),
                                   label: try slots(entries), counts: try slots(groups + 1), starts: try slots(groups + 1),
                                   cursor: try slots(groups + 1), tileStart: try slots(groups + 1),
                                   tileGroup: try slots(Self.fineTiles(entries: entries, groups: groups)),
                                   act: try kernels.flatMap { coarseToFineTensorCore($0) == nil ? nil : try makeMatrix(rows: capacity, cols: $0.paddedDim) })
    }

    /// Codes (Int32 at `out`) of `rows` vectors at `vectors`, queued on the compute stream: on tensor cores where
    /// `kernels` have them (fp32 vectors converted into `scratch.act` first), else fp32 FMA on fp32 vectors.
    /// `traced(kernel)`, when given, runs after each launch (the trace synchronizes and times them).
    func coarseToFine(_ kernels: KMeansKernels, tables: CoarseToFineTables, vectors: CoarseToFineVectors, rows: Int, dim: Int, probes p: Int,
                      scratch: CoarseToFineScratch, out: UInt64, traced: ((String) throws -> Void)? = nil) throws {
        guard rows > 0 else { return }
        precondition(rows <= scratch.capacity && rows * p <= scratch.top.cols, "coarse-to-fine scratch too small")
        let tensorCore = coarseToFineTensorCore(kernels).flatMap { tables.rowsAct == nil || tables.centersAct == nil ? nil : $0 }
        // The rows the kernels read: bf16 rows of the padded width on tensor cores, else the fp32 rows.
        let input: UInt64
        switch (vectors, tensorCore) {
        case (.act(let rowsAct), .some):
            input = rowsAct
        case (.float32(let rows32), .some):
            guard let act = scratch.act else { throw CUDAError.invalidArgument("coarse-to-fine: no room to convert fp32 vectors for tensor cores") }
            try convertRows(kernels, source: rows32, rows: rows, dim: dim, destination: act.pointer)
            try traced?("convert")
            input = act.pointer
        case (.float32(let rows32), .none):
            input = rows32
        case (.act, .none):
            throw CUDAError.invalidArgument("coarse-to-fine: bf16 vectors need the tensor-core search, which is not loaded")
        }
        let g = Int32(tables.groups), n = Int64(rows), d = Int32(dim), probes = Int32(p)
        try context.check(context.driver.cuMemsetD8Async(scratch.counts.pointer, 0, scratch.counts.byteCount, context.computeStream), "cuMemsetD8Async")
        let top: [KernelArgument] = [.pointer(tables.centerBias.pointer), .int32(g), .int32(probes), .pointer(scratch.top.pointer),
                                     .pointer(scratch.counts.pointer)]
        if let tensorCore, let centersAct = tables.centersAct {
            try context.launch(tensorCore.top, grid: ((rows + Self.coarseToFineTileRows - 1) / Self.coarseToFineTileRows, 1, 1),
                               block: (Self.coarseToFineTileRows, 1, 1), sharedBytes: tensorCore.topSharedBytes,
                               [.pointer(input), .int64(n), .pointer(centersAct.pointer)] + top)
        } else {
            try context.launch(kernels("km_c2f_top"), grid: ((rows + 127) / 128, 1, 1), block: (128, 1, 1),
                               [.pointer(input), .int64(n), .int32(d), .pointer(tables.centers.pointer)] + top)
        }
        try traced?("top")
        try context.launch(kernels("km_c2f_scan"), grid: (1, 1, 1), block: (256, 1, 1), [
            .pointer(scratch.counts.pointer), .int32(g), .pointer(scratch.starts.pointer), .pointer(scratch.cursor.pointer),
            .pointer(scratch.tileStart.pointer),
        ])
        try context.launch(kernels("km_c2f_tile_groups"), grid: (tables.groups, 1, 1), block: (128, 1, 1), [
            .pointer(scratch.tileStart.pointer), .pointer(scratch.tileGroup.pointer),
        ])
        try traced?("scan")
        try context.launch(kernels("km_c2f_scatter"), grid: ((rows + 255) / 256, 1, 1), block: (256, 1, 1), [
            .pointer(scratch.top.pointer), .int64(n), .int32(probes), .int32(g), .pointer(scratch.cursor.pointer), .pointer(scratch.list.pointer),
        ])
        try traced?("scatter")
        let tiles = Self.fineTiles(entries: rows * p, groups: tables.groups)
        let tail: [KernelArgument] = [
            .pointer(tables.rowBias.pointer), .pointer(tables.rowIndex.pointer), .pointer(tables.offsets.pointer), .pointer(scratch.starts.pointer),
            .pointer(scratch.tileStart.pointer), .pointer(scratch.tileGroup.pointer), .int32(g), .pointer(scratch.list.pointer), .pointer(scratch.score.pointer),
            .pointer(scratch.label.pointer),
        ]
        if let tensorCore, let rowsAct = tables.rowsAct {
            try context.launch(tensorCore.fine, grid: (tiles, 1, 1), block: (Self.coarseToFineTileRows, 1, 1), sharedBytes: tensorCore.fineSharedBytes,
                               [.pointer(input), .int32(probes), .pointer(rowsAct.pointer)] + tail)
        } else {
            try context.launch(kernels("km_c2f_fine"), grid: (tiles, 1, 1), block: (Self.coarseToFineTileRows, 1, 1),
                               [.pointer(input), .int32(d), .int32(probes), .pointer(tables.rows.pointer)] + tail)
        }
        try traced?("fine")
        try launchElementwise("km_c2f_reduce", kernels: kernels, count: rows, [
            .pointer(scratch.score.pointer), .pointer(scratch.label.pointer), .int64(n), .int32(probes), .pointer(out),
        ])
        try traced?("reduce")
    }
}
