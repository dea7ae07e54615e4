/// One entry of `added_tokens` in a `tokenizer.json`.
struct AddedToken: Sendable {
    let id: Int32
    let content: String
    let special: Bool
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
}

/// Finds added tokens in text the way HF's AddedVocabulary does: leftmost-longest matches (an
/// Aho-Corasick equivalent over a byte trie), then the single_word / lstrip / rstrip rules.
struct AddedTokenMatcher: Sendable {
    /// A piece of text: either an added token's id, or a byte range still to be tokenized.
    enum Piece { case token(Int32), text(Range<Int>) }

    private struct Node: Sendable {
        var children: [UInt8: Int32] = [:]
        /// Index into `tokens` of the token ending here, or -1.
        var terminal: Int32 = -1
    }

    private var nodes: [Node] = [Node()]
    private var tokens: [AddedToken] = []
    private var firstBytes = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { tokens.isEmpty }

    /// `patterns` are the byte strings to look for (the normalized content for normalized tokens).
    init(_ entries: [(pattern: [UInt8], token: AddedToken)]) {
        for (pattern, token) in entries where !pattern.isEmpty {
            var node = 0
            for b in pattern {
                if let child = nodes[node].children[b] {
                    node = Int(child)
                } else {
                    nodes.append(Node())
                    nodes[node].children[b] = Int32(nodes.count - 1)
                    node = nodes.count - 1
                }
            }
            if nodes[node].terminal < 0 {
                nodes[node].terminal = Int32(tokens.count)
                tokens.append(token)
            }
            firstBytes[Int(pattern[0])] = true
        }
    }

    /// Longest match starting at `i`: (token index, end).
    @inline(__always)
    private func longestMatch(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)?
        var j = i
        while j < p.count, let child = nodes[node].children[p[j]] {
            node = Int(child)
            j += 1
            if nodes[node].terminal >= 0 { best = (Int(nodes[node].terminal), j) }
        }
        return best
    }

    /// Splits `p` into added tokens and the text between them.
    func split(_ p: UnsafeBufferPointer<UInt8>) -> [Piece] {
        if tokens.isEmpty { return [.text(0..<p.count)] }
        var pieces: [Piece] = []
        var startOffset = 0  // end of the previous piece
        var i = 0
        while i < p.count {
            guard firstBytes[Int(p[i])], let (index, matchEnd) = longestMatch(p, at: i) else {
                i += 1
                continue
            }
            let token = tokens[index]
            var start = i
            var stop = matchEnd
            if token.singleWord {
                let wordBefore = start > 0 && Self.endsWithWordChar(p, before: start)
                let wordAfter = stop < p.count && Self.startsWithWordChar(p, at: stop)
                if wordBefore || wordAfter {
                    // Not a match here; HF's automaton resumes after the rejected match.
                    i = matchEnd
                    continue
                }
            }
            if token.lstrip {
                start = max(Self.whitespaceRunStart(p, before: start), startOffset)
            }
            if token.rstrip {
                stop = Self.whitespaceRunEnd(p, from: stop)
            }
            if startOffset < start { pieces.append(.text(startOffset..<start)) }
            pieces.append(.token(token.id))
            startOffset = stop
            i = max(matchEnd, stop)
        }
        if startOffset < p.count { pieces.append(.text(startOffset..<p.count)) }
        return pieces
    }

    // MARK: character tests at byte positions

    private static func scalarBefore(_ p: UnsafeBufferPointer<UInt8>, _ end: Int) -> (UInt32, Int) {
        var s = end - 1
        while s > 0 && p[s] & 0xC0 == 0x80 { s -= 1 }
        return (UTF8Bytes.decode(p, s).0, s)
    }

    private static func isWordChar(_ c: UInt32) -> Bool {
        if c < 0x80 {
            let b = UInt8(c)
            return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
        }
        guard let scalar = Unicode.Scalar(c) else { return false }
        let props = scalar.properties
        return props.isAlphabetic || props.numericType != nil || props.generalCategory == .nonspacingMark
            || props.generalCategory == .connectorPunctuation
    }

    private static func isWhitespace(_ c: UInt32) -> Bool {
        UnicodeClasses.shared.isByteLevelSpace(c)
    }

    private static func endsWithWordChar(_ p: UnsafeBufferPointer<UInt8>, before end: Int) -> Bool {
        isWordChar(scalarBefore(p, end).0)
    }

    private static func startsWithWordChar(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        isWordChar(UTF8Bytes.decode(p, i).0)
    }

    private static func whitespaceRunStart(_ p: UnsafeBufferPointer<UInt8>, before end: Int) -> Int {
        var start = end
        while start > 0 {
            let (c, s) = scalarBefore(p, start)
            if !isWhitespace(c) { break }
            start = s
        }
        return start
    }

    private static func whitespaceRunEnd(_ p: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        var end = i
        while end < p.count {
            let (c, n) = UTF8Bytes.decode(p, end)
            if !isWhitespace(c) { break }
            end += n
        }
        return end
    }
}
