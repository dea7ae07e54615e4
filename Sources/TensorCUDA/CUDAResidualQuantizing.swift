import Foundation
import Tensor

/// The codec's assignment and residual encoding in one stream of the rows through the device: each chunk is
/// searched where it landed (coarse-to-fine or exhaustively, the kernels of `assignNearest`), then
/// `km_residual_pack` subtracts, buckets and packs it against the fp32 centroids, and only the codes and the
/// packed bytes are copied back at the end.
extension CUDABackend: ResidualQuantizing {
    public func assignAndQuantize(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable?,
                                  probes: Int, cutoffs: [Float], nbits: Int, codes: UnsafeMutablePointer<Int32>,
                                  packed: UnsafeMutablePointer<UInt8>) throws {
        try context.makeCurrent()
        let k = dim > 0 ? centroids.count / dim : 0
        guard dim > 0, k > 0, centroids.count == k * dim else {
            throw CUDAError.invalidArgument("assignAndQuantize: \(centroids.count) centroid values of dimension \(dim)")
        }
        guard ResidualPacking.isValid(dim: dim, nbits: nbits, cutoffs: cutoffs.count) else {
            throw CUDAError.invalidArgument("assignAndQuantize: \(dim)-d rows at \(nbits) bits with \(cutoffs.count) cutoffs")
        }
        guard count > 0 else { return }
        let kernels = try kmeansKernels(dim: dim)
        let rowBytes = ResidualPacking.bytesPerRow(dim: dim, nbits: nbits)
        let deviceCutoffs = try uploadFloat32(cutoffs, rows: 1, cols: cutoffs.count)
        let labels = try makeMatrix(rows: 1, cols: count, type: .float32)  // 4-byte slots holding Int32
        let bytes = try makeMatrix(rows: 1, cols: (count * rowBytes + 3) / 4, type: .float32)  // 4-byte slots holding the packed bytes
        let plan = RowUploadPlan(count: count, rowBytes: dim * 4, chunkBytes: uploadChunkBytes)
        let search: (UInt64, Int, UInt64) throws -> Void
        let fp32Centroids: CUDAMatrix
        if let groups, probes > 0 {
            let tables = try cachedGroupTables(centroids: centroids, dim: dim, groups: groups)
            fp32Centroids = tables.byIndex
            let p = min(probes, tables.groups)
            let scratch = try makeCoarseToFineScratch(capacity: plan.rowsPerChunk, probes: p, groups: tables.groups, convertingFor: kernels)
            search = { chunk, rows, out in
                try self.coarseToFine(kernels, tables: tables, vectors: .float32(chunk), rows: rows, dim: dim, probes: p, scratch: scratch, out: out)
            }
        } else {
            let prepared = try cachedCentroidTable(kernels, centroids: centroids, dim: dim)
            fp32Centroids = prepared.fp32
            let (table, bias) = prepared.search
            let act = try makeMatrix(rows: plan.rowsPerChunk, cols: kernels.paddedDim)
            search = { chunk, rows, out in
                try self.convertRows(kernels, source: chunk, rows: rows, dim: dim, destination: act.pointer)
                try self.fusedAssign(kernels, vectors: act.pointer, rows: rows, table: table, bias: bias, out: out)
            }
        }
        try streamRows(points, count: count, dim: dim, destination: nil) { chunk, rows in
            let out = labels.pointer + UInt64(rows.lowerBound * 4)
            try search(chunk, rows.count, out)
            try launchElementwise("km_residual_pack", kernels: kernels, count: rows.count * rowBytes, [
                .pointer(chunk), .pointer(out), .int64(Int64(rows.count)), .int32(Int32(dim)), .pointer(fp32Centroids.pointer),
                .pointer(deviceCutoffs.pointer), .int32(Int32(nbits)), .pointer(bytes.pointer + UInt64(rows.lowerBound * rowBytes)),
            ])
        }
        try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(codes), labels.pointer, count * 4, context.computeStream),
                          "cuMemcpyDtoHAsync")
        try context.check(context.driver.cuMemcpyDtoHAsync(UnsafeMutableRawPointer(packed), bytes.pointer, count * rowBytes, context.computeStream),
                          "cuMemcpyDtoHAsync")
        try context.synchronize()
    }
}
