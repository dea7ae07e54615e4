import Foundation

/// How the tensor-core attention kernel is built: pipelined (the next key/value tile fetched into
/// registers while this one is scored, two shared buffers, one barrier a tile) or not; how many 16-row MMA
/// tiles each of its 4 warps owns (1: 64-row query tiles; 2: 128-row query tiles, each key/value fragment
/// read from shared memory feeding two MMAs and each key/value tile fetched once per 128 query rows); and
/// the blocks per multiprocessor its register budget is held to. The minimum-blocks values are the largest
/// that compile without spills on sm_90 (NVRTC's resource report; see docs/PERFORMANCE.md, sessions 7 and 11).
/// The module is compiled with denormals flushed to zero (`-ftz=true`): each exp2 of the softmax is then one
/// `MUFU.EX2` instead of that plus two multiplies and a compare (SASS of the head-dim-64 kernel: 3,304 → 3,080
/// instructions); what changes is only values under 2⁻¹²⁶ (probabilities that round away next to the row's
/// maximum of 1, rotated q/k entries of that size), so the same results in practice.
/// `COLGREP_ATTENTION_PIPELINE` (0 or 1), `COLGREP_ATTENTION_WARP_ROWS` (16 or 32; 16, 64-row tiles, is the
/// default), `COLGREP_ATTENTION_BRANCHFREE` (0 or 1), `COLGREP_ATTENTION_MIN_BLOCKS` (1…8) and
/// `COLGREP_ATTENTION_FTZ` (0 or 1) and `COLGREP_ATTENTION_ASYNC` (0 or 1) override, for measuring one variant
/// against another in the same run.
struct AttentionKernelShape: Equatable {
    var pipelined: Bool
    var rowTilesPerWarp: Int
    /// Interior key tiles on a branch-free path (more MMA chains in flight, more registers).
    var branchFree: Bool
    var minBlocks: Int
    var flushesDenormals = true
    /// The next key/value tile copied into a second shared buffer by `cp.async` while this one is scored
    /// (no registers held for it, unlike `pipelined`); the key tile is rotated where it lands. Excludes `pipelined`.
    var asynchronous = false

    /// Query rows one block covers: the backend lists the batch's query tiles at this size.
    var queryTileRows: Int { 64 * rowTilesPerWarp }

    /// The default for a head dimension.
    static func standard(headDim: Int, pipelined: Bool? = nil, rowTilesPerWarp: Int? = nil, branchFree: Bool? = nil,
                         asynchronous: Bool? = nil) -> AttentionKernelShape {
        let asynchronous = asynchronous ?? defaultAsynchronous(headDim: headDim)
        let pipelined = !asynchronous && (pipelined ?? defaultPipelined(headDim: headDim))
        let rowTiles = rowTilesPerWarp ?? 1
        let branchFree = branchFree ?? defaultBranchFree(headDim: headDim)
        // The most blocks per multiprocessor that compile without spills (NVRTC 12.9, sm_90, -ftz=true):
        // 64-row tiles without the branch-free path as in session 7 (126 registers at 4 for head dim 64 plain);
        // with it, head dim 64 173 registers plain / 220 pipelined at 2, head dim 32 118 plain at 4, 140
        // pipelined at 3. 128-row tiles: 255 / 188 (plain, 64 / 32), 208 (pipelined, 32) at 2; head dim 64
        // pipelined spills 152 bytes even at 2. Asynchronous copies: head dim 32 branch-free 118 at 4; head dim 64
        // plain 128 registers with 12 bytes of spills at 4, 134 without at 3.
        let minBlocks: Int
        if rowTiles == 1 && !branchFree {
            minBlocks = pipelined ? (headDim <= 32 ? 4 : 3) : (headDim <= 32 ? 5 : 4)
        } else if rowTiles == 1 {
            minBlocks = headDim <= 32 ? (pipelined ? 3 : 4) : 2
        } else {
            minBlocks = 2
        }
        return AttentionKernelShape(pipelined: pipelined, rowTilesPerWarp: rowTiles, branchFree: branchFree, minBlocks: minBlocks,
                                    asynchronous: asynchronous)
    }

    /// `cp.async` key/value double buffer for head dimension 32 only. Measured on an H100 (session 12): MiniLM's
    /// attention 108.2 ms a pass against 126.8 for the register-pipelined kernel (64-row tiles, branch-free, 4
    /// blocks per multiprocessor instead of 3); Ettin's head dim 64 went from 51.4–53.9 + 38.8 ms to 53.9–58.0 +
    /// 39.9 (3 blocks: 58.6–63.6 + 44.0).
    static func defaultAsynchronous(headDim: Int) -> Bool { headDim <= 32 }

    /// Pipelined for head dimension 32, not for 64: measured on an H200 in one run (docs/PERFORMANCE.md,
    /// session 7), MiniLM's global attention (12 heads of 32) took 178 ms a pass pipelined against 195 ms
    /// plain, Ettin's (4 heads of 64) 59 + 51 ms against 58 + 45 ms.
    static func defaultPipelined(headDim: Int) -> Bool { headDim <= 32 }

    /// Branch-free interior tiles for head dimension 32 only. Measured on an H100 (session 11, cuda-1): MiniLM's
    /// attention 126.8 ms a pass with it (64-row tiles, pipelined) against 176.4 for session 7's kernel; for
    /// head dim 64 the extra registers halved the blocks per multiprocessor and Ettin's attention went from
    /// 57.6 + 45.5 ms to 68.8 + 56.9. 128-row tiles (`COLGREP_ATTENTION_WARP_ROWS=32`) measured slower for head
    /// dim 32 (140.4 ms) and for Ettin's local layers (64.6), faster only for Ettin's global ones (52.4).
    static func defaultBranchFree(headDim: Int) -> Bool { headDim <= 32 }

    /// The default with the environment's overrides applied. `windowed` tells a sliding-window layer's kernel
    /// from a global one's: `COLGREP_ATTENTION_GLOBAL_WARP_ROWS` / `COLGREP_ATTENTION_LOCAL_WARP_ROWS` and
    /// `COLGREP_ATTENTION_GLOBAL_BRANCHFREE` / `COLGREP_ATTENTION_LOCAL_BRANCHFREE` set one kind of layer's
    /// shape alone (a model with both kinds then loads two modules), over the variables for both; likewise
    /// `COLGREP_ATTENTION_GLOBAL_ASYNC` / `COLGREP_ATTENTION_LOCAL_ASYNC` over `COLGREP_ATTENTION_ASYNC`.
    static func chosen(headDim: Int, windowed: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment) -> AttentionKernelShape {
        let kind = windowed ? "LOCAL" : "GLOBAL"
        let pipelined = environment["COLGREP_ATTENTION_PIPELINE"].flatMap { Int($0) }.map { $0 != 0 }
        let asynchronous = (environment["COLGREP_ATTENTION_\(kind)_ASYNC"] ?? environment["COLGREP_ATTENTION_ASYNC"]).flatMap { Int($0) }.map { $0 != 0 }
        let rowTiles = (environment["COLGREP_ATTENTION_\(kind)_WARP_ROWS"] ?? environment["COLGREP_ATTENTION_WARP_ROWS"])
            .flatMap { Int($0) }.flatMap { [16: 1, 32: 2][$0] }
        let branchFree = (environment["COLGREP_ATTENTION_\(kind)_BRANCHFREE"] ?? environment["COLGREP_ATTENTION_BRANCHFREE"])
            .flatMap { Int($0) }.map { $0 != 0 }
        // Asking for the register-pipelined kernel turns the asynchronous copies off unless they are asked for too.
        var shape = standard(headDim: headDim, pipelined: pipelined, rowTilesPerWarp: rowTiles, branchFree: branchFree,
                             asynchronous: asynchronous ?? (pipelined == true ? false : nil))
        if let ftz = environment["COLGREP_ATTENTION_FTZ"].flatMap({ Int($0) }) { shape.flushesDenormals = ftz != 0 }
        if let blocks = environment["COLGREP_ATTENTION_MIN_BLOCKS"].flatMap({ Int($0) }), (1...8).contains(blocks) {
            shape.minBlocks = blocks
        }
        return shape
    }

    var compilerOptions: [String] {
        ["-DCG_ATT_PIPE=\(pipelined ? 1 : 0)", "-DCG_ATT_MT=\(rowTilesPerWarp)", "-DCG_ATT_BRANCHFREE=\(branchFree ? 1 : 0)",
         "-DCG_ATT_MINB=\(minBlocks)"]
            + (asynchronous ? ["-DCG_ATT_ASYNC=1"] : [])
            + (flushesDenormals ? ["-ftz=true"] : [])
    }
}
