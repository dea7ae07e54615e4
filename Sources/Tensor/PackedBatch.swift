/// Several token sequences packed end to end with no padding, as ModernBERT and TEI batch them.
///
/// Sequence `s` occupies rows `cuSeqlens[s] ..< cuSeqlens[s + 1]` of every activation matrix.
public struct PackedBatch: Sendable, Equatable {
    /// Token ids of all sequences, concatenated.
    public var tokenIDs: [Int32]
    /// Cumulative sequence lengths: `sequenceCount + 1` offsets starting at 0.
    public var cuSeqlens: [Int32]

    public init(sequences: [[Int32]]) {
        var ids: [Int32] = []
        ids.reserveCapacity(sequences.reduce(0) { $0 + $1.count })
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(sequences.count + 1)
        for sequence in sequences {
            ids.append(contentsOf: sequence)
            offsets.append(Int32(ids.count))
        }
        self.tokenIDs = ids
        self.cuSeqlens = offsets
    }

    public var sequenceCount: Int { cuSeqlens.count - 1 }
    public var tokenCount: Int { tokenIDs.count }

    /// Length of the longest sequence (attention kernels size their tiles with it).
    public var maxSequenceLength: Int {
        var longest = 0
        for s in 0..<sequenceCount { longest = max(longest, Int(cuSeqlens[s + 1] - cuSeqlens[s])) }
        return longest
    }

    /// Row range of sequence `s`.
    public func range(of s: Int) -> Range<Int> { Int(cuSeqlens[s])..<Int(cuSeqlens[s + 1]) }

    /// Position of every token within its own sequence (0-based), for position embeddings.
    public var positions: [Int32] {
        var result = [Int32](repeating: 0, count: tokenCount)
        for s in 0..<sequenceCount {
            let r = range(of: s)
            for (p, row) in r.enumerated() { result[row] = Int32(p) }
        }
        return result
    }
}
