/// Sequence positions ordered by length, taken from either end: GPUs from the long end, CPU workers
/// from the short end. Batches a failed device gives back are merged in again.
///
/// Not thread-safe; the scheduler holds its lock around every call.
struct LengthSortedQueue {
    private let lengths: [Int]
    /// Positions sorted by (length, position); `low..<high` is still queued.
    private let sorted: [Int]
    private var low: Int
    private var high: Int
    /// Positions given back after a failure, kept sorted by (length, position).
    private var returned: [Int] = []

    init(lengths: [Int]) {
        self.lengths = lengths
        self.sorted = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        self.low = 0
        self.high = sorted.count
    }

    var isEmpty: Bool { low == high && returned.isEmpty }

    /// Sequences still queued.
    var count: Int { high - low + returned.count }

    /// Removes one batch from `end`: sequences in length order while they fit `tokenBudget`,
    /// always at least one. Returns nil when the queue is empty.
    mutating func take(from end: QueueEnd, tokenBudget: Int) -> [Int]? {
        guard let first = peek(end) else { return nil }
        var batch = [first]
        var tokens = lengths[first]
        pop(end)
        while let next = peek(end), tokens + lengths[next] <= tokenBudget {
            batch.append(next)
            tokens += lengths[next]
            pop(end)
        }
        return batch
    }

    /// Tokens of the batch `take(from:tokenBudget:)` would return now, without removing it.
    func tokensOfNextBatch(from end: QueueEnd, tokenBudget: Int) -> Int {
        var copy = self
        return copy.take(from: end, tokenBudget: tokenBudget)?.reduce(0) { $0 + lengths[$1] } ?? 0
    }

    /// Puts positions back (a failed device's batch).
    mutating func giveBack(_ positions: [Int]) {
        returned.append(contentsOf: positions)
        returned.sort { (lengths[$0], $0) < (lengths[$1], $1) }
    }

    private func key(_ position: Int) -> (Int, Int) { (lengths[position], position) }

    /// The next position at `end`, and whether it comes from the main run (else from `returned`).
    private func peekSource(_ end: QueueEnd) -> (position: Int, fromMain: Bool)? {
        let main: Int? = low < high ? (end == .shortest ? sorted[low] : sorted[high - 1]) : nil
        let spill: Int? = end == .shortest ? returned.first : returned.last
        switch (main, spill) {
        case (nil, nil): return nil
        case (let m?, nil): return (m, true)
        case (nil, let s?): return (s, false)
        case (let m?, let s?):
            let spillFirst = end == .shortest ? key(s) < key(m) : key(s) > key(m)
            return spillFirst ? (s, false) : (m, true)
        }
    }

    private func peek(_ end: QueueEnd) -> Int? { peekSource(end)?.position }

    private mutating func pop(_ end: QueueEnd) {
        guard let next = peekSource(end) else { return }
        switch (next.fromMain, end) {
        case (true, .shortest): low += 1
        case (true, .longest): high -= 1
        case (false, .shortest): returned.removeFirst()
        case (false, .longest): returned.removeLast()
        }
    }
}
