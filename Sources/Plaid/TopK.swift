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

    /// The `k` entries of `items` with the highest `score`, in no particular order (no sort: for a
    /// stage that re-scores them anyway). Large inputs go through a histogram of the scores: one pass
    /// finds the bin holding the k-th best, a second keeps everything above it, and only that bin's
    /// entries are quickselected (cheaper than a quickselect over 100k pairs).
    static func bestUnordered(_ items: [Int32], k: Int, score: (Int32) -> Float) -> [Int32] {
        guard k > 0, !items.isEmpty else { return [] }
        guard items.count > k else { return items }
        let values = items.map(score)
        var low = values[0], high = values[0]
        for value in values {
            low = min(low, value)
            high = max(high, value)
        }
        guard items.count >= 4096, low.isFinite, high.isFinite, high > low else {
            var pairs = zip(values, items).map { ($0, $1) }
            select(&pairs, k: k)
            return pairs.prefix(k).map(\.1)
        }
        let bins = 2048
        let scale = Float(bins) / (high - low)
        @inline(__always) func bin(_ value: Float) -> Int { min(bins - 1, Int((value - low) * scale)) }
        var histogram = [Int](repeating: 0, count: bins)
        for value in values { histogram[bin(value)] += 1 }
        var above = 0
        var boundary = bins - 1
        while above + histogram[boundary] < k {
            above += histogram[boundary]
            boundary -= 1
        }
        var result: [Int32] = []
        result.reserveCapacity(k)
        var tied: [(Float, Int32)] = []
        for (i, value) in values.enumerated() {
            let b = bin(value)
            if b > boundary { result.append(items[i]) } else if b == boundary { tied.append((value, items[i])) }
        }
        let need = k - above
        if tied.count > need { select(&tied, k: need) }
        result.append(contentsOf: tied.prefix(need).map(\.1))
        return result
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
