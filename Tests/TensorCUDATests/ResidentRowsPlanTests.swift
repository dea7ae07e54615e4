import Testing
@testable import TensorCUDA

/// The memory-fit decision and assignment passes of device-resident k-means (no GPU needed).
struct ResidentRowsPlanTests {
    @Test func rowsFitInHalfOfFreeAndCachedMemory() {
        let gib = 1 << 30
        // 10M × 48 fp32 = 1.92 GB: fits a card with 70 GiB free, and with 3 GiB free + 1 GiB cached in the pool.
        #expect(ResidentRowsPlan(count: 10_000_000, dim: 48, freeBytes: 70 * gib, cachedBytes: 0).fits)
        #expect(ResidentRowsPlan(count: 10_000_000, dim: 48, freeBytes: 3 * gib, cachedBytes: gib).fits)
        #expect(ResidentRowsPlan(count: 10_000_000, dim: 48, freeBytes: 70 * gib, cachedBytes: 0).bytes == 1_920_000_000)
        // 100M × 128 fp32 = 51.2 GB: not in half of 78 GiB (streamed in chunks instead).
        #expect(!ResidentRowsPlan(count: 100_000_000, dim: 128, freeBytes: 78 * gib, cachedBytes: 0).fits)
        // Exactly half fits, one byte more does not.
        #expect(ResidentRowsPlan(count: 1_000, dim: 1, freeBytes: 8_000, cachedBytes: 0).fits)
        #expect(!ResidentRowsPlan(count: 1_000, dim: 1, freeBytes: 7_999, cachedBytes: 0).fits)
        // Nothing, negative reports, 64-bit row numbers and overflowing sizes never fit.
        #expect(!ResidentRowsPlan(count: 0, dim: 48, freeBytes: 70 * gib, cachedBytes: 0).fits)
        #expect(!ResidentRowsPlan(count: 10, dim: 48, freeBytes: -1, cachedBytes: -1).fits)
        #expect(!ResidentRowsPlan(count: Int(Int32.max) + 1, dim: 1, freeBytes: Int.max / 2, cachedBytes: 0).fits)
        #expect(!ResidentRowsPlan(count: Int.max / 2, dim: 48, freeBytes: Int.max / 2, cachedBytes: 0).fits)
    }

    @Test(arguments: [(0, 4), (1, 4), (4, 4), (5, 4), (10_000_001, 1 << 20), (7, 1), (3, 0)])
    func passesCoverEveryRowOnce(count: Int, rowsPerPass: Int) {
        let passes = ResidentRowsPlan.passes(count: count, rowsPerPass: rowsPerPass)
        #expect(passes.first?.lowerBound ?? 0 == 0 && passes.last?.upperBound ?? 0 == count)
        #expect(zip(passes, passes.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        #expect(passes.allSatisfy { !$0.isEmpty && $0.count <= max(1, rowsPerPass) })
    }

    @Test func aPassLandsWhenItsLastRowIsQueued() {
        let passes = ResidentRowsPlan.passes(count: 10, rowsPerPass: 4)  // 0..<4, 4..<8, 8..<10
        #expect([0, 3, 4, 7, 8, 9, 10].map { ResidentRowsPlan.passesCovered(passes, byRows: $0) } == [0, 0, 1, 1, 2, 2, 3])
        #expect(ResidentRowsPlan.passesCovered([], byRows: 5) == 0)
    }
}
