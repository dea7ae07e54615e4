/// Token ↔ id lookups answered from the id-sorted vocabulary and the model's own byte table, so that
/// loading a tokenizer builds no `String`-keyed dictionary (two 30k-entry dictionaries were a visible
/// share of a one-shot search's start, for the handful of lookups an encoder makes).
///
/// Semantics are those of maps filled with the vocabulary in id order, then the added tokens: an added
/// token wins over a vocabulary entry with the same content or id.
extension TokenizerConfig {
    /// The id of a vocabulary entry or added token.
    func id(forToken token: String) -> Int32? {
        if let added = addedTokens.last(where: { $0.content == token }) { return added.id }
        let utf8 = Array(token.utf8)
        switch model {
        case .wordPiece(let wordPiece):
            // Every entry is in `starts` under its exact bytes, continuations included.
            return utf8.withUnsafeBufferPointer { wordPiece.starts.lookup($0) }
        case .bpe(let bpe) where !bpe.byteLevel:
            return utf8.withUnsafeBufferPointer { bpe.vocab.lookup($0) }
        case .bpe(let bpe):
            // Keys are raw bytes: two spellings can share one key, so the hit is checked against the
            // entry's own spelling (nil is certain: every entry's key was inserted).
            let raw = ByteLevelAlphabet.rawBytes(token)
            guard let candidate = raw.withUnsafeBufferPointer({ bpe.vocab.lookup($0) }) else { return nil }
            if vocabEntries(withID: candidate).contains(where: { $0.0 == token }) { return candidate }
            return vocab.last(where: { $0.0 == token })?.1
        }
    }

    /// The vocabulary entry or added token of an id.
    func token(forID id: Int32) -> String? {
        if let added = addedTokens.last(where: { $0.id == id }) { return added.content }
        return vocabEntries(withID: id).last?.0
    }

    /// Number of distinct ids over the vocabulary and the added tokens.
    var distinctIDCount: Int {
        var count = 0
        var previous: Int32?
        for (_, id) in vocab where id != previous {
            count += 1
            previous = id
        }
        let extra = Set(addedTokens.map(\.id)).filter { vocabEntries(withID: $0).isEmpty }
        return count + extra.count
    }

    /// The entries of `vocab` (sorted by id) with this id: a binary search.
    private func vocabEntries(withID id: Int32) -> ArraySlice<(String, Int32)> {
        var low = 0, high = vocab.count
        while low < high {
            let mid = (low + high) / 2
            if vocab[mid].1 < id { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < vocab.count && vocab[end].1 == id { end += 1 }
        return vocab[low..<end]
    }
}
