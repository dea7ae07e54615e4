/// Partial selection of the best-scoring items.
enum TopK {
    /// The `k` entries of `items` with the highest `score`, best first (ties keep no particular order).
    static func best(_ items: [Int32], k: Int, score: (Int32) -> Float) -> [Int32] {
        guard k > 0, !items.isEmpty else { return [] }
        var pairs = items.map { (score($0), $0) }
        if pairs.count > k { select(&pairs, k: k) ; pairs.removeLast(pairs.count - k) }
        pairs.sort { $0.0 > $1.0 }
        return pairs.map(\.1)
    }

    /// Reorders `pairs` so that its first `k` entries hold the `k` highest scores (quickselect).
    static func select(_ pairs: inout [(Float, Int32)], k: Int) {
        var low = 0
        var high = pairs.count - 1
        var generator = SplitMix64(seed: UInt64(pairs.count))
        while low < high {
            let pivot = pairs[Int.random(in: low...high, using: &generator)].0
            var i = low, j = high
            while i <= j {
                while pairs[i].0 > pivot { i += 1 }
                while pairs[j].0 < pivot { j -= 1 }
                if i <= j { pairs.swapAt(i, j); i += 1; j -= 1 }
            }
            if k - 1 <= j { high = j } else if k - 1 >= i { low = i } else { return }
        }
    }
}
