import Foundation

/// What can be learnt about an ICU pattern without running it, so most rows are settled by a byte
/// scan instead of a trip through `NSRegularExpression` (UTF-16 conversion and ICU set-up per row
/// cost far more than the scan).
///
/// - `requiredLiteral`: text every match must contain (the longest literal run outside groups,
///   classes and optional atoms of a pattern without top-level alternation). A row without it
///   cannot match. Case-insensitive patterns compare ASCII-folded, and only rows that are pure
///   ASCII are settled that way (ICU folds `ſ`, the Kelvin sign, `ß`… onto ASCII letters).
/// - `mayBacktrackBadly`: quantified groups or backreferences, the shapes behind catastrophic
///   backtracking; only these pay for ICU's progress callbacks that enforce the time limit.
struct RegexPrefilter {
    private(set) var requiredLiteral: [UInt8]?
    private(set) var caseInsensitive = false
    private(set) var mayBacktrackBadly = false

    /// Shortest literal worth a scan.
    private static let minimumLiteral = 3

    init(pattern: String) {
        let scalars = Array(pattern.unicodeScalars)
        mayBacktrackBadly = Self.hasRiskyShape(scalars)
        analyseLiterals(scalars)
    }

    /// False only when `text` certainly has no match.
    func mayMatch(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let needle = requiredLiteral else { return true }
        if !caseInsensitive {
            return Self.contains(needle, in: text)
        }
        if Self.containsFolded(needle, in: text) { return true }
        // Non-ASCII text may hold a Unicode case variant of the needle: let ICU decide.
        return text.contains { $0 >= 0x80 }
    }

    /// Exact byte search: `memchr` to each candidate first byte, then `memcmp`.
    static func contains(_ needle: [UInt8], in text: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = needle.count
        guard let base = text.baseAddress, text.count >= n, let first = needle.first else { return n == 0 }
        let last = text.count - n
        var start = 0
        return needle.withUnsafeBufferPointer { needleBytes in
            while start <= last {
                guard let hit = memchr(base + start, Int32(first), last - start + 1) else { return false }
                let index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(base + index, needleBytes.baseAddress!, n) == 0 { return true }
                start = index + 1
            }
            return false
        }
    }

    private static func containsFolded(_ needle: [UInt8], in text: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = needle.count
        guard text.count >= n, let first = needle.first else { return n == 0 }
        var i = 0
        let last = text.count - n
        while i <= last {
            if fold(text[i]) == first {
                var k = 1
                while k < n, fold(text[i + k]) == needle[k] { k += 1 }
                if k == n { return true }
            }
            i += 1
        }
        return false
    }

    @inline(__always) private static func fold(_ c: UInt8) -> UInt8 {
        c &- 0x41 < 26 ? c | 0x20 : c
    }

    private static func isASCIILetterOrDigit(_ s: Unicode.Scalar) -> Bool {
        s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s))
    }

    // MARK: - risk

    private static func hasRiskyShape(_ p: [Unicode.Scalar]) -> Bool {
        var i = 0
        var unbounded = 0
        while i < p.count {
            let c = p[i]
            if c == "\\", i + 1 < p.count {
                let next = p[i + 1]
                if ("1"..."9").contains(next) || next == "k" { return true }
                i += 2
                continue
            }
            if c == ")", i + 1 < p.count, ["*", "+", "{"].contains(p[i + 1]) { return true }
            // Several unbounded repeats in a row (`\w*\s*\w*=`) backtrack polynomially on long rows.
            if c == "*" || c == "+" { unbounded += 1 }
            i += 1
        }
        return unbounded >= 3
    }

    // MARK: - literals

    /// Collects literal runs at nesting depth 0 and keeps the longest; gives up (no literal) on any
    /// construct it does not fully understand.
    private mutating func analyseLiterals(_ p: [Unicode.Scalar]) {
        var runs: [[Unicode.Scalar]] = []
        var run: [Unicode.Scalar] = []
        var depth = 0
        var afterQuantifier = false
        func endRun() {
            if !run.isEmpty { runs.append(run); run.removeAll() }
        }
        var i = 0
        while i < p.count {
            let c = p[i]
            let wasAfterQuantifier = afterQuantifier
            afterQuantifier = false
            switch c {
            case "\\":
                guard i + 1 < p.count else { return }
                let next = p[i + 1]
                i += 2
                if Self.isASCIILetterOrDigit(next) {
                    // Classes, anchors and backreferences match no fixed text; escapes with
                    // arguments (\x, \u, \p, \N, \Q…) are not parsed here.
                    guard "wWsSdDbBAzZGntrfeahHvVR123456789".unicodeScalars.contains(next) else { return }
                    endRun()
                } else if depth == 0 {
                    run.append(next)
                }
                continue
            case "[":
                endRun()
                guard let end = Self.classEnd(p, from: i) else { return }
                i = end + 1
                continue
            case "(":
                if i + 1 < p.count, p[i + 1] == "?" {
                    var k = i + 2
                    while k < p.count, p[k].properties.isAlphabetic || p[k] == "-" { k += 1 }
                    if k < p.count, p[k] == ")" {
                        // An inline flag group: case-insensitivity anywhere makes the whole scan
                        // folded (a superset, so still sound); free spacing changes what is literal.
                        let flags = String(String.UnicodeScalarView(p[(i + 2)..<k]))
                        if flags.contains("x") { return }
                        if flags.contains("i") { caseInsensitive = true }
                        endRun()
                        i = k + 1
                        continue
                    }
                    if p[(i + 2)..<k].contains("x") { return }
                }
                endRun()
                depth += 1
            case ")":
                endRun()
                depth -= 1
                if depth < 0 { return }
            case "|":
                if depth == 0 { return }
            case "?", "*", "{":
                if c == "?" && wasAfterQuantifier {
                    // A lazy modifier (`*?`, `+?`), not a quantifier of its own.
                } else {
                    // The preceding atom is optional: it is not required text.
                    if !run.isEmpty { run.removeLast() }
                    endRun()
                    if c == "{" {
                        guard let close = p[i...].firstIndex(of: "}") else { return }
                        i = close
                    }
                    afterQuantifier = true
                }
            case "+":
                if !wasAfterQuantifier {
                    endRun()
                    afterQuantifier = true
                }
            case ".", "^", "$":
                endRun()
            default:
                if depth == 0 { run.append(c) }
            }
            i += 1
        }
        endRun()
        if depth != 0 { return }
        var best: [UInt8]?
        for candidate in runs {
            // Folded comparison only understands ASCII.
            if caseInsensitive && !candidate.allSatisfy(\.isASCII) { continue }
            var bytes = Array(String(String.UnicodeScalarView(candidate)).utf8)
            if caseInsensitive { bytes = bytes.map(Self.fold) }
            if bytes.count >= Self.minimumLiteral && bytes.count > (best?.count ?? 0) { best = bytes }
        }
        requiredLiteral = best
    }

    /// Index of the `]` closing the class opened at `start` (nested classes allowed), or nil when
    /// the class has a shape this scan does not trust.
    private static func classEnd(_ p: [Unicode.Scalar], from start: Int) -> Int? {
        var i = start + 1
        if i < p.count, p[i] == "^" { i += 1 }
        if i < p.count, p[i] == "]" { return nil }
        var nesting = 1
        while i < p.count {
            switch p[i] {
            case "\\": i += 1
            case "[": nesting += 1
            case "]":
                nesting -= 1
                if nesting == 0 { return i }
            default: break
            }
            i += 1
        }
        return nil
    }
}
