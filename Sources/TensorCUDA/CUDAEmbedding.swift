import Foundation
import Tensor

extension CUDABackend {
    /// The embedding stage in one kernel (`embed_layer_norm`) where it applies: bf16 rows at most 512 wide whose width is
    /// a multiple of 8, shapes that agree, and a layer norm that would not be left to the next GEMM (`defersLayerNorm`:
    /// under `COLGREP_FUSE` or the resident GEMM a deferred norm also decides which GEMM kernel runs, so it keeps that
    /// route). It gives the bits of gather → add → layer norm without writing the gathered rows and their sum out; both
    /// id arrays go up in one copy. Anything else, or `fusesEmbedding` off, runs those ops one by one.
    public func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                      normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
        let table = try cuda(words, "embedding table")
        let positionTable = try positions.map { try cuda($0.table, "position table") }
        let w = try cuda(normWeight, "layerNorm weight"), b = try normBias.map { try cuda($0, "layerNorm bias") }
        let cols = table.cols
        let elementType = precision.elementType
        // Mismatched shapes fall through to the separate ops, which throw the errors they always have.
        let shapesFit = !ids.isEmpty && table.elementType == elementType && w.count == cols && (b?.count ?? cols) == cols
            && (positionTable.map { $0.cols == cols && $0.elementType == elementType } ?? true) && (positions?.ids.count ?? ids.count) == ids.count
        guard fusesEmbedding, precision == .bf16, cols % 8 == 0, cols <= 512, shapesFit,
              !defersLayerNorm(of: table) else {  // (only the width counts)
            return try embedInSeparateOps(words: words, ids: ids, positions: positions, normWeight: normWeight, normBias: normBias, eps: eps)
        }
        return try profiled("embed") {
            try context.makeCurrent()
            try checkIDs(ids, of: table)
            if let positions, let positionTable { try checkIDs(positions.ids, of: positionTable) }
            let deviceIDs = try uploadInts(ids + (positions?.ids ?? []))
            let out = try makeMatrix(rows: ids.count, cols: cols)
            // Four rows per warp, 16 per 128-thread block (layer_norm_vec8_narrow's shape).
            try context.launch(coreFunction("embed_layer_norm"), grid: ((ids.count + 15) / 16, 1, 1), block: (128, 1, 1), [
                .pointer(table.pointer), .pointer(positionTable?.pointer ?? 0), .pointer(deviceIDs.pointer),
                .pointer(positions == nil ? 0 : deviceIDs.pointer + UInt64(ids.count * MemoryLayout<Int32>.size)),
                .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
                .int32(Int32(ids.count)), .int32(Int32(cols)), .float(eps),
            ])
            fusedEmbedCount += 1
            return out
        }
    }
}
