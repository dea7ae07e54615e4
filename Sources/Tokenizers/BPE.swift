/// Byte-pair encoding with merge ranks. In byte-level mode the vocabulary is mapped back from GPT-2's
/// printable byte alphabet to raw bytes at load, so words are merged directly on their UTF-8 bytes.
struct BPEModel: Sendable {
    /// Vocabulary keyed by raw bytes (byte-level) or UTF-8 (otherwise).
    let vocab: ByteStringTable
    let merges: PairTable
    /// Byte-level: the id of each single byte; otherwise unused.
    let byteIDs: [Int32]
    let byteLevel: Bool
    let ignoreMerges: Bool
    let unknownID: Int32?
    let fuseUnknown: Bool
    let byteFallbackIDs: [Int32]?

    init(vocab entries: [(String, Int32)], merges mergeList: [(String, String)], byteLevel: Bool,
         ignoreMerges: Bool, unknownToken: String?, fuseUnknown: Bool, byteFallback: Bool, source: String) throws {
        var vocab = ByteStringTable(capacity: entries.count)
        for (token, id) in entries {
            vocab.insert(byteLevel ? ByteLevelAlphabet.rawBytes(token) : Array(token.utf8), value: id)
        }
        var merges = PairTable(capacity: mergeList.count)
        for (rank, (left, right)) in mergeList.enumerated() {
            let l = byteLevel ? ByteLevelAlphabet.rawBytes(left) : Array(left.utf8)
            let r = byteLevel ? ByteLevelAlphabet.rawBytes(right) : Array(right.utf8)
            guard let a = vocab.lookup(l), let b = vocab.lookup(r), let m = vocab.lookup(l + r) else {
                throw TokenizerError(source: source,
                                     detail: "model.merges[\(rank)] \"\(left) \(right)\" uses a token missing from model.vocab")
            }
            merges.insert(left: a, right: b, rank: Int32(rank), result: m)
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteIDs[b] = vocab.lookup([UInt8(b)]) ?? -1 }
        var unknownID: Int32?
        if let unknownToken {
            unknownID = vocab.lookup(Array(unknownToken.utf8))
            if unknownID == nil {
                throw TokenizerError(source: source, detail: "model.unk_token \"\(unknownToken)\" is not in model.vocab")
            }
        }
        if byteFallback {
            byteFallbackIDs = (0..<256).map { vocab.lookup(Array(String(format: "<0x%02X>", $0).utf8)) ?? -1 }
        } else {
            byteFallbackIDs = nil
        }
        self.vocab = vocab
        self.merges = merges
        self.byteIDs = byteIDs
        self.byteLevel = byteLevel
        self.ignoreMerges = ignoreMerges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
    }

    /// Appends the ids of one word (raw bytes).
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, into ids: inout [Int32], scratch: inout BPEScratch) {
        if ignoreMerges, let id = vocab.lookup(word) {
            ids.append(id)
            return
        }
        // Initial symbols: bytes (byte-level) or scalars.
        scratch.reset()
        var i = 0
        var lastWasUnknown = false
        while i < word.count {
            var len = 1
            var id: Int32
            if byteLevel {
                id = byteIDs[Int(word[i])]
            } else {
                len = UTF8Bytes.decode(word, i).1
                id = vocab.lookup(UnsafeBufferPointer(rebasing: word[i..<(i + len)])) ?? -1
            }
            if id < 0 {
                if let fallback = byteFallbackIDs, (i..<(i + len)).allSatisfy({ fallback[Int(word[$0])] >= 0 }) {
                    for k in i..<(i + len) { scratch.append(fallback[Int(word[k])]) }
                    lastWasUnknown = false
                } else if let unknownID {
                    if !(fuseUnknown && lastWasUnknown) { scratch.append(unknownID) }
                    lastWasUnknown = true
                }
                i += len
                continue
            }
            lastWasUnknown = false
            scratch.append(id)
            i += len
        }
        scratch.merge(merges)
        scratch.emit(into: &ids)
    }
}

/// Reusable working storage for merging one word: symbol ids in a doubly linked list, so merges are
/// O(1) and the scan for the lowest-rank pair touches only live symbols.
struct BPEScratch {
    private var symbols: [Int32] = []
    private var next: [Int32] = []
    private var prev: [Int32] = []

    init() {
        symbols.reserveCapacity(64)
        next.reserveCapacity(64)
        prev.reserveCapacity(64)
    }

    mutating func reset() {
        symbols.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
    }

    mutating func append(_ id: Int32) {
        let n = Int32(symbols.count)
        symbols.append(id)
        prev.append(n - 1)
        next.append(n + 1)
    }

    /// Repeatedly merges the lowest-rank adjacent pair (leftmost on ties), as HF's BPE does.
    mutating func merge(_ merges: PairTable) {
        let count = symbols.count
        if count < 2 { return }
        next[count - 1] = -1
        symbols.withUnsafeMutableBufferPointer { sym in
            next.withUnsafeMutableBufferPointer { nxt in
                prev.withUnsafeMutableBufferPointer { prv in
                    while true {
                        var bestRank = Int32.max
                        var bestPos: Int32 = -1
                        var bestResult: Int32 = 0
                        var i: Int32 = 0
                        while true {
                            let j = nxt[Int(i)]
                            if j < 0 { break }
                            if let m = merges.lookup(left: sym[Int(i)], right: sym[Int(j)]), m.rank < bestRank {
                                bestRank = m.rank
                                bestPos = i
                                bestResult = m.result
                            }
                            i = j
                        }
                        if bestPos < 0 { return }
                        let j = Int(nxt[Int(bestPos)])
                        sym[Int(bestPos)] = bestResult
                        let after = nxt[j]
                        nxt[Int(bestPos)] = after
                        if after >= 0 { prv[Int(after)] = bestPos }
                    }
                }
            }
        }
    }

    func emit(into ids: inout [Int32]) {
        if symbols.isEmpty { return }
        // A single symbol never went through `merge`, so its `next` still points one past the end.
        var i = 0
        while i >= 0 && i < symbols.count {
            ids.append(symbols[i])
            i = Int(next[i])
        }
    }
}

/// GPT-2's reversible map between bytes and printable Unicode characters.
enum ByteLevelAlphabet {
    /// The character GPT-2 uses for each byte.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var printable = Set<Int>()
        for b in 0x21...0x7E { printable.insert(b) }
        for b in 0xA1...0xAC { printable.insert(b) }
        for b in 0xAE...0xFF { printable.insert(b) }
        var extra: UInt32 = 256
        for b in 0..<256 {
            if printable.contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = extra
                extra += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s] = UInt8(b) }
        return map
    }()

    /// Maps a vocabulary token written in the byte alphabet back to raw bytes; characters outside the
    /// alphabet (e.g. in added tokens) keep their UTF-8 bytes.
    static func rawBytes(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in token.unicodeScalars {
            if let b = scalarToByte[scalar.value] {
                out.append(b)
            } else {
                UTF8Bytes.append(scalar.value, to: &out)
            }
        }
        return out
    }
}
