/// Plans packed batches by a token budget rather than a sequence count: sequences are sorted by length
/// (longest first, so similar lengths share a batch and the attention work per batch is even), packed
/// until the next one would exceed `tokenBudget`, and callers restore input order with the indices.
/// A sequence longer than the budget gets a batch of its own. No padding exists anywhere.
public struct TokenBudgetBatcher: Sendable, Equatable {
    public var tokenBudget: Int

    /// 4,096 tokens keeps a batch's activations near 16 MiB for a 256-wide model while its GEMMs
    /// stay large enough to run at full speed on every core.
    public init(tokenBudget: Int = 4096) {
        self.tokenBudget = max(1, tokenBudget)
    }

    /// Indices into `lengths`, grouped into batches; every index appears exactly once.
    public func plan(lengths: [Int]) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var batches: [[Int]] = []
        var current: [Int] = [], tokens = 0
        for index in order {
            let length = lengths[index]
            if !current.isEmpty, tokens + length > tokenBudget {
                batches.append(current)
                current = []
                tokens = 0
            }
            current.append(index)
            tokens += length
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}
