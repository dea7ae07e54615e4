import CodeUnits
import Foundation

/// How results are printed (reference §2.6).
public enum OutputMode: Sendable, Equatable {
    /// `path:start-end`, one line per result (or `path:line:text` match lines with `-e`).
    case compact
    /// `-l`: unique file paths.
    case filesOnly
    /// `--json`: pretty array of `{"unit": …, "score": …}` with absolute paths.
    case json
    /// `-c` (whole units) or `-n N` (a window of N lines around the relevant lines).
    case verbose(contextLines: Int, wholeUnit: Bool)
}

/// Renders search results to text; pure apart from reading files for `-e` match lines.
public struct OutputFormatter {
    public var mode: OutputMode
    public var relativePaths: Bool
    public var currentDirectory: String
    public var matcher: LineMatcher?
    public var color: Bool

    public init(mode: OutputMode, relativePaths: Bool = true, currentDirectory: String = FileManager.default.currentDirectoryPath,
                matcher: LineMatcher? = nil, color: Bool = false) {
        self.mode = mode
        self.relativePaths = relativePaths
        self.currentDirectory = currentDirectory
        self.matcher = matcher
        self.color = color
    }

    /// Path as shown: relative to the current directory unless disabled; `--json` is always absolute.
    public func displayPath(_ hit: SearchHit) -> String {
        relativePaths ? Self.relativePath(hit.absolutePath, from: currentDirectory) : hit.absolutePath
    }

    /// `path` relative to `base` (both absolute), with `..` where needed.
    public static func relativePath(_ path: String, from base: String) -> String {
        let p = (path as NSString).standardizingPath.split(separator: "/").map(String.init)
        let b = (base as NSString).standardizingPath.split(separator: "/").map(String.init)
        var common = 0
        while common < p.count, common < b.count, p[common] == b[common] { common += 1 }
        let ups = Array(repeating: "..", count: b.count - common)
        let rest = Array(p[common...])
        let joined = (ups + rest).joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }

    public func render(_ hits: [SearchHit], query: String) -> String {
        switch mode {
        case .json:
            let items = hits.map { hit in
                JSONValue.object([("unit", hit.unit.json(filePath: hit.absolutePath)), ("score", .float(hit.score))])
            }
            return JSONValue.array(items).pretty() + "\n"
        case .filesOnly:
            var seen = Set<String>()
            var out = ""
            for hit in hits {
                let path = displayPath(hit)
                if seen.insert(path).inserted { out += path + "\n" }
            }
            return out
        case .compact:
            if hits.isEmpty { return "No results found for: \(query)\n" }
            if let matcher { return matchLines(hits, matcher: matcher) }
            return hits.map { "\(displayPath($0)):\($0.unit.line)-\($0.unit.endLine)\n" }.joined()
        case .verbose(let context, let whole):
            if hits.isEmpty { return "No results found for: \(query)\n" }
            return verbose(hits, query: query, context: context, wholeUnit: whole)
        }
    }

    /// `-e` compact output: every matching line of each result file, read from disk.
    private func matchLines(_ hits: [SearchHit], matcher: LineMatcher) -> String {
        var out = ""
        var seen = Set<String>()
        for hit in hits where seen.insert(hit.absolutePath).inserted {
            guard let data = FileManager.default.contents(atPath: hit.absolutePath) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            let path = displayPath(hit)
            for (number, line) in matcher.matchingLines(text) {
                out += "\(path):\(number):\(Self.clip(line.trimmingCharacters(in: .whitespaces), 120))\n"
            }
        }
        return out
    }

    static func clip(_ s: String, _ limit: Int) -> String {
        s.count > limit ? String(s.prefix(limit)) + "..." : s
    }

    private func paint(_ s: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s
    }

    /// Verbose output: code results first, then documents, grouped by file.
    private func verbose(_ hits: [SearchHit], query: String, context: Int, wholeUnit: Bool) -> String {
        let ordered = hits.filter { $0.unit.unitType != .document } + hits.filter { $0.unit.unitType == .document }
        var out = ""
        for hit in ordered {
            out += paint("file: \(displayPath(hit))", "36") + "\n"
            let lines = hit.unit.code.components(separatedBy: "\n")
            let selected = selectLines(lines, hit: hit, query: query, context: context, wholeUnit: wholeUnit)
            let width = max(4, String(hit.unit.line + lines.count).count)
            var previous: Int?
            for index in selected {
                if let p = previous, index > p + 1 { out += String(repeating: " ", count: width) + " ...\n" }
                let number = String(hit.unit.line + index)
                let padded = String(repeating: " ", count: max(0, width - number.count)) + number
                out += paint(padded, "2") + " " + Self.clip(lines[index], 400) + "\n"
                previous = index
            }
            out += "\n"
        }
        return out
    }

    /// Line indices (within the unit) to show: the whole unit (`-c`, documents capped at 250),
    /// else windows of `context/2` around pattern matches or query-word matches, else the unit head;
    /// the first signature lines are always included.
    func selectLines(_ lines: [String], hit: SearchHit, query: String, context: Int, wholeUnit: Bool) -> [Int] {
        if wholeUnit {
            let cap = hit.unit.unitType == .document ? 250 : lines.count
            return Array(0..<min(lines.count, cap))
        }
        let half = max(1, context / 2)
        var anchors: [Int] = []
        if let matcher {
            anchors = lines.indices.filter { matcher.matches(lines[$0]) }
        }
        if anchors.isEmpty {
            let words = query.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" })
                .map(String.init).filter { $0.count >= 3 && !Ranker.stopwords.contains($0) }
            if !words.isEmpty {
                anchors = lines.indices.filter { i in
                    let l = lines[i].lowercased()
                    return words.contains { l.contains($0) }
                }
            }
        }
        var chosen = Set<Int>(0..<min(2, lines.count))
        if anchors.isEmpty {
            for i in 0..<min(lines.count, max(context, 1)) { chosen.insert(i) }
        } else {
            for a in anchors.prefix(3) {
                for i in max(0, a - half)...min(lines.count - 1, a + half) { chosen.insert(i) }
            }
        }
        return chosen.sorted()
    }
}
