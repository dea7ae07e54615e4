import CCUDA
import Foundation
import Tensor

/// Whether the GEMMs whose activation cuBLASLt cannot fuse run on the warpgroup-MMA kernel
/// (`KernelSource.gemmWarpgroup`, Hopper only) with the activation in its epilogue: the exact GELU after
/// BERT's MLP input, the GeGLU after ModernBERT's. `COLGREP_WGMMA=0` keeps them on cuBLASLt with the
/// activation in a pass of its own (for measuring one against the other).
public enum WarpgroupGemmSetting {
    public static var environment: Bool { ProcessInfo.processInfo.environment["COLGREP_WGMMA"] != "0" }
    /// `COLGREP_WGMMA_ERF=erff`: the epilogue's GELU through erff instead of its branch-free erf (the two agree to
    /// fp32's rounding; erff measured slower). For measuring one against the other.
    static var compilerOptions: [String] { ProcessInfo.processInfo.environment["COLGREP_WGMMA_ERF"] == "erff" ? ["-DWG_ERFF=1"] : [] }
    /// The only architecture the kernel is built for, and what NVRTC is asked to compile it as (`wgmma` exists
    /// only in the architecture-specific sm_90a target).
    static let deviceArchitecture = "sm_90", compiledArchitecture = "sm_90a"
}

extension CUDABackend {
    /// Loads (or compiles) the warpgroup-MMA module on a GPU of compute capability 9.0, its kernel allowed the dynamic
    /// shared memory its three stages need; nil elsewhere. Denormals flush to zero (`-ftz=true`, as in the attention
    /// module): the epilogue's exp and reciprocal are then one special-function op each instead of that plus a range
    /// check and two rescalings (NVRTC 12.9's SASS: 8,368 → 7,248 instructions); only values under 2⁻¹²⁶ change, which
    /// the bf16 output keeps as zero or a denormal of no weight.
    func loadWarpgroupGemm() throws -> CUfunction? {
        guard precision == .bf16, context.architecture == WarpgroupGemmSetting.deviceArchitecture else { return nil }
        let (module, _) = try loadModule(name: EncoderKernelModules.gemmWarpgroup, source: KernelSource.gemmWarpgroup,
                                         options: precisionOptions + WarpgroupGemmSetting.compilerOptions + ["-ftz=true"],
                                         architecture: WarpgroupGemmSetting.compiledArchitecture)
        let function = try context.function(module, KernelSource.warpgroupGemmKernel)
        try context.check(context.driver.cuFuncSetAttribute(function, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES),
                                                            Int32(KernelSource.warpgroupGemmSharedBytes)),
                          "cuFuncSetAttribute(\(KernelSource.warpgroupGemmKernel), \(KernelSource.warpgroupGemmSharedBytes) shared bytes)")
        return function
    }

    /// Whether `x · wᵀ` fits the kernel: loaded and enabled, whole 64-wide input steps, whole 128-row weight tiles.
    func runsWarpgroup(inFeatures: Int, outFeatures: Int) -> Bool {
        usesWarpgroupGemm && warpgroupGemmKernel != nil && inFeatures > 0 && inFeatures % KernelSource.warpgroupGemmTile.depth == 0
            && outFeatures > 0 && outFeatures % KernelSource.warpgroupGemmTile.weightRows == 0
    }

    /// `activation(x · wᵀ + bias)` (`geglu` false), or with `w`'s rows `[a | g]`, `gelu(a) · g` of the two halves
    /// (`geglu` true; half as wide), on the warpgroup-MMA kernel, into `out` if given; `runsWarpgroup` must hold.
    func warpgroupLinear(_ x: CUDAMatrix, weight w: CUDAMatrix, bias b: CUDAMatrix?, activation: Activation, geglu: Bool,
                         into given: CUDAMatrix? = nil) throws -> CUDAMatrix {
        let out = try given ?? makeMatrix(rows: x.rows, cols: geglu ? w.rows / 2 : w.rows)
        guard x.rows > 0, let kernel = warpgroupGemmKernel else { return out }
        let tile = KernelSource.warpgroupGemmTile
        let kind: Int32 = activation == .gelu ? 1 : (activation == .geluTanh ? 2 : 0)
        try context.launch(kernel, grid: (w.rows / tile.weightRows, (x.rows + tile.rows - 1) / tile.rows, 1),
                           block: (tile.threads, 1, 1), sharedBytes: KernelSource.warpgroupGemmSharedBytes, [
                               .pointer(x.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
                               .int32(Int32(x.rows)), .int32(Int32(w.rows)), .int32(Int32(w.cols)), .int32(kind), .int32(geglu ? 1 : 0),
                           ])
        warpgroupGemmCount += 1
        return out
    }
}
