import Foundation

/// The `-e` pattern dialect (reference §2.3): grep-style input turned into an ERE the regex engine
/// accepts, plus the words of a pattern used to enrich the semantic query.
public enum RegexSyntax {
    /// BRE → ERE: `\|` → `|`; `\(`/`\)` and `\{`/`\}` become groups/intervals only when balanced
    /// (a `\{` at the very start stays escaped); `\+`, `\?` and `\\` stay escaped.
    public static func breToEre(_ pattern: String) -> String {
        let chars = Array(pattern)
        var openParens = 0, closeParens = 0, openBraces = 0, closeBraces = 0
        var i = 0
        while i < chars.count {
            if chars[i] == "\\", i + 1 < chars.count {
                switch chars[i + 1] {
                case "(": openParens += 1
                case ")": closeParens += 1
                case "{": if i > 0 { openBraces += 1 }
                case "}": closeBraces += 1
                default: break
                }
                i += 2
            } else {
                i += 1
            }
        }
        let convertParens = openParens > 0 && openParens == closeParens
        let convertBraces = openBraces > 0 && openBraces == closeBraces
        var out = ""
        i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count {
                let n = chars[i + 1]
                switch n {
                case "|": out.append("|")
                case "(", ")": out += convertParens ? String(n) : "\\" + String(n)
                case "{": out += (convertBraces && i > 0) ? "{" : "\\{"
                case "}": out += convertBraces ? "}" : "\\}"
                default: out += "\\" + String(n)
                }
                i += 2
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// Keeps `{n}`, `{n,}`, `{n,m}`, `{,m}` quantifiers; every other brace becomes a literal class.
    public static func escapeLiteralBraces(_ pattern: String) -> String {
        let chars = Array(pattern)
        var out = ""
        var i = 0
        var inClass = false
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count {
                let n = chars[i + 1]
                if !inClass && n == "{" { out += "[{]" } else if !inClass && n == "}" { out += "[}]" } else { out += "\\" + String(n) }
                i += 2
                continue
            }
            if inClass {
                if c == "]" { inClass = false }
                out.append(c)
                i += 1
                continue
            }
            if c == "[" {
                inClass = true
                out.append(c)
                // a `]` right after `[` or `[^` is literal
                if i + 1 < chars.count, chars[i + 1] == "^" { out.append("^"); i += 1 }
                if i + 1 < chars.count, chars[i + 1] == "]" { out.append("]"); i += 1 }
                i += 1
                continue
            }
            if c == "{" {
                if let close = chars[(i + 1)...].firstIndex(of: "}"), isQuantifier(String(chars[(i + 1)..<close])), i > 0 {
                    out += String(chars[i...close])
                    i = close + 1
                    continue
                }
                out += "[{]"
                i += 1
                continue
            }
            if c == "}" {
                out += "[}]"
                i += 1
                continue
            }
            out.append(c)
            i += 1
        }
        return out
    }

    private static func isQuantifier(_ body: String) -> Bool {
        let parts = body.split(separator: ",", omittingEmptySubsequences: false)
        let digits: (Substring) -> Bool = { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
        switch parts.count {
        case 1: return digits(parts[0])
        case 2: return (digits(parts[0]) && (parts[1].isEmpty || digits(parts[1]))) || (parts[0].isEmpty && digits(parts[1]))
        default: return false
        }
    }

    /// The ERE used against code: BRE converted, literal braces escaped, `\b…\b` with `-w`.
    public static func extendedPattern(_ pattern: String, wordRegexp: Bool) -> String {
        let ere = escapeLiteralBraces(breToEre(pattern))
        return wordRegexp ? "\\b(?:" + ere + ")\\b" : ere
    }

    /// The literal variant (`-F`, and the union partner of every `-e`).
    public static func literalPattern(_ pattern: String, wordRegexp: Bool) -> String {
        let escaped = NSRegularExpression.escapedPattern(for: pattern)
        return wordRegexp ? "\\b" + escaped + "\\b" : escaped
    }

    /// Words of a regex for the semantic query: classes, quantifiers, anchors, bracket
    /// expressions, intervals, dots and parentheses removed, alternation turned into spaces.
    public static func stripForSemantic(_ pattern: String) -> String {
        var s = pattern
        let rules: [(String, String)] = [
            (#"\[[^\]]*\]"#, " "),
            (#"\{\d*,?\d*\}"#, " "),
            (#"\\[sSwWdDbBAzZ]"#, " "),
            (#"\\(.)"#, "$1"),
            (#"[\^\$\*\+\?\.\(\)\|]"#, " "),
        ]
        for (from, to) in rules {
            s = s.replacingOccurrences(of: from, with: to, options: .regularExpression)
        }
        return s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// The semantic query of a `-e` search: the query plus pattern words it does not already contain.
    public static func semanticQuery(query: String, pattern: String) -> String {
        let existing = Set(query.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init))
        var words: [String] = []
        var seen = existing
        for word in stripForSemantic(pattern).split(separator: " ").map(String.init) where !seen.contains(word.lowercased()) {
            seen.insert(word.lowercased())
            words.append(word)
        }
        return ([query] + words).filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// Line matcher of the `-e` family, used both to prefilter units and to print `path:line:text`.
public struct LineMatcher {
    private let regex: NSRegularExpression?
    private let literal: String
    private let caseSensitive: Bool
    private let fixed: Bool
    private let word: Bool

    /// `-F` → literal only; otherwise ERE (`(?i)` unless `-s`) with the literal as fallback.
    public init(pattern: String, fixedStrings: Bool, wordRegexp: Bool, caseSensitive: Bool) {
        literal = pattern
        self.caseSensitive = caseSensitive
        fixed = fixedStrings
        word = wordRegexp
        if fixedStrings {
            regex = try? NSRegularExpression(pattern: RegexSyntax.literalPattern(pattern, wordRegexp: wordRegexp),
                                             options: caseSensitive ? [] : [.caseInsensitive])
        } else {
            regex = try? NSRegularExpression(pattern: RegexSyntax.extendedPattern(pattern, wordRegexp: wordRegexp),
                                             options: caseSensitive ? [.anchorsMatchLines] : [.anchorsMatchLines, .caseInsensitive])
        }
    }

    /// True when the pattern is a valid regex (an invalid one falls back to the literal).
    public var isValidRegex: Bool { regex != nil }

    public func matches(_ text: String) -> Bool {
        if let regex, regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil { return true }
        if word { return false }
        return caseSensitive ? text.contains(literal) : text.lowercased().contains(literal.lowercased())
    }

    /// 1-based numbers of the lines of `text` that match.
    public func matchingLines(_ text: String) -> [(number: Int, line: String)] {
        var result: [(Int, String)] = []
        var number = 0
        text.enumerateLines { line, _ in
            number += 1
            if matches(line) { result.append((number, line)) }
        }
        return result
    }
}
