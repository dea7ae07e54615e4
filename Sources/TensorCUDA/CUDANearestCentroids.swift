import Tensor

/// Codec and k-means assignment on the GPU for matrices already on the device: the fused kernel of the
/// k-means module (vectors × centroid tiles with −½‖c‖² as the accumulators' start, a running argmax in
/// registers, no score matrix in device memory), or, with `nearestCentroidKernel = .gemm`, a cuBLASLt
/// GEMM writing scores in chunks followed by a row argmax. One `Int32` per vector comes back.
extension CUDABackend: NearestCentroidAccelerating {
    /// Bytes of fp32 scores computed per chunk on the GEMM path (bounds its scratch for any n × k).
    static let scoreChunkBytes = 512 << 20

    public func acceleratedNearestCentroids(_ x: any DeviceMatrix, centroids: any DeviceMatrix, metric: CentroidMetric) throws -> [Int32] {
        try context.makeCurrent()
        let vectors = try cuda(x, "nearestCentroids vectors")
        let table = try cuda(centroids, "nearestCentroids centroids")
        guard vectors.cols == table.cols, vectors.elementType == table.elementType else {
            throw CUDAError.invalidArgument("nearestCentroids: \(vectors.cols)-d vectors against \(table.cols)-d centroids")
        }
        guard table.rows > 0 else { throw CUDAError.invalidArgument("nearestCentroids: no centroids") }
        guard vectors.rows > 0 else { return [] }
        if nearestCentroidKernel == .gemm || vectors.elementType != precision.elementType {
            return try gemmNearestCentroids(vectors, table, metric: metric)
        }
        let n = vectors.rows, k = table.rows, d = table.cols
        let kernels = try kmeansKernels(dim: d)
        var padded = vectors
        if kernels.paddedDim != d {
            padded = try makeMatrix(rows: n, cols: kernels.paddedDim)
            try launchElementwise("km_pad_rows", kernels: kernels, count: n * kernels.paddedDim, [
                .pointer(vectors.pointer), .pointer(padded.pointer), .int64(Int64(n)), .int32(Int32(d)),
            ])
        }
        let (prepared, bias) = try makeCentroidTable(kernels, count: k)
        try prepareCentroids(kernels, source: table.pointer, sourceIsFloat32: false, count: k, dim: d, euclidean: metric == .euclidean,
                             table: prepared, bias: bias)
        let codes = try makeMatrix(rows: 1, cols: n, type: .float32)  // 4-byte slots holding Int32
        try fusedAssign(kernels, vectors: padded.pointer, rows: n, table: prepared, bias: bias, out: codes.pointer)
        return try downloadFloats(codes).map { Int32(bitPattern: $0.bitPattern) }
    }

    private func gemmNearestCentroids(_ vectors: CUDAMatrix, _ table: CUDAMatrix, metric: CentroidMetric) throws -> [Int32] {
        let n = vectors.rows, k = table.rows, d = table.cols
        var bias: CUDAMatrix? = nil
        if metric == .euclidean {
            let norms = try makeMatrix(rows: 1, cols: k, type: .float32)
            try context.launch(coreFunction("half_squared_norms"), grid: ((k + 3) / 4, 1, 1), block: (128, 1, 1), [
                .pointer(table.pointer), .pointer(norms.pointer), .int32(Int32(k)), .int32(Int32(d)),
            ])
            bias = norms
        }
        let chunk = max(1, min(n, Self.scoreChunkBytes / (k * 4)))
        let scores = try makeMatrix(rows: chunk, cols: k, type: .float32)
        let codes = try makeMatrix(rows: 1, cols: n, type: .float32)  // 4-byte slots holding Int32
        let type: BLASLtMatmul.DataType = vectors.elementType == .bfloat16 ? .bfloat16 : .float32
        var start = 0
        while start < n {
            let rows = min(chunk, n - start)
            try blas.run(rows: rows, outFeatures: k, inFeatures: d, x: vectors.pointer + UInt64(start * d * vectors.elementType.size),
                         weight: table.pointer, bias: bias?.pointer, c: nil, beta: 0, d: scores.pointer,
                         input: type, output: .float32, epilogue: bias != nil ? .bias : .none)
            try context.launch(coreFunction("row_argmax"), grid: ((rows + 3) / 4, 1, 1), block: (128, 1, 1), [
                .pointer(scores.pointer), .pointer(codes.pointer + UInt64(start * 4)), .int32(Int32(rows)), .int32(Int32(k)),
            ])
            start += rows
        }
        return try downloadFloats(codes).map { Int32(bitPattern: $0.bitPattern) }
    }
}
