@testable import Plaid
import Testing

/// The sample's random choice (4-byte indices) equals the plain partial Fisher–Yates over an `Int` array.
struct KMeansSampleChoiceTests {
    @Test func chosenIndicesEqualTheDenseShuffle() {
        for (prefix, count, seed) in [(1_000, 50_000, UInt64(7)), (5, 5, 3), (0, 10, 1), (20, 10, 9),
                                      (70_000, 300_000, 11), (200_000, 200_000, 5), (131_073, 1_000_000, 0xDEAD_BEEF)] {
            var generator = SplitMix64(seed: seed)
            var order = Array(0..<count)
            for i in 0..<min(prefix, count) { order.swapAt(i, Int.random(in: i..<count, using: &generator)) }
            let chosen = KMeans.randomlyChosenFirst(prefix, of: count, seed: seed)
            #expect(chosen == Array(order.prefix(min(prefix, count))))
            #expect(Set(chosen).count == chosen.count)
        }
    }

    /// The parallel draw is taken for large samples (so the comparison above covers it) and equals the sequential one.
    @Test func theParallelDrawIsTakenAndEqualsTheSequentialOne() throws {
        for (prefix, count, seed) in [(65_536, 65_536, UInt64(1)), (100_000, 2_000_000, 42), (70_000, 70_001, 3)] {
            let parallel = try #require(KMeans.randomlyChosenFirst32InParallel(prefix, of: count, seed: seed))
            #expect(parallel == KMeans.randomlyChosenFirst32Sequentially(prefix, of: count, seed: seed))
        }
        #expect(KMeans.randomlyChosenFirst32InParallel(1_000, of: 1_000_000, seed: 1) == nil)  // small: sequential
    }

    /// The sample's rows (gathered in parallel blocks with prefetching) are the chosen rows, in the draw's order.
    @Test func subsampleGathersTheChosenRowsInOrder() {
        let count = 300_000, dim = 5, limit = 70_000
        let points = (0..<(count * dim)).map { Float($0 % 9_973) + Float($0 / dim) * 0.001 }
        let sample = KMeans.subsample(points, count: count, dim: dim, limit: limit, seed: 21)
        let chosen = KMeans.randomlyChosenFirst(limit, of: count, seed: 21)
        #expect(sample == chosen.flatMap { points[($0 * dim)..<(($0 + 1) * dim)] })
        #expect(KMeans.subsample(points, count: count, dim: dim, limit: count, seed: 21) == points)
    }

    /// `SplitMix64.output(seed:index:)` is the generator's output at that index.
    @Test func outputAtAnIndexEqualsTheSequence() {
        var generator = SplitMix64(seed: 99)
        for index in 0..<1_000 { #expect(generator.next() == SplitMix64.output(seed: 99, index: index)) }
    }

    /// A draw that could reject (the low half of r·u under u) is flagged, and the caller then shuffles
    /// sequentially: found by searching a seed whose first draw over a range near 2⁶⁴ rejects is impractical, so
    /// the flag's condition is checked against Swift's own rejection on a range where rejection is common.
    @Test func theFlaggedConditionCoversEveryRejection() {
        // With u = 2⁶³ + 1, Lemire's method rejects when r·u mod 2⁶⁴ < (2⁶⁴ − u) mod u = 2⁶³ − 1: about half the
        // outputs. Every output Swift rejects there has its low half under u, the flag's test.
        let range = UInt64(1) << 63 + 1
        var rejectedSeen = 0
        for index in 0..<10_000 {
            let r = SplitMix64.output(seed: 7, index: index)
            let product = r.multipliedFullWidth(by: range)
            var single = SingleOutput(value: r)
            let swiftDraw = single.next(upperBound: range)
            let rejected = single.used > 1
            if rejected { rejectedSeen += 1; #expect(product.low < range) }
            if product.low >= range { #expect(swiftDraw == product.high && !rejected) }
        }
        #expect(rejectedSeen > 1_000)
    }
}

/// A generator that first returns `value`, then counts how many more outputs were asked for.
private struct SingleOutput: RandomNumberGenerator {
    let value: UInt64
    var used = 0
    init(value: UInt64) { self.value = value }
    mutating func next() -> UInt64 {
        used += 1
        return used == 1 ? value : UInt64(used) &* 0x9E37_79B9_7F4A_7C15
    }
}
