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
        // Reusable buffers, passed down `inout` so that tokenizing a large text allocates only a few
        // times and the hot loop has no dynamic exclusivity checks.
        var lower: [UInt8] = []
        var parts: [(Int, Int)] = []
        var pair: [UInt8] = []
        text.withUTF8 { bytes in
            var i = 0
            let n = bytes.count
            while i < n {
                let c = bytes[i]
                guard isLetter(c) || c == underscore else { i += 1; continue }
                let start = i
                i += 1
                while i < n, isAlphanumeric(bytes[i]) || bytes[i] == underscore { i += 1 }
                emitIdentifier(UnsafeBufferPointer(rebasing: bytes[start..<i]), &lower, &parts, &pair, emit)
            }
        }
    }

    // MARK: - one identifier

    private static let underscore: UInt8 = 0x5F

    @inline(__always) private static func isUpper(_ c: UInt8) -> Bool { c &- 0x41 < 26 }
    @inline(__always) private static func isLower(_ c: UInt8) -> Bool { c &- 0x61 < 26 }
    @inline(__always) private static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    @inline(__always) private static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) &- 0x61 < 26 }
    @inline(__always) private static func isAlphanumeric(_ c: UInt8) -> Bool { isLetter(c) || isDigit(c) }

    private static func emitIdentifier(
        _ ident: UnsafeBufferPointer<UInt8>, _ lower: inout [UInt8], _ parts: inout [(Int, Int)],
        _ pair: inout [UInt8], _ emit: (UnsafeBufferPointer<UInt8>) -> Void
    ) {
        var hasLetter = false
        var hasUnderscore = false
        var hasUpper = false
        var hasDigit = false
        for c in ident {
            if isLetter(c) { hasLetter = true; if isUpper(c) { hasUpper = true } }
            else if c == underscore { hasUnderscore = true }
            else { hasDigit = true }
        }
        guard hasLetter else { return }
        // Fast path: a plain lowercase word (most identifiers in code) is its own only token.
        if !hasUnderscore && !hasUpper && !hasDigit { emit(ident); return }

        lower.removeAll(keepingCapacity: true)
        for c in ident { lower.append(isUpper(c) ? c | 0x20 : c) }
        parts.removeAll(keepingCapacity: true)
        if hasUnderscore {
            splitOnUnderscores(lower, into: &parts)
        } else {
            splitCamelCase(ident, into: &parts)
        }
        if hasDigit {
            // Pure numbers carry no identifier meaning (`v2`, `sha256`): drop them as parts.
            parts.removeAll { part in (part.0..<part.1).allSatisfy { isDigit(ident[$0]) } }
        }
        lower.withUnsafeBufferPointer { lower in
            emit(lower)
            if parts.count >= 2 {
                for (a, b) in parts { emit(UnsafeBufferPointer(rebasing: lower[a..<b])) }
                for k in 0..<(parts.count - 1) {
                    let (a1, b1) = parts[k]
                    let (a2, b2) = parts[k + 1]
                    // `baz_qux`'s only bigram is the identifier itself: counting it twice would skew BM25.
                    if a1 == 0 && b2 == lower.count && a2 == b1 + 1 && lower[b1] == underscore { continue }
                    pair.removeAll(keepingCapacity: true)
                    pair.append(contentsOf: lower[a1..<b1])
                    pair.append(underscore)
                    pair.append(contentsOf: lower[a2..<b2])
                    pair.withUnsafeBufferPointer(emit)
                }
            } else if let (a, b) = parts.first, b - a != lower.count {
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
