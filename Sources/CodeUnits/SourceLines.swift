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
    /// locale-aware search (hot in extraction).
    func utf8Offset(of needle: String, backwards: Bool = false) -> Int? {
        let hay = Array(utf8), pat = Array(needle.utf8)
        guard !pat.isEmpty, hay.count >= pat.count else { return nil }
        let starts = Array(0...(hay.count - pat.count))
        for i in backwards ? starts.reversed() : starts where hay[i] == pat[0] {
            var match = true
            for j in 1..<pat.count where hay[i + j] != pat[j] { match = false; break }
            if match { return i }
        }
        return nil
    }

    func containsText(_ needle: String) -> Bool { utf8Offset(of: needle) != nil }
}
