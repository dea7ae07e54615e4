/// Splits text into the lowercase identifier tokens that the keyword index (FTS5) stores and that
/// keyword queries are made of (reference §1.11, `tokenize_identifiers`).
///
/// Rules, applied to every ASCII identifier `[A-Za-z_][A-Za-z0-9_]*` in the text (any other byte,
/// including every non-ASCII byte, separates identifiers):
/// - the identifier's lowercase form is emitted (identifiers without any letter, such as `_` or `_1`,
///   are dropped);
/// - it is split into parts: on `_` when it contains one, otherwise on camel / Pascal / acronym /
///   digit-run boundaries (`getHTTPResponse` → `get http response`); parts that are pure numbers
///   are dropped;
/// - with two or more parts, every part and every adjacent-pair bigram joined by `_` follows
///   (`handler_stack_push` → `handler stack push handler_stack stack_push`), except a bigram equal
///   to the identifier itself (`baz_qux`), which would only count it twice;
/// - with one part that differs from the whole (`__init__` → `init`, `utf8` → `utf`), that part follows.
///   The FTS table keeps `_` inside tokens (so a bigram is one term with its own weight), which is why
///   the lone part must be emitted for `init` to find `__init__`.
///
/// Byte-level and allocation-light: the FTS path appends straight into a byte buffer.
public enum IdentifierTokenizer {
    /// The tokens of `text`, in order of appearance (duplicates kept, as BM25 counts them).
    public static func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        forEachToken(in: text) { bytes in tokens.append(String(decoding: bytes, as: UTF8.self)) }
        return tokens
    }

    /// Appends the tokens of `text` to `buffer`, each preceded by a space when `buffer` is non-empty.
    static func appendTokens(of text: String, to buffer: inout [UInt8]) {
        forEachToken(in: text) { bytes in
            if !buffer.isEmpty { buffer.append(0x20) }
            buffer.append(contentsOf: bytes)
        }
    }

    /// Calls `emit` with every token's bytes (valid only during the call).
    static func forEachToken(in text: String, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            let scratch = Scratch()
            var i = 0
            let n = bytes.count
            while i < n {
                let c = bytes[i]
                guard isLetter(c) || c == underscore else { i += 1; continue }
                let start = i
                i += 1
                while i < n, isAlphanumeric(bytes[i]) || bytes[i] == underscore { i += 1 }
                emitIdentifier(UnsafeBufferPointer(rebasing: bytes[start..<i]), scratch, emit)
            }
        }
    }

    // MARK: - one identifier

    /// Reusable buffers so that tokenizing a large text allocates only a few times.
    private final class Scratch {
        var lower: [UInt8] = []
        /// Part boundaries as (start, end) offsets into `lower`.
        var parts: [(Int, Int)] = []
        var pair: [UInt8] = []
    }

    private static let underscore: UInt8 = 0x5F

    @inline(__always) private static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
    @inline(__always) private static func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }
    @inline(__always) private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    @inline(__always) private static func isLetter(_ c: UInt8) -> Bool { isUpper(c) || isLower(c) }
    @inline(__always) private static func isAlphanumeric(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) }

    private static func emitIdentifier(
        _ ident: UnsafeBufferPointer<UInt8>, _ s: Scratch, _ emit: (UnsafeBufferPointer<UInt8>) -> Void
    ) {
        guard ident.contains(where: isLetter) else { return }
        s.lower.removeAll(keepingCapacity: true)
        var hasUnderscore = false
        for c in ident {
            s.lower.append(isUpper(c) ? c | 0x20 : c)
            if c == underscore { hasUnderscore = true }
        }
        s.parts.removeAll(keepingCapacity: true)
        if hasUnderscore {
            splitOnUnderscores(s.lower, into: &s.parts)
        } else {
            splitCamelCase(ident, into: &s.parts)
        }
        // Pure numbers carry no identifier meaning (`v2`, `sha256`): drop them as parts.
        let lowered = s.lower
        s.parts.removeAll { part in (part.0..<part.1).allSatisfy { isDigit(lowered[$0]) } }

        s.lower.withUnsafeBufferPointer { lower in
            emit(lower)
            if s.parts.count >= 2 {
                for (a, b) in s.parts { emit(UnsafeBufferPointer(rebasing: lower[a..<b])) }
                for k in 0..<(s.parts.count - 1) {
                    let (a1, b1) = s.parts[k]
                    let (a2, b2) = s.parts[k + 1]
                    s.pair.removeAll(keepingCapacity: true)
                    s.pair.append(contentsOf: lower[a1..<b1])
                    s.pair.append(underscore)
                    s.pair.append(contentsOf: lower[a2..<b2])
                    // `baz_qux`'s only bigram is the identifier itself: counting it twice would skew BM25.
                    if s.pair.elementsEqual(lower) { continue }
                    s.pair.withUnsafeBufferPointer(emit)
                }
            } else if let (a, b) = s.parts.first, b - a != lower.count {
                emit(UnsafeBufferPointer(rebasing: lower[a..<b]))
            }
        }
    }

    /// Non-empty `_`-separated segments of the lowercase identifier.
    private static func splitOnUnderscores(_ lower: [UInt8], into parts: inout [(Int, Int)]) {
        var start = 0
        for (i, c) in lower.enumerated() where c == underscore {
            if i > start { parts.append((start, i)) }
            start = i + 1
        }
        if lower.count > start { parts.append((start, lower.count)) }
    }

    /// Camel / Pascal / acronym / digit-run boundaries of an identifier without `_`:
    /// `getHTTPResponse` → get | HTTP | Response, `parseV2Config` → parse | V | 2 | Config.
    private static func splitCamelCase(_ ident: UnsafeBufferPointer<UInt8>, into parts: inout [(Int, Int)]) {
        let n = ident.count
        var i = 0
        while i < n {
            let start = i
            let c = ident[i]
            if isDigit(c) {
                while i < n, isDigit(ident[i]) { i += 1 }
            } else if isUpper(c) {
                while i + 1 < n, isUpper(ident[i + 1]) { i += 1 }
                // An acronym followed by a capitalised word gives its last capital to that word.
                if i > start, i + 1 < n, isLower(ident[i + 1]) {
                    parts.append((start, i))
                    continue
                }
                i += 1
                while i < n, isLower(ident[i]) { i += 1 }
            } else {
                while i < n, isLower(ident[i]) { i += 1 }
            }
            parts.append((start, i))
        }
    }
}
