/// Fills the lines no unit covers with `rawcode` units (reference §1.4, `fill_raw_code_gaps`): every
/// maximal run of uncovered lines (blank lines inside a run allowed) with leading and trailing blank
/// lines trimmed becomes `raw_code_<startline>`; its imports are all the file's imports.
enum RawCodeGaps {
    static func fill(_ units: inout [CodeUnit], lines: SourceLines, file: String, language: String, imports: [String]) {
        guard lines.count > 0 else { return }
        var covered = [Bool](repeating: false, count: lines.count)
        for u in units {
            let a = max(0, u.line - 1), b = min(lines.count - 1, u.endLine - 1)
            if a <= b { for r in a...b { covered[r] = true } }
        }
        var row = 0
        while row < lines.count {
            if covered[row] { row += 1; continue }
            var end = row
            while end + 1 < lines.count && !covered[end + 1] { end += 1 }
            var first = row, last = end
            while first <= last && lines.isBlank(first) { first += 1 }
            while last >= first && lines.isBlank(last) { last -= 1 }
            if first <= last {
                let name = "raw_code_\(first + 1)"
                let signature = lines.trimmed(first)
                units.append(CodeUnit(
                    name: name, qualifiedName: "\(file)::\(name)", file: file, line: first + 1, endLine: last + 1,
                    language: language, unitType: .rawcode, signature: signature, imports: imports,
                    code: lines.code(first, last)))
            }
            row = end + 1
        }
    }
}

/// Text and config formats (and languages whose grammar cannot be loaded): one `document` unit per
/// non-blank file (reference §1.4, `text.rs`).
enum TextDocument {
    static func unit(file: String, language: String, text: String) -> CodeUnit? {
        let lines = SourceLines(text)
        guard let firstRow = (0..<lines.count).first(where: { !lines.isBlank($0) }) else { return nil }
        var paragraph: [String] = []
        var r = firstRow
        while r < lines.count && !lines.isBlank(r) && paragraph.count < 5 {
            paragraph.append(lines.trimmed(r))
            r += 1
        }
        let fileName = file.split(separator: "/").last.map(String.init) ?? file
        let stem = fileName.lastIndex(of: ".").map { $0 == fileName.startIndex ? fileName : String(fileName[..<$0]) } ?? fileName
        var lastRow = lines.count - 1
        while lastRow > firstRow && lines.isBlank(lastRow) { lastRow -= 1 }
        return CodeUnit(
            name: stem, qualifiedName: "\(file)::\(stem)", file: file, line: 1, endLine: lastRow + 1,
            language: language, unitType: .document, signature: lines.trimmed(firstRow),
            docstring: paragraph.joined(separator: " "), code: text)
    }
}
