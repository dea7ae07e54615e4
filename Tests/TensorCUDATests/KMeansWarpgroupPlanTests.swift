import Testing
@testable import TensorCUDA

/// The host side of the warpgroup-MMA assignment kernel (`km_assign_wgmma`): which dimensions it takes, the shared memory
/// its launch asks for, and which kernel `fusedAssign` launches for each setting.
struct KMeansWarpgroupPlanTests {
    let hopper = 232_448  // sm_90 opt-in shared memory per block

    @Test func plansUpTo128DimensionsAndFitsHopper() {
        for dim in stride(from: 16, through: 128, by: 16) {
            let plan = KMeansWarpgroupPlan.plan(paddedDim: dim, maxSharedBytes: hopper)
            #expect(plan != nil && plan!.sharedBytes <= hopper)
            #expect(plan?.rows == 128 && plan?.threads == 256 && plan?.stages == 4)
        }
        // Wider rows (130 → 144, 384), or a width that is not a multiple of 16, go to km_assign_mma.
        for dim in [0, 8, 41, 144, 384] { #expect(KMeansWarpgroupPlan.plan(paddedDim: dim, maxSharedBytes: hopper) == nil) }
        // Not where the shared memory is smaller than the plan (a 48 KiB default).
        #expect(KMeansWarpgroupPlan.plan(paddedDim: 128, maxSharedBytes: 48 << 10) == nil)
    }

    @Test func sharedBytesCountTheRowsTheRingAndTheBiases() {
        // 128-d: two 64-wide chunks of 128-byte rows; 128 vector rows + 4 × 128 centroid rows; 4 × 128 fp32 biases; 1 KiB.
        let wide = KMeansWarpgroupPlan(paddedDim: 128, warpgroups: 2, stages: 4)
        #expect(wide.chunks == 2 && wide.sharedBytes == (128 + 512) * 2 * 128 + 4 * 128 * 4 + 1024)
        // 48-d: 96-byte rows stored in one 128-byte swizzled chunk.
        let narrow = KMeansWarpgroupPlan(paddedDim: 48, warpgroups: 2, stages: 4)
        #expect(narrow.chunks == 1 && narrow.sharedBytes == (128 + 512) * 128 + 4 * 128 * 4 + 1024)
        #expect(wide.compilerOptions == ["-DCG_KW_DP=128", "-DCG_KW_WG=2", "-DCG_KW_STAGES=4"])
    }

    @Test func automaticPrefersTheWarpgroupKernelAndTensorCoreKeepsTheOldOne() {
        #expect(AssignKernel.chosen(.automatic, warpgroupLoaded: true, tensorCoreLoaded: true) == .warpgroup)
        #expect(AssignKernel.chosen(.warpgroup, warpgroupLoaded: true, tensorCoreLoaded: true) == .warpgroup)
        #expect(AssignKernel.chosen(.tensorCore, warpgroupLoaded: true, tensorCoreLoaded: true) == .tensorCore)
        #expect(AssignKernel.chosen(.plain, warpgroupLoaded: true, tensorCoreLoaded: true) == .plain)
        // Not loaded (another GPU, a module that failed to build, a dimension over 128): the next kernel down.
        #expect(AssignKernel.chosen(.automatic, warpgroupLoaded: false, tensorCoreLoaded: true) == .tensorCore)
        #expect(AssignKernel.chosen(.warpgroup, warpgroupLoaded: false, tensorCoreLoaded: true) == .tensorCore)
        #expect(AssignKernel.chosen(.warpgroup, warpgroupLoaded: false, tensorCoreLoaded: false) == .plain)
        #expect(AssignKernel.chosen(.tensorCore, warpgroupLoaded: false, tensorCoreLoaded: false) == .plain)
        #expect(NearestCentroidKernel(rawValue: "warpgroup") == .warpgroup && NearestCentroidKernel(rawValue: "tensor-core") == .tensorCore)
    }
}
