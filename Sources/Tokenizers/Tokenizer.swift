import Dispatch
import Foundation

/// A Hugging Face `tokenizer.json` (WordPiece or byte-level BPE) turned into token ids exactly as HF
/// `tokenizers` does: added tokens, normalizer, pre-tokenizer, model, post-processor template and
/// truncation as configured in the file. Padding in the file is ignored (batches here are packed).
/// Thread-safe: encode from any number of threads.
public final class Tokenizer: Sendable {
    let config: TokenizerConfig
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addPrefixSpace: Bool
    private let states = EncodeStatePool()

    /// Loads a `tokenizer.json`; errors name the file and what is malformed. With a `cache` (the default:
    /// `TokenizerCache.standard()`), a binary copy of the parsed file is read instead of the JSON when
    /// one made from these exact bytes exists, and written after parsing when not.
    public convenience init(contentsOf url: URL, cache: TokenizerCache? = TokenizerCache.standard()) throws {
        let data: Data
        do {
            // Mapped, not copied: with a cache hit its bytes are only hashed (the cache key).
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw TokenizerError(source: url.path, detail: "cannot read the file (\(error.localizedDescription))")
        }
        guard let cache else {
            try self.init(jsonData: data, source: url.path)
            return
        }
        let key = TokenizerCache.Key(source: url, contents: data)
        if let spec = cache.load(key), let config = try? TokenizerConfig(spec: spec, settings: spec.settings(source: url.path), source: url.path) {
            self.init(config: config)
            return
        }
        let (spec, settings) = try TokenizerSpec.parse(jsonData: data, source: url.path)
        let config = try TokenizerConfig(spec: spec, settings: settings, source: url.path)
        cache.store(spec, for: key)
        self.init(config: config)
    }

    /// Parses `tokenizer.json` bytes; `source` names them in errors.
    public convenience init(jsonData: Data, source: String) throws {
        self.init(config: try TokenizerConfig(jsonData: jsonData, source: source))
    }

    init(config: TokenizerConfig) {
        self.config = config
        var raw: [([UInt8], AddedToken)] = []
        var normalized: [([UInt8], AddedToken)] = []
        for token in config.addedTokens {
            let bytes = Array(token.content.utf8)
            if token.normalized {
                // HF matches normalized tokens by their normalized content in normalized text.
                normalized.append((config.normalizer?.normalize(bytes) ?? bytes, token))
            } else {
                raw.append((bytes, token))
            }
        }
        rawMatcher = AddedTokenMatcher(raw.map { (pattern: $0.0, token: $0.1) })
        normalizedMatcher = AddedTokenMatcher(normalized.map { (pattern: $0.0, token: $0.1) })
        if case .byteLevel(let prefix, _) = config.preTokenizer { addPrefixSpace = prefix } else { addPrefixSpace = false }
    }

    /// Number of distinct ids (model vocabulary and added tokens).
    public var vocabularySize: Int { config.distinctIDCount }

    /// The id of a vocabulary entry or added token, as written in `tokenizer.json`.
    public func id(forToken token: String) -> Int32? { config.id(forToken: token) }

    /// The vocabulary entry or added token of an id, as written in `tokenizer.json`.
    public func token(forID id: Int32) -> String? { config.token(forID: id) }

    /// Special ids wrapped around every encoded text: the post-processor's prefix and suffix counts.
    public var specialTokenCounts: (prefix: Int, suffix: Int) { (config.prefixIDs.count, config.suffixIDs.count) }

    /// True when the file truncates from the left (keeps the last ids); `maxLength` then keeps the end.
    public var truncatesFromStart: Bool { config.truncation?.keepEnd == true }

    /// The `truncation.max_length` of the file (including special tokens), if any.
    public var truncationMaxLength: Int? { config.truncation?.maxLength }

    /// Token ids of `text`, truncated as the file says and wrapped in the post-processor's special
    /// tokens when `addSpecialTokens`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, maxLength: config.truncation?.maxLength)
    }

    /// As `encode(_:addSpecialTokens:)`, truncating to `maxLength` ids (special tokens included)
    /// instead of the file's setting; nil disables truncation.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int?) -> [Int32] {
        let state = states.take()
        defer { states.give(state) }
        return encode(text, addSpecialTokens: addSpecialTokens, maxLength: maxLength, state: state)
    }

    /// Encodes many texts in parallel over all cores.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true) -> [[Int32]] {
        encodeBatch(texts, addSpecialTokens: addSpecialTokens, threads: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Encodes many texts in parallel on `threads` threads.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true, threads: Int) -> [[Int32]] {
        encodeBatch(texts, addSpecialTokens: addSpecialTokens, threads: threads, maxLength: config.truncation?.maxLength)
    }

    /// Encodes many texts in parallel on `threads` threads, truncating to `maxLength` ids (special
    /// tokens included) instead of the file's setting; nil disables truncation.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true, threads: Int, maxLength: Int?) -> [[Int32]] {
        encodeBatch(texts, addSpecialTokens: addSpecialTokens, threads: threads, maxLength: maxLength, before: { $0 }, after: { $0 })
    }

    /// As `encodeBatch(_:addSpecialTokens:threads:maxLength:)` with per-text work on the same workers:
    /// `before` turns each text into what is tokenized, `after` each text's ids into the result, so a
    /// caller's cleaning and post-processing run in parallel too instead of on the calling thread.
    public func encodeBatch<T>(_ texts: [String], addSpecialTokens: Bool = true, threads: Int, maxLength: Int?,
                               before: @Sendable (String) -> String, after: @Sendable ([Int32]) -> T) -> [T] {
        let workers = max(1, min(threads, texts.count))
        if workers == 1 {
            let state = states.take()
            defer { states.give(state) }
            return texts.map { after(encode(before($0), addSpecialTokens: addSpecialTokens, maxLength: maxLength, state: state)) }
        }
        var results = [T?](repeating: nil, count: texts.count)
        results.withUnsafeMutableBufferPointer { out in
            let output = SendableBuffer(base: out.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let state = states.take()
                defer { states.give(state) }
                // Interleaved blocks keep long and short texts spread over the workers.
                let block = 8
                var start = worker * block
                while start < texts.count {
                    for i in start..<min(start + block, texts.count) {
                        output.base[i] = after(encode(before(texts[i]), addSpecialTokens: addSpecialTokens, maxLength: maxLength,
                                                      state: state))
                    }
                    start += workers * block
                }
            }
        }
        return results.map { $0! }
    }

    // MARK: pipeline

    private func encode(_ text: String, addSpecialTokens: Bool, maxLength: Int?, state: EncodeState) -> [Int32] {
        var ids: [Int32] = []
        let special = addSpecialTokens ? config.prefixIDs.count + config.suffixIDs.count : 0
        // Truncation that keeps the first ids can stop once it has them: a pre-token's ids never depend
        // on the pre-tokens after it, so the ids kept are the same and a long text costs only its head.
        state.stopAt = Int.max
        if let maxLength, config.truncation?.keepEnd != true { state.stopAt = max(0, maxLength - special) }
        ids.reserveCapacity(min(text.utf8.count / 3, state.stopAt) + 4)
        var text = text
        text.withUTF8 { raw in
            for piece in rawMatcher.split(raw) {
                if ids.count >= state.stopAt { break }
                switch piece {
                case .token(let id): ids.append(id)
                case .text(let range): encodeUnmatched(UnsafeBufferPointer(rebasing: raw[range]), into: &ids, state: state)
                }
            }
        }
        if let maxLength {
            let budget = max(0, maxLength - special)
            if ids.count > budget {
                if config.truncation?.keepEnd == true {
                    ids.removeFirst(ids.count - budget)
                } else {
                    ids.removeLast(ids.count - budget)
                }
            }
        }
        if addSpecialTokens && special > 0 {
            return config.prefixIDs + ids + config.suffixIDs
        }
        return ids
    }

    /// Normalizes text outside the non-normalized added tokens, then looks for normalized added tokens.
    private func encodeUnmatched(_ raw: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], state: EncodeState) {
        guard let normalizer = config.normalizer else {
            splitNormalized(raw, into: &ids, state: state)
            return
        }
        let normalized = normalizer.normalize(Array(raw))
        normalized.withUnsafeBufferPointer { splitNormalized($0, into: &ids, state: state) }
    }

    private func splitNormalized(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], state: EncodeState) {
        if normalizedMatcher.isEmpty {
            preTokenizeAndModel(text, into: &ids, state: state)
            return
        }
        for piece in normalizedMatcher.split(text) {
            if ids.count >= state.stopAt { break }
            switch piece {
            case .token(let id): ids.append(id)
            case .text(let range): preTokenizeAndModel(UnsafeBufferPointer(rebasing: text[range]), into: &ids, state: state)
            }
        }
    }

    private func preTokenizeAndModel(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], state: EncodeState) {
        if text.isEmpty { return }
        if addPrefixSpace && text[0] != 0x20 {
            let prefixed = [0x20] + Array(text)
            prefixed.withUnsafeBufferPointer { model($0, into: &ids, state: state) }
        } else {
            model(text, into: &ids, state: state)
        }
    }

    @inline(__always)
    private func model(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], state: EncodeState) {
        switch config.model {
        case .wordPiece(let wordPiece):
            config.preTokenizer.split(text) { range in
                if ids.count >= state.stopAt { return }
                wordPiece.tokenize(UnsafeBufferPointer(rebasing: text[range]), into: &ids)
            }
        case .bpe(let bpe):
            config.preTokenizer.split(text) { range in
                if ids.count >= state.stopAt { return }
                let word = UnsafeBufferPointer(rebasing: text[range])
                if state.cache.append(word, into: &ids) { return }
                let mark = ids.count
                bpe.tokenize(word, into: &ids, scratch: &state.scratch)
                state.cache.insert(word, ids: ids[mark...])
            }
        }
    }
}

/// A raw pointer handed to `concurrentPerform` workers that write disjoint elements.
private struct SendableBuffer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}

/// Per-thread working memory: BPE scratch and a word → ids cache.
final class EncodeState {
    var scratch = BPEScratch()
    var cache = WordCache()
    /// Ids after which the current text's remaining pre-tokens are skipped (truncation keeps the first ones).
    var stopAt = Int.max
}

/// States are reused across calls (so the word cache stays warm) and never shared by two threads.
final class EncodeStatePool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [EncodeState] = []

    func take() -> EncodeState {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? EncodeState()
    }

    func give(_ state: EncodeState) {
        lock.lock()
        defer { lock.unlock() }
        free.append(state)
    }
}

/// Open-addressing cache from a word's bytes to its BPE ids, all in flat arrays; cleared when full.
struct WordCache {
    private var keys: [UInt8] = []
    private var values: [Int32] = []
    // Per entry: key start, key length, value start, value length.
    private var entries: [Int32] = []
    private var hashes: [Int] = []
    private var slots = [Int32](repeating: -1, count: 1 << 16)
    private static let maxEntries = 1 << 15
    private static let maxWordLength = 64

    private func find(_ word: UnsafeBufferPointer<UInt8>, hash: Int) -> (slot: Int, entry: Int) {
        let mask = slots.count - 1
        var slot = hash & mask
        while true {
            let e = Int(slots[slot])
            if e < 0 { return (slot, -1) }
            if hashes[e] == hash && Int(entries[4 * e + 1]) == word.count {
                let start = Int(entries[4 * e])
                let equal = keys.withUnsafeBufferPointer { k in
                    memcmp(k.baseAddress! + start, word.baseAddress!, word.count) == 0
                }
                if equal { return (slot, e) }
            }
            slot = (slot + 1) & mask
        }
    }

    /// Appends the cached ids of `word` and returns true, or returns false on a miss.
    mutating func append(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) -> Bool {
        if word.count > Self.maxWordLength || word.isEmpty { return false }
        let (_, e) = find(word, hash: ByteStringTable.hash(word))
        if e < 0 { return false }
        let start = Int(entries[4 * e + 2])
        let count = Int(entries[4 * e + 3])
        values.withUnsafeBufferPointer { v in
            ids.append(contentsOf: UnsafeBufferPointer(rebasing: v[start..<(start + count)]))
        }
        return true
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, ids: ArraySlice<Int32>) {
        if word.count > Self.maxWordLength || word.isEmpty { return }
        if hashes.count >= Self.maxEntries {
            keys.removeAll(keepingCapacity: true)
            values.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
            hashes.removeAll(keepingCapacity: true)
            for i in slots.indices { slots[i] = -1 }
        }
        let hash = ByteStringTable.hash(word)
        let (slot, e) = find(word, hash: hash)
        if e >= 0 { return }
        slots[slot] = Int32(hashes.count)
        hashes.append(hash)
        entries.append(Int32(keys.count))
        entries.append(Int32(word.count))
        entries.append(Int32(values.count))
        entries.append(Int32(ids.count))
        keys.append(contentsOf: word)
        values.append(contentsOf: ids)
    }
}
