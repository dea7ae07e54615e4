/// The lines of a file (split on `\n`, 0-based rows as tree-sitter counts them) with the helpers the
/// unit builders share: trimmed text, blank tests and code spans. Lines are byte ranges of one string,
/// found over UTF-8 (no grapheme breaking on the hot path).
struct SourceLines {
    private let text: String
    private let starts: [String.Index]
    private let ends: [String.Index]

    init(_ text: String) {
        self.text = text
        var starts: [String.Index] = [text.startIndex]
        var ends: [String.Index] = []
        let utf8 = text.utf8
        var i = utf8.startIndex
        while let newline = utf8[i...].firstIndex(of: UInt8(ascii: "\n")) {
            ends.append(newline)
            i = utf8.index(after: newline)
            starts.append(i)
        }
        ends.append(text.endIndex)
        self.starts = starts
        self.ends = ends
    }

    var count: Int { starts.count }

    func line(_ row: Int) -> Substring { text[starts[row]..<ends[row]] }

    func trimmed(_ row: Int) -> String {
        guard row >= 0 && row < starts.count else { return "" }
        return line(row).trimmingWhitespace()
    }

    func isBlank(_ row: Int) -> Bool {
        guard row >= 0 && row < starts.count else { return true }
        return line(row).utf8.allSatisfy { $0 == 32 || $0 == 9 || $0 == 13 || $0 == 12 }
    }

    /// Rows `from...to` joined by `\n` (clamped to the file).
    func code(_ from: Int, _ to: Int) -> String {
        let a = max(0, from), b = min(starts.count - 1, to)
        guard a <= b else { return "" }
        return String(text[starts[a]..<ends[b]])
    }
}

extension StringProtocol {
    /// Trims spaces, tabs, carriage returns, form feeds and newlines, over UTF-8 (cheaper than
    /// Foundation's character sets or grapheme iteration).
    func trimmingWhitespace() -> String {
        let isSpace: (UInt8) -> Bool = { $0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 || $0 == 12 }
        let whole = Substring(self)
        let bytes = whole.utf8
        guard let first = bytes.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = bytes.lastIndex(where: { !isSpace($0) })!
        return String(Substring(bytes[first...last]))
    }
}

extension StringProtocol {
    /// Byte offset of the first (or last) occurrence of `needle` in the UTF-8 view, without Foundation's
    /// locale-aware search (hot in extraction and in the import filter). Nil for an empty needle.
    func utf8Offset(of needle: String, backwards: Bool = false) -> Int? {
        let pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return nil }
        if let found = utf8.withContiguousStorageIfAvailable({ byteOffset(of: pattern, in: $0, backwards: backwards) }) { return found }
        return Array(utf8).withUnsafeBufferPointer { byteOffset(of: pattern, in: $0, backwards: backwards) }
    }

    func containsText(_ needle: String) -> Bool { utf8Offset(of: needle) != nil }
}

/// Where `pattern` (not empty) first — or, `backwards`, last — starts in `bytes`.
private func byteOffset(of pattern: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, backwards: Bool) -> Int? {
    guard bytes.count >= pattern.count else { return nil }
    let last = bytes.count - pattern.count
    var i = backwards ? last : 0
    while i >= 0 && i <= last {
        if bytes[i] == pattern[0] {
            var j = 1
            while j < pattern.count && bytes[i + j] == pattern[j] { j += 1 }
            if j == pattern.count { return i }
        }
        i += backwards ? -1 : 1
    }
    return nil
}
