import CCUDA
import Foundation

/// The launch shape of `km_assign_wgmma` (KMeansWarpgroupKernelSource.swift) for one padded dimension: warpgroups per
/// block (64 vector rows each), the centroid ring's stages, and the dynamic shared memory they take.
struct KMeansWarpgroupPlan: Equatable {
    let paddedDim: Int
    let warpgroups: Int
    let stages: Int

    /// Vector rows a block takes, threads per block.
    var rows: Int { 64 * warpgroups }
    var threads: Int { 128 * warpgroups }
    /// 64-wide (128-byte) swizzled column chunks a row is stored in.
    var chunks: Int { (paddedDim + 63) / 64 }
    /// The block's vector rows, the ring's centroid tiles (128 rows each) in 128-byte rows per chunk, each tile's 128 fp32
    /// biases, and 1 KiB to align the tiles to the 1,024 bytes the swizzle repeats over.
    var sharedBytes: Int { (rows + stages * KernelSource.kmeansCentroidTile) * chunks * 128 + stages * KernelSource.kmeansCentroidTile * 4 + 1024 }
    var compilerOptions: [String] { ["-DCG_KW_DP=\(paddedDim)", "-DCG_KW_WG=\(warpgroups)", "-DCG_KW_STAGES=\(stages)"] }

    /// Rows up to 128 dimensions (two chunks): wider ones would leave room for too few stages (144: 48 KiB a tile), and
    /// go to `km_assign_mma`.
    static let maxPaddedDim = 128

    /// The plan for `paddedDim` (a multiple of 16) where it fits `maxSharedBytes`, else nil. Two warpgroups: 218–219
    /// registers a thread with NVRTC 12.9, no spills. Three (192 rows a block, a third less centroid traffic from L2)
    /// would have to fit 168: at 128 dimensions ptxas spills and serializes the MMAs for want of registers.
    static func plan(paddedDim: Int, maxSharedBytes: Int) -> KMeansWarpgroupPlan? {
        guard paddedDim > 0, paddedDim % 16 == 0, paddedDim <= maxPaddedDim else { return nil }
        let plan = KMeansWarpgroupPlan(paddedDim: paddedDim, warpgroups: 2, stages: 4)
        return plan.sharedBytes <= maxSharedBytes ? plan : nil
    }
}

/// Which assignment kernel `fusedAssign` launches.
enum AssignKernel: Equatable {
    case warpgroup, tensorCore, plain

    /// `requested`'s kernel where it is loaded, else the next one down (warpgroup → tensor-core → plain). `automatic`
    /// and `warpgroup` prefer the warpgroup kernel; `tensor-core` keeps `km_assign_mma` (for A/B); `gemm` never gets
    /// here (its own path) and is treated as `automatic`.
    static func chosen(_ requested: NearestCentroidKernel, warpgroupLoaded: Bool, tensorCoreLoaded: Bool) -> AssignKernel {
        switch requested {
        case .plain: return .plain
        case .tensorCore: return tensorCoreLoaded ? .tensorCore : .plain
        case .automatic, .warpgroup, .gemm: return warpgroupLoaded ? .warpgroup : (tensorCoreLoaded ? .tensorCore : .plain)
        }
    }
}

extension CUDABackend {
    /// The warpgroup-MMA assignment kernel for `paddedDim`, on a GPU of compute capability 9.0 in bf16 where its plan
    /// fits; nil elsewhere, or when its module fails to build or load (an NVRTC without sm_90a, a driver refusing the
    /// shared memory): then `km_assign_mma` runs, and the reason is in `startupSteps`.
    func loadWarpgroupAssign(paddedDim: Int, maxSharedBytes: Int) -> (function: CUfunction, plan: KMeansWarpgroupPlan)? {
        guard precision == .bf16, context.architecture == WarpgroupGemmSetting.deviceArchitecture,
              let plan = KMeansWarpgroupPlan.plan(paddedDim: paddedDim, maxSharedBytes: maxSharedBytes) else { return nil }
        let name = "kmeans-wgmma-\(paddedDim)", start = ContinuousClock.now
        do {
            let (module, origin) = try loadModule(name: name, source: KernelSource.kmeansWarpgroup, options: precisionOptions + plan.compilerOptions,
                                                  architecture: WarpgroupGemmSetting.compiledArchitecture)
            let function = try context.function(module, KernelSource.kmeansWarpgroupKernel)
            try context.check(context.driver.cuFuncSetAttribute(function, Int32(CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES), Int32(plan.sharedBytes)),
                              "cuFuncSetAttribute(\(KernelSource.kmeansWarpgroupKernel), \(plan.sharedBytes) shared bytes)")
            let elapsed = ContinuousClock.now - start
            startupSteps.append(StartupStep(step: "\(name) kernel (\(origin.rawValue), \(plan.warpgroups) warpgroups)",
                                            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
            return (function, plan)
        } catch {
            startupSteps.append(StartupStep(step: "\(name) kernel unavailable, km_assign_mma instead: \(error)", seconds: 0))
            return nil
        }
    }
}
