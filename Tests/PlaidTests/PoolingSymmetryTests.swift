import Testing
@testable import Plaid

/// Ward merging on a distance matrix whose two halves disagree (a GEMM's rounding does that): the
/// nearest-neighbour chain must not cycle (it looped for ever, or merged a cluster already gone).
@Suite struct PoolingSymmetryTests {
    @Test func asymmetricDistancesMergeTheClosestPairOnce() {
        // Row by row, 0 → 1 → 2 → 0 → 1 … is a cycle; read symmetrically (the smaller of the two
        // halves), 0 and 2 are the closest pair.
        let d: [Float] = [
            0, 0.1, 0.5, 0.9,
            0.3, 0, 0.2, 0.9,
            0.05, 0.25, 0, 0.9,
            0.9, 0.9, 0.9, 0,
        ]
        let parent = TokenPooler.wardMerges(squaredDistance: d, count: 4, merges: 1)
        #expect(parent == [0, 1, 0, 3])
    }
}
