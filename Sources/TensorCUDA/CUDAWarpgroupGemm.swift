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
    /// `COLGREP_WGMMA_WS=1`: the warp-specialized form of the kernel (`gemm_wgmma_ws`; for measuring one against the other).
    static var specializedEnvironment: Bool { ProcessInfo.processInfo.environment["COLGREP_WGMMA_WS"] == "1" }
    /// `COLGREP_WGMMA_WS_PRODUCERS` (1…3): its producer warps (default 2; with 4 two blocks a multiprocessor no longer
    /// have the registers).
    static let producerWarps = ProcessInfo.processInfo.environment["COLGREP_WGMMA_WS_PRODUCERS"].flatMap { Int($0) }
        .flatMap { (1...3).contains($0) ? $0 : nil } ?? 2
}

extension CUDABackend {
    /// Loads (or compiles) the warpgroup-MMA module on a GPU of compute capability 9.0, its kernel allowed the dynamic
    /// shared memory its three stages need; nil elsewhere. Denormals flush to zero (`-ftz=true`, as in the attention
    /// module): the epilogue's exp and reciprocal are then one special-function op each instead of that plus a range
    /// check and two rescalings (NVRTC 12.9's SASS: 8,368 → 7,248 instructions); only values under 2⁻¹²⁶ change, which
    /// the bf16 output keeps as zero or a denormal of no weight.
    /// Also returns the module's warp-specialized form (`gemm_wgmma_ws`).
    func loadWarpgroupGemm() throws -> (CUfunction, specialized: CUfunction)? {
        guard precision == .bf16, context.architecture == WarpgroupGemmSetting.deviceArchitecture else { return nil }
        let (module, _) = try loadModule(name: EncoderKernelModules.gemmWarpgroup, source: KernelSource.gemmWarpgroup,
                                         options: precisionOptions + WarpgroupGemmSetting.compilerOptions + ["-ftz=true",
                                                  "-DWS_PRODUCER_WARPS=\(WarpgroupGemmSetting.producerWarps)"],
                                         architecture: WarpgroupGemmSetting.compiledArchitecture)
        func allowed(_ name: String, sharedBytes: Int) throws -> CUfunction {
            let function = try context.function(module, name)
            try context.check(context.driver.cuFuncSetAttribute(function, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES), Int32(sharedBytes)),
                              "cuFuncSetAttribute(\(name), \(sharedBytes) shared bytes)")
            return function
        }
        return (try allowed(KernelSource.warpgroupGemmKernel, sharedBytes: KernelSource.warpgroupGemmSharedBytes),
                try allowed(KernelSource.warpgroupSpecializedKernel, sharedBytes: KernelSource.warpgroupSpecializedSharedBytes))
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
        let specialized = usesSpecializedWarpgroupGemm ? warpgroupSpecializedKernel : nil
        try context.launch(specialized ?? kernel, grid: (w.rows / tile.weightRows, (x.rows + tile.rows - 1) / tile.rows, 1),
                           block: (specialized == nil ? tile.threads : KernelSource.warpgroupSpecializedThreads, 1, 1),
                           sharedBytes: specialized == nil ? KernelSource.warpgroupGemmSharedBytes : KernelSource.warpgroupSpecializedSharedBytes, [
                               .pointer(x.pointer), .pointer(w.pointer), .pointer(b?.pointer ?? 0), .pointer(out.pointer),
                               .int32(Int32(x.rows)), .int32(Int32(w.rows)), .int32(Int32(w.cols)), .int32(kind), .int32(geglu ? 1 : 0),
                           ])
        warpgroupGemmCount += 1
        if specialized != nil { warpgroupSpecializedCount += 1 }
        return out
    }
}
