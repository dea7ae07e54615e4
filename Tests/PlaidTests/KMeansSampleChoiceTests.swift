@testable import Plaid
import Testing

/// The sample's random choice (4-byte indices) equals the plain partial Fisher–Yates over an `Int` array.
struct KMeansSampleChoiceTests {
    @Test func chosenIndicesEqualTheDenseShuffle() {
        for (prefix, count, seed) in [(1_000, 50_000, UInt64(7)), (5, 5, 3), (0, 10, 1), (20, 10, 9)] {
            var generator = SplitMix64(seed: seed)
            var order = Array(0..<count)
            for i in 0..<min(prefix, count) { order.swapAt(i, Int.random(in: i..<count, using: &generator)) }
            let chosen = KMeans.randomlyChosenFirst(prefix, of: count, seed: seed)
            #expect(chosen == Array(order.prefix(min(prefix, count))))
            #expect(Set(chosen).count == chosen.count)
        }
    }
}
