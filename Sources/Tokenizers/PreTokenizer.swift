/// The `pre_tokenizer` section of a `tokenizer.json`: splits normalized UTF-8 into words.
enum PreTokenizer: Sendable {
    /// BertPreTokenizer: split on whitespace (dropped) and isolate each punctuation character.
    case bert
    /// ByteLevel: GPT-2's split regex (when `useRegex`), optionally a leading space first.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// No pre-tokenizer: the whole piece is one word.
    case none

    /// Calls `emit` with the byte range of each word of `p`, in order.
    @inline(__always)
    func split(_ p: UnsafeBufferPointer<UInt8>, _ emit: (Range<Int>) -> Void) {
        switch self {
        case .bert: Self.bertSplit(p, emit)
        case .byteLevel(_, let useRegex):
            if useRegex { Self.byteLevelSplit(p, emit) } else if !p.isEmpty { emit(0..<p.count) }
        case .none: if !p.isEmpty { emit(0..<p.count) }
        }
    }

    private static func bertSplit(_ p: UnsafeBufferPointer<UInt8>, _ emit: (Range<Int>) -> Void) {
        UnicodeClasses.shared.flags.withUnsafeBufferPointer { flags in
            var start = -1
            var i = 0
            while i < p.count {
                let (c, n) = UTF8Bytes.decode(p, i)
                let f = flags[Int(c)]
                if f & UnicodeClasses.bertWhitespace != 0 {
                    if start >= 0 { emit(start..<i); start = -1 }
                } else if f & UnicodeClasses.bertPunctuation != 0 {
                    if start >= 0 { emit(start..<i); start = -1 }
                    emit(i..<(i + n))
                } else if start < 0 {
                    start = i
                }
                i += n
            }
            if start >= 0 { emit(start..<p.count) }
        }
    }

    /// Character classes of GPT-2's pattern
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    private enum CharClass { case letter, number, space, other }

    @inline(__always)
    private static func charClass(_ c: UInt32, _ flags: UnsafeBufferPointer<UInt8>) -> CharClass {
        let f = flags[Int(c)]
        if f & UnicodeClasses.letter != 0 { return .letter }
        if f & UnicodeClasses.number != 0 { return .number }
        if UnicodeClasses.shared.isByteLevelSpace(c) { return .space }
        return .other
    }

    /// Hand-written equivalent of the regex above, scanning UTF-8 once (Swift Regex is too slow here).
    private static func byteLevelSplit(_ p: UnsafeBufferPointer<UInt8>, _ emit: (Range<Int>) -> Void) {
        UnicodeClasses.shared.flags.withUnsafeBufferPointer { flags in
            let n = p.count
            // Class and end of the scalar at a byte position.
            @inline(__always) func at(_ i: Int) -> (CharClass, Int) {
                let (c, len) = UTF8Bytes.decode(p, i)
                return (charClass(c, flags), i + len)
            }
            // End of the run of `cls` starting at `i`.
            @inline(__always) func run(_ cls: CharClass, from i: Int) -> Int {
                var j = i
                while j < n {
                    let (k, next) = at(j)
                    if k != cls { break }
                    j = next
                }
                return j
            }
            var i = 0
            while i < n {
                // Contractions: 's 't 're 've 'm 'll 'd (lowercase only, as in the pattern).
                if p[i] == 0x27, i + 1 < n {
                    let a = p[i + 1]
                    if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 {
                        emit(i..<(i + 2)); i += 2; continue
                    }
                    if i + 2 < n {
                        let b = p[i + 2]
                        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {
                            emit(i..<(i + 3)); i += 3; continue
                        }
                    }
                }
                let (cls, next) = at(i)
                var start = i
                var cur = cls
                var after = next
                if p[i] == 0x20, next < n {
                    // ` ?X+`: a single space joins the following letter, number or other run.
                    let (k, kNext) = at(next)
                    if k != .space { cur = k; after = kNext; start = i }
                }
                switch cur {
                case .letter, .number, .other:
                    let end = run(cur, from: after)
                    emit(start..<end)
                    i = end
                case .space:
                    let end = run(.space, from: i)
                    if end == n {
                        emit(i..<end)
                        i = end
                    } else {
                        // `\s+(?!\S)` leaves the last whitespace for the next token; `\s+` takes one.
                        var lastStart = end - 1
                        while p[lastStart] & 0xC0 == 0x80 { lastStart -= 1 }
                        if lastStart > i {
                            emit(i..<lastStart)
                            i = lastStart
                        } else {
                            emit(i..<end)
                            i = end
                        }
                    }
                }
            }
        }
    }
}
