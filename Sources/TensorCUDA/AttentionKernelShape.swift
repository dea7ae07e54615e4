import Foundation

/// How the tensor-core attention kernel is built: pipelined (the next key/value tile fetched into
/// registers while this one is scored, two shared buffers, one barrier a tile) or not; how many 16-row MMA
/// tiles each of its 4 warps owns (1: 64-row query tiles; 2: 128-row query tiles, each key/value fragment
/// read from shared memory feeding two MMAs and each key/value tile fetched once per 128 query rows); and
/// the blocks per multiprocessor its register budget is held to. The minimum-blocks values are the largest
/// that compile without spills on sm_90 (NVRTC's resource report; see docs/PERFORMANCE.md, sessions 7 and 11).
/// `COLGREP_ATTENTION_PIPELINE` (0 or 1), `COLGREP_ATTENTION_WARP_ROWS` (16 or 32) and
/// `COLGREP_ATTENTION_MIN_BLOCKS` (1…8) override, for measuring one variant against another in the same run.
struct AttentionKernelShape: Equatable {
    var pipelined: Bool
    var rowTilesPerWarp: Int
    var minBlocks: Int

    /// Query rows one block covers: the backend lists the batch's query tiles at this size.
    var queryTileRows: Int { 64 * rowTilesPerWarp }

    /// The default for a head dimension.
    static func standard(headDim: Int, pipelined: Bool? = nil, rowTilesPerWarp: Int? = nil) -> AttentionKernelShape {
        let pipelined = pipelined ?? defaultPipelined(headDim: headDim)
        let rowTiles = rowTilesPerWarp ?? defaultRowTilesPerWarp(headDim: headDim)
        let minBlocks: Int
        if rowTiles == 1 {
            minBlocks = pipelined ? (headDim <= 32 ? 4 : 3) : (headDim <= 32 ? 5 : 4)
        } else {
            // NVRTC 12.9, sm_90: head dim 64 plain 255 registers at 2 (168 and 152 bytes of spills at 3);
            // head dim 32 plain 168 at 3, pipelined 206 at 2. Head dim 64 pipelined spills 136 bytes even at 2.
            minBlocks = pipelined ? 2 : (headDim <= 32 ? 3 : 2)
        }
        return AttentionKernelShape(pipelined: pipelined, rowTilesPerWarp: rowTiles, minBlocks: minBlocks)
    }

    /// Pipelined for head dimension 32, not for 64: measured on an H200 in one run (docs/PERFORMANCE.md,
    /// session 7), MiniLM's global attention (12 heads of 32) took 178 ms a pass pipelined against 195 ms
    /// plain, Ettin's (4 heads of 64) 59 + 51 ms against 58 + 45 ms.
    static func defaultPipelined(headDim: Int) -> Bool { headDim <= 32 }

    /// Two row tiles per warp (128-row query tiles) for both head dimensions: with one, every MMA's key or
    /// value fragment is its own `ldmatrix`, so shared-memory reads, not the tensor cores, set the pace.
    static func defaultRowTilesPerWarp(headDim: Int) -> Int { 2 }

    /// The default with the environment's overrides applied.
    static func chosen(headDim: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> AttentionKernelShape {
        let pipelined = environment["COLGREP_ATTENTION_PIPELINE"].flatMap { Int($0) }.map { $0 != 0 } ?? defaultPipelined(headDim: headDim)
        let rowTiles = environment["COLGREP_ATTENTION_WARP_ROWS"].flatMap { Int($0) }.flatMap { [16: 1, 32: 2][$0] }
        var shape = standard(headDim: headDim, pipelined: pipelined, rowTilesPerWarp: rowTiles)
        if let blocks = environment["COLGREP_ATTENTION_MIN_BLOCKS"].flatMap({ Int($0) }), (1...8).contains(blocks) {
            shape.minBlocks = blocks
        }
        return shape
    }

    var compilerOptions: [String] {
        ["-DCG_ATT_PIPE=\(pipelined ? 1 : 0)", "-DCG_ATT_MT=\(rowTilesPerWarp)", "-DCG_ATT_MINB=\(minBlocks)"]
    }
}
