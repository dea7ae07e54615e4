import Tensor
import Testing
@testable import TensorCUDA

/// The CPU-side logic of the GPU k-means path: upload chunking, kernel shape choice, and the self-test's
/// own references (which must catch a wrong answer).
struct KMeansPlanningTests {
    @Test(arguments: [(0, 16, 64), (1, 16, 64), (10, 16, 64), (10, 16, 8), (10, 16, 160), (1_000, 512, 64 << 20), (7, 100, 250)])
    func chunksCoverEveryRowOnce(count: Int, rowBytes: Int, chunkBytes: Int) {
        let plan = RowUploadPlan(count: count, rowBytes: rowBytes, chunkBytes: chunkBytes)
        #expect(plan.chunks.flatMap { Array($0) } == Array(0..<count))
        #expect(plan.rowsPerChunk >= 1)
        #expect(plan.chunks.allSatisfy { $0.count <= plan.rowsPerChunk && !$0.isEmpty })
        // A chunk never exceeds the byte budget unless one row alone does.
        #expect(plan.chunks.allSatisfy { $0.count == 1 || $0.count * rowBytes <= chunkBytes })
    }

    @Test func tensorCoreTileFitsSharedMemoryOrIsDropped() {
        let hopper = 232_448  // sm_90 opt-in shared memory per block
        #expect(KMeansKernels.paddedDim(48) == 48 && KMeansKernels.paddedDim(130) == 144 && KMeansKernels.paddedDim(1) == 16)
        #expect(KMeansKernels.paddedCount(203) == 256 && KMeansKernels.paddedCount(32_768) == 32_768)
        #expect(KMeansKernels.warpsM(paddedDim: 128, maxSharedBytes: hopper, requested: nil) == 8)
        #expect(KMeansKernels.warpsM(paddedDim: 384, maxSharedBytes: hopper, requested: nil) == 4)
        #expect(KMeansKernels.warpsM(paddedDim: 1024, maxSharedBytes: hopper, requested: nil) == nil)
        #expect(KMeansKernels.warpsM(paddedDim: 128, maxSharedBytes: 48 << 10, requested: nil) == nil)
        #expect(KMeansKernels.warpsM(paddedDim: 128, maxSharedBytes: hopper, requested: 4) == 4)
        // The grouped search's tensor-core kernel (128 entries and 64 centroids, rows padded by 16 bytes) up to 128 wide.
        #expect(KMeansKernels.coarseToFineTensorCoreSharedBytes(paddedDim: 128) == 192 * 136 * 2)
        #expect(KMeansKernels.coarseToFineTopSharedBytes(paddedDim: 128) == 192 * 136 * 2 + 128 * 65 * 4)
        #expect(KMeansKernels.coarseToFineTopSharedBytes(paddedDim: 128) + 9 * 1024 <= hopper)
        for dim in [48, 128, 384] {
            if let wm = KMeansKernels.warpsM(paddedDim: dim, maxSharedBytes: hopper, requested: nil) {
                #expect(KMeansKernels.tensorCoreSharedBytes(paddedDim: dim, warpsM: wm) <= hopper)
            }
            if let plan = KMeansKernels.tensorCorePlan(paddedDim: dim, maxSharedBytes: hopper, requestedWarps: nil, requestedBuffers: nil) {
                #expect(KMeansKernels.tensorCoreSharedBytes(paddedDim: dim, warpsM: plan.warpsM, centroidBuffers: plan.centroidBuffers) <= hopper)
            }
        }
        // Two centroid buffers up to 64 dimensions (one barrier a tile), one above; one where two do not fit.
        #expect(KMeansKernels.tensorCorePlan(paddedDim: 48, maxSharedBytes: hopper, requestedWarps: nil, requestedBuffers: nil)! == (8, 2))
        #expect(KMeansKernels.tensorCorePlan(paddedDim: 128, maxSharedBytes: hopper, requestedWarps: nil, requestedBuffers: nil)! == (8, 1))
        #expect(KMeansKernels.tensorCorePlan(paddedDim: 384, maxSharedBytes: hopper, requestedWarps: nil, requestedBuffers: nil)! == (4, 1))
        #expect(KMeansKernels.tensorCorePlan(paddedDim: 64, maxSharedBytes: 48 << 10, requestedWarps: nil, requestedBuffers: nil)! == (4, 1))
        #expect(KMeansKernels.tensorCorePlan(paddedDim: 48, maxSharedBytes: hopper, requestedWarps: nil, requestedBuffers: 1)! == (8, 1))
    }

    @Test func scoreGapCatchesAWrongCode() {
        let vectors = HostMatrix(rows: 2, cols: 2, values: [1, 0, 0, 1])
        let centroids = HostMatrix(rows: 3, cols: 2, values: [1, 0, 0, 1, -1, -1])
        #expect(CUDASelfTest.worstScoreGap([0, 1], vectors, centroids, euclidean: true) == 0)
        #expect(CUDASelfTest.worstScoreGap([0, 2], vectors, centroids, euclidean: true) > 0.5)
        #expect(CUDASelfTest.worstScoreGap([0, 3], vectors, centroids, euclidean: true) == .infinity)
        #expect(CUDASelfTest.worstScoreGap([0], vectors, centroids, euclidean: true) == .infinity)
    }

    @Test func referenceLloydMovesToMeansAndKeepsEmptyCentroids() {
        // Points 0 and 2 go to centroid 0, 10 and 12 to centroid 1; centroid 2 (at 100) gets none.
        let trained = CUDASelfTest.referenceLloyd(points: [0, 2, 10, 12], dim: 1, centroids: [1, 9, 100], iterations: 2)
        #expect(trained == [1, 11, 100])
    }
}
