/// The names under which an encoder's kernel modules are compiled and cached
/// (`<name>-<architecture>-<hash>.cubin` in the kernel cache). One list for the backend that loads them
/// and for the routing planner, which looks for them to tell a cached start from a compile: the two
/// drifted apart once (the planner looked for "attention-64" after the module became "attention-mma-64",
/// so every GPU run was planned with ~3.7 s of compiling it never did).
public enum EncoderKernelModules {
    /// Element-wise, norm, RoPE and gather kernels.
    public static let core = "core"
    /// The first batches' tensor-core GEMM (bf16 only; cuBLASLt takes over once it has opened).
    public static let gemm = "gemm"
    /// The warpgroup-MMA GEMM with the activations cuBLASLt cannot fuse (bf16, compute capability 9.0 only;
    /// compiled as sm_90a).
    public static let gemmWarpgroup = "gemm-wgmma"

    /// The attention module for one head size: tensor-core or the portable scalar kernel.
    public static func attention(headDim: Int, tensorCore: Bool) -> String {
        "attention-\(tensorCore ? "mma" : "scalar")-\(headDim)"
    }

    /// Every module a forward pass of a model with `headDim`-wide heads loads at this precision.
    public static func all(headDim: Int, bf16: Bool) -> [String] {
        let tensorCore = bf16 && KernelSource.tensorCoreHeadDims.contains(headDim)
        return [core] + (bf16 ? [gemm] : []) + [attention(headDim: headDim, tensorCore: tensorCore)]
    }

    /// The kernel cache's file-name prefixes (`<module>-<architecture>-`) of every module a forward pass loads
    /// on a GPU of `architecture` (`sm_90`, …): the warpgroup GEMM's under the architecture it is compiled as.
    public static func cachePrefixes(headDim: Int, bf16: Bool, architecture: String) -> [String] {
        let warpgroup = bf16 && architecture == WarpgroupGemmSetting.deviceArchitecture && WarpgroupGemmSetting.environment
        return all(headDim: headDim, bf16: bf16).map { "\($0)-\(architecture)-" }
            + (warpgroup ? ["\(gemmWarpgroup)-\(WarpgroupGemmSetting.compiledArchitecture)-"] : [])
    }
}
