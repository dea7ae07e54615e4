/// The lines of a file (split on `\n`, 0-based rows as tree-sitter counts them) with the helpers the
/// unit builders share: trimmed text, blank tests and code spans.
struct SourceLines {
    let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    var count: Int { lines.count }

    func trimmed(_ row: Int) -> String {
        guard row >= 0 && row < lines.count else { return "" }
        return lines[row].trimmingWhitespace()
    }

    func isBlank(_ row: Int) -> Bool { trimmed(row).isEmpty }

    /// Rows `from...to` joined by `\n` (clamped to the file).
    func code(_ from: Int, _ to: Int) -> String {
        let a = max(0, from), b = min(lines.count - 1, to)
        guard a <= b else { return "" }
        return lines[a...b].joined(separator: "\n")
    }
}

extension StringProtocol {
    /// Trims spaces, tabs, carriage returns and newlines (cheaper than Foundation's character sets).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\u{0C}" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
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
