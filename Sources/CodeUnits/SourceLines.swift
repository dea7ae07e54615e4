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
