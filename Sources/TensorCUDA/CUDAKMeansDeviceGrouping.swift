import CCUDA
import Foundation
import Tensor

/// Grouped Lloyd iterations whose grouping is made on the device too (`DeviceGroupedLloyd`). The grouped search
/// of a million sample rows on tensor cores takes 2.5–4 ms an iteration, where the exhaustive one takes 13 ms
/// (48-d) to 20 ms (128-d); grouping the centroids on the host each iteration cost more than that saved (download,
/// `KMeans.group`, tables: 10–20 ms an iteration, session 29), so the grouping runs here, from the same initial
/// centres the host would draw: Lloyd of the centroids into the group centres (the exhaustive kernels, K = 256 is
/// small), each centroid's nearest centre, the member table (`km_group_offsets`, `km_group_members`) and the tables the search reads.
extension CUDABackend: DeviceGroupedLloyd {
    /// `COLGREP_GPU_LLOYD_GROUPED=0`: Lloyd searches exhaustively again (for measuring).
    static let deviceGroupedLloydSetting = ProcessInfo.processInfo.environment["COLGREP_GPU_LLOYD_GROUPED"] != "0"

    /// Where the grouped search runs on tensor cores (bf16 builds up to 128 padded dimensions).
    public func groupsLloydOnDevice(dim: Int) -> Bool {
        Self.deviceGroupedLloydSetting && coarseToFineOnTensorCores(dim: dim)
    }

    public func groupedLloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int,
                                       probes: Int, grouping plan: CentroidGroupingPlan) throws -> [Float] {
        var trace = KMeansStepTrace(context: context, dim: dim, count: sample.count)
        let (k, kernels, x32) = try lloydInputs(count: sample.count, dim: dim, centroids: centroids)
        guard plan.groups > 1, plan.groups <= Self.maximumCoarseGroups, plan.groups <= k, plan.initialCenters.count >= iterations,
              plan.initialCenters.allSatisfy({ $0.count == plan.groups && $0.allSatisfy { $0 >= 0 && Int($0) < k } }), probes > 0 else {
            throw CUDAError.invalidArgument("grouped Lloyd: \(plan.groups) groups of \(k) centroids, \(plan.initialCenters.count) initial-centre lists for \(iterations) iterations, \(probes) probes")
        }
        let count = sample.count
        // Rows for the search: bf16 rows of the padded width on tensor cores (converted once, as they land), else fp32.
        let tensorCore = coarseToFineTensorCore(kernels) != nil && coarseToFineOnTensorCores(dim: dim)
        let act = tensorCore ? try makeMatrix(rows: count, cols: kernels.paddedDim) : nil
        let rowBytes = kernels.paddedDim * precision.elementType.size
        try sample.withUnsafeBufferPointer { rows in
            try streamRows(points, count: count, dim: dim, destination: x32.pointer, gathering: rows.baseAddress!) { chunk, range in
                if let act {
                    try convertRows(kernels, source: chunk, rows: range.count, dim: dim, destination: act.pointer + UInt64(range.lowerBound * rowBytes))
                }
            }
        }
        try trace.mark("upload")
        let (current, labels, sums, counts) = try lloydBuffers(centroids: centroids, k: k, dim: dim, rows: count)
        let p = min(probes, plan.groups)
        let scratch = try makeCoarseToFineScratch(capacity: count, probes: p, groups: plan.groups)
        let grouping = try DeviceCentroidGrouping(self, kernels: kernels, k: k, dim: dim, groups: plan.groups, tensorCore: tensorCore)
        let vectors: CoarseToFineVectors = act.map { .act($0.pointer) } ?? .float32(x32.pointer)
        for iteration in 0..<max(0, iterations) {
            let tables = try grouping.tables(of: current, initialCenters: plan.initialCenters[iteration], iterations: plan.iterations,
                                             traced: KMeansStepTrace.enabled ? { try trace.mark("iteration \(iteration) \($0)") } : nil)
            try trace.mark("iteration \(iteration) grouping")
            try coarseToFine(kernels, tables: tables, vectors: vectors, rows: count, dim: dim, probes: p, scratch: scratch, out: labels.pointer)
            try trace.mark("iteration \(iteration) assign")
            if KMeansStepTrace.enabled {
                func ints(_ m: CUDAMatrix, _ n: Int) throws -> [Int32] { try downloadFloats(m).prefix(n).map { Int32(bitPattern: $0.bitPattern) } }
                trace.describeGroups("iteration \(iteration)", offsets: try ints(tables.offsets, plan.groups + 1), entries: try ints(scratch.counts, plan.groups))
                try trace.mark("iteration \(iteration) described")
            }
            try moveCentroidsToMeans(kernels, x32: x32, count: count, dim: dim, labels: labels, sums: sums, counts: counts,
                                     centroids: current, k: k)
            try trace.mark("iteration \(iteration) accumulate and update")
        }
        return try downloadFloats(current)
    }

    /// One grouping of `k` centroids into `groups` on the device, made again from each iteration's centroids in buffers
    /// allocated once. Its tables are those buffers: valid until the next `tables(of:…)` (stream order keeps the search
    /// queued before it reading the right ones).
    struct DeviceCentroidGrouping {
        let backend: CUDABackend
        let kernels: KMeansKernels
        let k: Int, dim: Int, groups: Int
        let centroidsAct: CUDAMatrix
        let centers: CUDAMatrix, centerBias: CUDAMatrix, table: CUDAMatrix, tableBias: CUDAMatrix
        let labels: CUDAMatrix, sums: CUDAMatrix, counts: CUDAMatrix
        let offsets: CUDAMatrix, members: CUDAMatrix, rows: CUDAMatrix, rowBias: CUDAMatrix
        let centersAct: CUDAMatrix?, rowsAct: CUDAMatrix?

        init(_ backend: CUDABackend, kernels: KMeansKernels, k: Int, dim: Int, groups: Int, tensorCore: Bool) throws {
            self.backend = backend
            self.kernels = kernels
            self.k = k
            self.dim = dim
            self.groups = groups
            func slots(_ n: Int) throws -> CUDAMatrix { try backend.makeMatrix(rows: 1, cols: max(1, n), type: .float32) }
            centroidsAct = try backend.makeMatrix(rows: k, cols: kernels.paddedDim)
            centers = try backend.makeMatrix(rows: groups, cols: dim, type: .float32)
            centerBias = try slots(groups)
            (table, tableBias) = try backend.makeCentroidTable(kernels, count: groups)
            labels = try slots(k)
            sums = try backend.makeLloydSums(k: groups, dim: dim)
            counts = try slots(groups)
            offsets = try slots(groups + 1)
            members = try slots(k)
            rows = try backend.makeMatrix(rows: k, cols: dim, type: .float32)
            rowBias = try slots(k)
            centersAct = tensorCore ? try backend.makeMatrix(rows: groups, cols: kernels.paddedDim) : nil
            rowsAct = tensorCore ? try backend.makeMatrix(rows: k, cols: kernels.paddedDim) : nil
        }

        /// `KMeans.group` of the fp32 centroids at `centroids` (`k × dim`), queued on the compute stream.
        /// `traced(step)`, when given, runs after each step (the trace synchronizes and times them).
        func tables(of centroids: CUDAMatrix, initialCenters: [Int32], iterations: Int,
                    traced: ((String) throws -> Void)? = nil) throws -> CoarseToFineTables {
            let context = backend.context
            try backend.convertRows(kernels, source: centroids.pointer, rows: k, dim: dim, destination: centroidsAct.pointer)
            let seeds = try backend.uploadInt32(initialCenters)
            try backend.launchElementwise("km_gather_rows", kernels: kernels, count: groups * dim, [
                .pointer(centroids.pointer), .pointer(seeds.pointer), .int64(Int64(groups)), .int32(Int32(dim)), .pointer(centers.pointer),
            ])
            try traced?("grouping: initial centres")
            // Lloyd of the centroids into the group centres, then each centroid's nearest centre (the host: `lloyd` on the
            // backend, then `nearestInParallel`).
            for _ in 0..<max(0, iterations) {
                try nearestCenters()
                try backend.moveCentroidsToMeans(kernels, x32: centroids, count: k, dim: dim, labels: labels, sums: sums, counts: counts,
                                                 centroids: centers, k: groups)
            }
            try nearestCenters()
            try traced?("grouping: Lloyd of the centres")
            try backend.halfSquaredNorms(kernels, of: centers, count: groups, dim: dim, into: centerBias)
            try context.launch(kernels("km_group_offsets"), grid: (1, 1, 1), block: (1024, 1, 1), [
                .pointer(labels.pointer), .int32(Int32(k)), .int32(Int32(groups)), .pointer(offsets.pointer), .pointer(centerBias.pointer),
            ])
            try context.launch(kernels("km_group_members"), grid: (groups, 1, 1), block: (256, 1, 1), [
                .pointer(labels.pointer), .int32(Int32(k)), .pointer(offsets.pointer), .pointer(members.pointer),
            ])
            try traced?("grouping: members")
            try backend.launchElementwise("km_gather_rows", kernels: kernels, count: k * dim, [
                .pointer(centroids.pointer), .pointer(members.pointer), .int64(Int64(k)), .int32(Int32(dim)), .pointer(rows.pointer),
            ])
            try backend.halfSquaredNorms(kernels, of: rows, count: k, dim: dim, into: rowBias)
            if let centersAct, let rowsAct {
                try backend.convertRows(kernels, source: rows.pointer, rows: k, dim: dim, destination: rowsAct.pointer)
                try backend.convertRows(kernels, source: centers.pointer, rows: groups, dim: dim, destination: centersAct.pointer)
            }
            try traced?("grouping: tables")
            return CoarseToFineTables(groups: groups, centers: centers, centerBias: centerBias, rows: rows, rowBias: rowBias, rowIndex: members,
                                      offsets: offsets, byIndex: centroids, centersAct: centersAct, rowsAct: rowsAct)
        }

        /// Each centroid's nearest group centre (exhaustive: K × groups is small) into `labels`.
        private func nearestCenters() throws {
            try backend.prepareCentroids(kernels, source: centers.pointer, sourceIsFloat32: true, count: groups, dim: dim, euclidean: true,
                                         table: table, bias: tableBias)
            try backend.fusedAssign(kernels, vectors: centroidsAct.pointer, rows: k, table: table, bias: tableBias, out: labels.pointer)
        }
    }
}
