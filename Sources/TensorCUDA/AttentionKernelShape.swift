import Foundation

/// How the tensor-core attention kernel is built: pipelined (the next key/value tile fetched into
/// registers while this one is scored, two shared buffers, one barrier a tile) or not, and the blocks
/// per multiprocessor its register budget is held to. The minimum-blocks values are the largest that
/// compile without spills on sm_90 (NVRTC's resource report; see docs/PERFORMANCE.md, session 7).
/// `COLGREP_ATTENTION_PIPELINE` (0 or 1) and `COLGREP_ATTENTION_MIN_BLOCKS` (1…8) override, for
/// measuring one variant against another in the same run.
struct AttentionKernelShape: Equatable {
    var pipelined: Bool
    var minBlocks: Int

    /// The default for a head dimension.
    static func standard(headDim: Int, pipelined: Bool? = nil) -> AttentionKernelShape {
        let pipelined = pipelined ?? defaultPipelined(headDim: headDim)
        let minBlocks = pipelined ? (headDim <= 32 ? 4 : 3) : (headDim <= 32 ? 5 : 4)
        return AttentionKernelShape(pipelined: pipelined, minBlocks: minBlocks)
    }

    /// Pipelined for head dimension 32, not for 64: measured on an H200 in one run (docs/PERFORMANCE.md,
    /// session 7), MiniLM's global attention (12 heads of 32) took 178 ms a pass pipelined against 195 ms
    /// plain, Ettin's (4 heads of 64) 59 + 51 ms against 58 + 45 ms.
    static func defaultPipelined(headDim: Int) -> Bool { headDim <= 32 }

    /// The default with the environment's overrides applied.
    static func chosen(headDim: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> AttentionKernelShape {
        let pipelined = environment["COLGREP_ATTENTION_PIPELINE"].flatMap { Int($0) }.map { $0 != 0 } ?? defaultPipelined(headDim: headDim)
        var shape = standard(headDim: headDim, pipelined: pipelined)
        if let blocks = environment["COLGREP_ATTENTION_MIN_BLOCKS"].flatMap({ Int($0) }), (1...8).contains(blocks) {
            shape.minBlocks = blocks
        }
        return shape
    }

    var compilerOptions: [String] { ["-DCG_ATT_PIPE=\(pipelined ? 1 : 0)", "-DCG_ATT_MINB=\(minBlocks)"] }
}
