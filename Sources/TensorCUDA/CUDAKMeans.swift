import CCUDA
import CKernels
import Dispatch
import Foundation
import Tensor

/// k-means on the GPU: the sample is uploaded once (fp32 for the sums, padded activations for the
/// fused assignment kernel), every Lloyd iteration runs on the device (centroid table and biases,
/// fused assignment, atomic per-centroid sums and counts, the mean update, empty centroids kept), and
/// bulk assignment streams host vectors through pinned staging buffers, the copy of one chunk
/// overlapping the conversion and assignment of the previous one. Only centroids and codes come back.
extension CUDABackend: KMeansAccelerating {
    /// What every Lloyd run starts with (exhaustive or grouped): the arguments checked, k, the k-means
    /// kernels for `dim` and a device buffer for the fp32 points.
    func lloydInputs(count: Int, dim: Int, centroids: [Float]) throws -> (k: Int, kernels: KMeansKernels, x32: CUDAMatrix) {
        try context.makeCurrent()
        let k = dim > 0 ? centroids.count / dim : 0
        guard dim > 0, k > 0, centroids.count == k * dim, count > 0 else {
            throw CUDAError.invalidArgument("lloydIterations: \(count) points of dimension \(dim) and \(centroids.count) centroid values")
        }
        return (k, try kmeansKernels(dim: dim), try makeMatrix(rows: count, cols: dim, type: .float32))
    }

    public func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        try lloydIterations(points, count: count, gathering: nil, dim: dim, centroids: centroids, iterations: iterations)
    }

    public func lloydIterations(points: UnsafePointer<Float>, sample: [Int], dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
        try sample.withUnsafeBufferPointer {
            try lloydIterations(points, count: sample.count, gathering: $0.baseAddress!, dim: dim, centroids: centroids, iterations: iterations)
        }
    }

    /// Lloyd on `count` rows streamed up from `points`: its first rows, or the rows `gathering` names (copied straight
    /// into the pinned staging pieces, so the gather overlaps the DMA of the piece before).
    private func lloydIterations(_ points: UnsafePointer<Float>, count: Int, gathering: UnsafePointer<Int>?, dim: Int, centroids: [Float],
                                 iterations: Int) throws -> [Float] {
        var trace = KMeansStepTrace(context: context, dim: dim, count: count)
        let (k, kernels, x32) = try lloydInputs(count: count, dim: dim, centroids: centroids)
        let act = try makeMatrix(rows: count, cols: kernels.paddedDim)
        let (table, bias) = try makeCentroidTable(kernels, count: k)
        let (current, labels, sums, counts) = try lloydBuffers(centroids: centroids, k: k, dim: dim, rows: count)
        try trace.mark("allocate")
        let rowBytes = kernels.paddedDim * precision.elementType.size
        try streamRows(points, count: count, dim: dim, destination: x32.pointer, gathering: gathering) { chunk, rows in
            try convertRows(kernels, source: chunk, rows: rows.count, dim: dim, destination: act.pointer + UInt64(rows.lowerBound * rowBytes))
        }
        try trace.mark("upload")
        for iteration in 0..<max(0, iterations) {
            try prepareCentroids(kernels, source: current.pointer, sourceIsFloat32: true, count: k, dim: dim, euclidean: true, table: table, bias: bias)
            try fusedAssign(kernels, vectors: act.pointer, rows: count, table: table, bias: bias, out: labels.pointer)
            try trace.mark("iteration \(iteration) assign")
            try moveCentroidsToMeans(kernels, x32: x32, count: count, dim: dim, labels: labels, sums: sums, counts: counts,
                                     centroids: current, k: k)
            try trace.mark("iteration \(iteration) accumulate and update")
        }
        return try downloadFloats(current)
    }

    public func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float],
                              into codes: UnsafeMutablePointer<Int32>) throws {
        try context.makeCurrent()
        let k = dim > 0 ? centroids.count / dim : 0
        guard dim > 0, k > 0, centroids.count == k * dim else {
            throw CUDAError.invalidArgument("assignNearest: \(centroids.count) centroid values of dimension \(dim)")
        }
        guard count > 0 else { return }
        var trace = KMeansStepTrace(context: context, dim: dim, count: count)
        let kernels = try kmeansKernels(dim: dim)
        let (table, bias) = try cachedCentroidTable(kernels, centroids: centroids, dim: dim).search
        let labels = try makeMatrix(rows: 1, cols: count, type: .float32)  // 4-byte slots holding Int32
        try trace.mark("assign: table and codes allocated")
        let out = { (rows: Range<Int>) in labels.pointer + UInt64(rows.lowerBound * 4) }
        if precision == .bf16 {
            // Rows rounded to bf16 on the host as they are staged (the kernel's input, bit for bit): half the bytes up.
            try streamRows(points, count: count, dim: dim, destination: nil, format: .bf16(paddedDim: kernels.paddedDim)) { chunk, rows in
                try fusedAssign(kernels, vectors: chunk, rows: rows.count, table: table, bias: bias, out: out(rows))
            }
        } else {
            let plan = RowUploadPlan(count: count, rowBytes: dim * 4, chunkBytes: uploadChunkBytes)
            let act = try makeMatrix(rows: plan.rowsPerChunk, cols: kernels.paddedDim)
            try streamRows(points, count: count, dim: dim, destination: nil) { chunk, rows in
                try convertRows(kernels, source: chunk, rows: rows.count, dim: dim, destination: act.pointer)
                try fusedAssign(kernels, vectors: act.pointer, rows: rows.count, table: table, bias: bias, out: out(rows))
            }
        }
        try trace.mark("assign: rows streamed and assigned")
        try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(codes), labels.pointer, count * 4, context.computeStream), "cuMemcpyDtoHAsync")
        try context.synchronize()
        try trace.mark("assign: codes back")
    }

    /// `centroids` (`k × dim`) as the exhaustive search reads them (padded activation rows and −½‖c‖² biases) and as
    /// fp32 rows (the residual packing's), kept for the next call with the same centroids: a build assigns ~40 batches
    /// against one codec, and each uploaded and prepared the table again (16.8 MB of fp32 at K = 32,768, 128-d).
    func cachedCentroidTable(_ kernels: KMeansKernels, centroids: [Float], dim: Int) throws -> CentroidTableCache {
        if let cached = centroidTableCache, cached.dim == dim, cached.centroids == centroids { return cached }
        centroidTableCache = nil
        let k = centroids.count / dim
        let fp32 = try uploadFloat32(centroids, rows: k, cols: dim)
        let (table, bias) = try makeCentroidTable(kernels, count: k)
        try prepareCentroids(kernels, source: fp32.pointer, sourceIsFloat32: true, count: k, dim: dim, euclidean: true, table: table, bias: bias)
        let made = CentroidTableCache(centroids: centroids, dim: dim, fp32: fp32, search: (table, bias))
        centroidTableCache = made
        return made
    }

    /// The last centroids `cachedCentroidTable` prepared, with what it made of them.
    struct CentroidTableCache {
        let centroids: [Float]
        let dim: Int
        let fp32: CUDAMatrix
        let search: (table: CUDAMatrix, bias: CUDAMatrix)
    }

    /// What every Lloyd run on the device updates: the current centroids (uploaded from `centroids`), a label a row, and
    /// the per-centroid sums and counts (4-byte slots holding Int32 for labels and counts).
    func lloydBuffers(centroids: [Float], k: Int, dim: Int, rows: Int) throws -> (current: CUDAMatrix, labels: CUDAMatrix, sums: CUDAMatrix, counts: CUDAMatrix) {
        (try uploadFloat32(centroids, rows: k, cols: dim), try makeMatrix(rows: 1, cols: rows, type: .float32), try makeLloydSums(k: k, dim: dim),
         try makeMatrix(rows: 1, cols: k, type: .float32))
    }

    /// Lloyd's per-centroid sums, `k × dim` 64-bit fixed-point slots (`km_accumulate`: order-independent sums), held
    /// in an fp32 matrix of twice the width.
    func makeLloydSums(k: Int, dim: Int) throws -> CUDAMatrix {
        try makeMatrix(rows: k, cols: 2 * dim, type: .float32)
    }

    /// One Lloyd update on the device, shared by the exhaustive and grouped iterations: the rows' sums and counts
    /// per label (`km_accumulate`), then each centroid moved to its mean (`km_update`; an empty one stays put).
    func moveCentroidsToMeans(_ kernels: KMeansKernels, x32: CUDAMatrix, count: Int, dim: Int, labels: CUDAMatrix,
                              sums: CUDAMatrix, counts: CUDAMatrix, centroids: CUDAMatrix, k: Int) throws {
        try context.check(context.driver.cuMemsetD8Async(sums.pointer, 0, sums.byteCount, context.computeStream), "cuMemsetD8Async")
        try context.check(context.driver.cuMemsetD8Async(counts.pointer, 0, counts.byteCount, context.computeStream), "cuMemsetD8Async")
        try launchElementwise("km_accumulate", kernels: kernels, count: count * dim, [
            .pointer(x32.pointer), .int64(Int64(count)), .int32(Int32(dim)), .pointer(labels.pointer), .pointer(sums.pointer), .pointer(counts.pointer),
        ])
        try launchElementwise("km_update", kernels: kernels, count: k * dim, [
            .pointer(centroids.pointer), .pointer(sums.pointer), .pointer(counts.pointer), .int32(Int32(k)), .int32(Int32(dim)),
        ])
    }

    /// Host floats (centroids, group tables: megabytes) to a new fp32 device matrix, copied on the compute
    /// stream straight from pageable memory: the driver stages it before the call returns, so the array may go
    /// at once, and the pinned staging buffers are not grown to a centroid table's size (page-locking costs
    /// ~0.55 ms per MiB, paid on a process's first k-means).
    func uploadFloat32(_ values: [Float], rows: Int, cols: Int) throws -> CUDAMatrix {
        precondition(values.count == rows * cols, "uploadFloat32: \(values.count) values for \(rows) × \(cols)")
        let out = try makeMatrix(rows: rows, cols: cols, type: .float32)
        try values.withUnsafeBytes { try copyPageable($0, to: out.pointer) }
        return out
    }

    /// `bytes` of pageable host memory to `destination`, ordered on the compute stream.
    func copyPageable(_ bytes: UnsafeRawBufferPointer, to destination: UInt64) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try context.check(context.driver.cuMemcpyHtoDAsync(destination, base, bytes.count, context.computeStream), "cuMemcpyHtoDAsync")
    }

    /// Copies `count` host rows (`dim` floats each; the rows `gathering` names, in its order, when given) to the device
    /// chunk by chunk (`RowUploadPlan`): each chunk
    /// lands at `destination` + its offset (kept), or, without a destination, in one of two scratch buffers reused
    /// once `body` has consumed them; `body(chunk, rows)` queues work on the compute stream after the chunk has
    /// landed. A chunk crosses in pieces of at most `uploadStagingBytes` through the two pinned upload buffers,
    /// alternating: the host copy of one piece into its buffer (split over the cores) overlaps the DMA from the
    /// other and the compute stream's work on earlier chunks.
    ///
    /// Why pieces smaller than chunks: the kernels want large chunks (bulk assignment runs once per chunk; 8 MiB
    /// chunks measured slower, session 10), but a 64 MiB piece grew both pinned buffers to 80 MiB on a process's
    /// first k-means, ~88 ms of page-locking (~0.55 ms per MiB; session 10) paid inside Lloyd's first run at widths
    /// over 64. The link moves 8 MiB pinned copies about as fast as large ones (50.5 against 54.9 GB/s at 2 GiB on the
    /// H100 host, session 27). At 128-d Lloyd's first run still takes 0.155–0.198 s against 0.146–0.154 later (session 27).
    func streamRows(_ points: UnsafePointer<Float>, count: Int, dim: Int, destination: UInt64?, format: StreamedRowFormat = .float32,
                    gathering: UnsafePointer<Int>? = nil, _ body: (UInt64, Range<Int>) throws -> Void) throws {
        guard count > 0, dim > 0 else { return }
        uploadStagingGrowth.wait()
        let rowBytes = format.deviceRowBytes(dim: dim)
        let plan = RowUploadPlan(count: count, rowBytes: dim * 4, chunkBytes: uploadChunkBytes)
        var scratch: [CUDAMatrix] = []
        if destination == nil {
            for _ in 0..<min(2, plan.chunks.count) {
                switch format {
                case .float32: scratch.append(try makeMatrix(rows: plan.rowsPerChunk, cols: dim, type: .float32))
                case .bf16(let paddedDim): scratch.append(try makeMatrix(rows: plan.rowsPerChunk, cols: paddedDim, type: .bfloat16))
                }
            }
        }
        let landed = [try context.makeEvent(), try context.makeEvent()]
        let consumed = [try context.makeEvent(), try context.makeEvent()]
        defer { for event in landed + consumed { _ = context.driver.cuEventDestroy(event) } }
        var piecesSent = 0
        for (index, rows) in plan.chunks.enumerated() {
            let slot = index % 2
            let target: UInt64
            if let destination {
                target = destination + UInt64(rows.lowerBound * rowBytes)
            } else {
                target = scratch[slot].pointer
                if index >= 2 { try context.check(context.driver.cuStreamWaitEvent(context.copyStream, consumed[slot], 0), "cuStreamWaitEvent") }
            }
            for piece in RowUploadPlan(count: rows.count, rowBytes: rowBytes, chunkBytes: uploadStagingBytes).chunks {
                let staging = uploadStaging[piecesSent % 2]
                piecesSent += 1
                let bytes = piece.count * rowBytes
                let host = try staging.acquire(bytes: bytes)  // waits for this buffer's previous DMA
                let first = rows.lowerBound + piece.lowerBound
                if let gathering {
                    format.copy(points, rows: gathering + first, count: piece.count, dim: dim, into: host)
                } else {
                    format.copy(points + first * dim, rows: piece.count, dim: dim, into: host)
                }
                try context.check(context.driver.cuMemcpyHtoDAsync(target + UInt64(piece.lowerBound * rowBytes), host, bytes, context.copyStream),
                                  "cuMemcpyHtoDAsync")
                try staging.markUsed(on: context.copyStream)
            }
            try context.order(context.computeStream, after: context.copyStream, event: landed[slot])
            try body(target, rows)
            try context.check(context.driver.cuEventRecord(consumed[slot], context.computeStream), "cuEventRecord")
        }
        // Scratch goes back to the pool, where only compute-stream order protects it.
        if !scratch.isEmpty { try context.synchronize() }
    }

    /// Seconds to stream `count` host rows up through `streamRows` with nothing computed on them (as fp32, or rounded to
    /// bf16 while staged), and the rows' fp32 bytes: the host feed's own speed, for `colgrep bench gpu-kmeans`.
    public func measureRowFeed(_ points: UnsafePointer<Float>, count: Int, dim: Int, bf16: Bool = false) throws -> (seconds: Double, bytes: Int) {
        try context.makeCurrent()
        try context.synchronize()
        let start = ContinuousClock.now
        let format: StreamedRowFormat = bf16 ? .bf16(paddedDim: KMeansKernels.paddedDim(dim)) : .float32
        try streamRows(points, count: count, dim: dim, destination: nil, format: format) { _, _ in }
        try context.synchronize()
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18, count * dim * 4)
    }
}

/// How `streamRows` sends host fp32 rows: as they are, or as bf16 rows zero-padded to `paddedDim` (what the k-means
/// module's `km_convert_rows` would make of them on the device, rounded the same way on the host while they are
/// copied into pinned memory: half the bytes over PCIe and into the staging buffer). Measured on the H100 host
/// (session 27): fp32 rows streamed at 20.5–23 GB/s against the link's 55 GB/s for pinned copies, the host copy
/// (a read and a write of every byte beside the DMA's read) being the bound.
enum StreamedRowFormat {
    case float32
    case bf16(paddedDim: Int)

    var isBF16: Bool {
        if case .bf16 = self { return true }
        return false
    }

    func deviceRowBytes(dim: Int) -> Int {
        switch self {
        case .float32: return dim * 4
        case .bf16(let paddedDim): return paddedDim * 2
        }
    }

    /// `rows` host rows into pinned memory at `host` in this format, split over the cores.
    func copy(_ source: UnsafePointer<Float>, rows: Int, dim: Int, into host: UnsafeMutableRawPointer) {
        switch self {
        case .float32:
            CUDABackend.copyInParallel(to: host, from: UnsafeRawPointer(source), bytes: rows * dim * 4)
        case .bf16(let paddedDim):
            let from = UInt(bitPattern: source), to = UInt(bitPattern: host)
            CUDABackend.inParallelSlices(units: rows, unitBytes: dim * 4) { slice in
                ck_rows_to_bf16(UnsafePointer<Float>(bitPattern: from)! + slice.lowerBound * dim, slice.count, dim, paddedDim,
                                UnsafeMutablePointer<UInt16>(bitPattern: to)! + slice.lowerBound * paddedDim)
            }
        }
    }

    /// The rows `rows[0..<count]` of `points` (in that order) into pinned memory at `host` in this format, split over the
    /// cores; fp32 rows are gathered with prefetching (`ck_gather_rows_f32`).
    func copy(_ points: UnsafePointer<Float>, rows: UnsafePointer<Int>, count: Int, dim: Int, into host: UnsafeMutableRawPointer) {
        let from = UInt(bitPattern: points), to = UInt(bitPattern: host), indices = UInt(bitPattern: rows)
        switch self {
        case .float32:
            CUDABackend.inParallelSlices(units: count, unitBytes: dim * 4) { slice in
                ck_gather_rows_f32(UnsafePointer<Float>(bitPattern: from)!, dim, UnsafePointer<Int64>(bitPattern: indices)! + slice.lowerBound,
                                   slice.count, UnsafeMutablePointer<Float>(bitPattern: to)! + slice.lowerBound * dim)
            }
        case .bf16(let paddedDim):
            CUDABackend.inParallelSlices(units: count, unitBytes: dim * 4) { slice in
                let source = UnsafePointer<Float>(bitPattern: from)!, index = UnsafePointer<Int>(bitPattern: indices)!
                let out = UnsafeMutablePointer<UInt16>(bitPattern: to)!
                for r in slice { ck_rows_to_bf16(source + index[r] * dim, 1, dim, paddedDim, out + r * paddedDim) }
            }
        }
    }
}
