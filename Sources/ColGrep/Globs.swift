import Foundation

/// Glob handling for `--include`, `--exclude` and `--exclude-dir` (reference §2.2 step 6):
/// brace expansion `{a,b}`, an implicit `**/` prefix unless the pattern starts with `**/` or `/`,
/// `*` and `?` stay within one path component, `**` crosses them.
public enum Globs {
    /// Expands `{a,b}` alternatives (nested braces included); a brace without a comma stays literal.
    public static func expandBraces(_ pattern: String) -> [String] {
        let chars = Array(pattern)
        var depth = 0
        var open: Int?
        for (i, c) in chars.enumerated() {
            if c == "{" {
                if depth == 0 { open = i }
                depth += 1
            } else if c == "}", depth > 0 {
                depth -= 1
                if depth == 0, let start = open {
                    let inner = Array(chars[(start + 1)..<i])
                    let alternatives = splitTopLevel(inner)
                    if alternatives.count < 2 { open = nil; continue }
                    let prefix = String(chars[..<start])
                    let suffix = String(chars[(i + 1)...])
                    return alternatives.flatMap { alt in expandBraces(prefix + alt + suffix) }
                }
            }
        }
        return [pattern]
    }

    private static func splitTopLevel(_ chars: [Character]) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for c in chars {
            if c == "{" { depth += 1 }
            if c == "}" { depth -= 1 }
            if c == ",", depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }

    /// Regex source (anchored) matching a relative path against one glob.
    public static func regexSource(forGlob glob: String, implicitAnyDirectory: Bool = true) -> String {
        var pattern = glob
        if pattern.hasPrefix("/") {
            pattern.removeFirst()
        } else if pattern.hasPrefix("./") {
            pattern.removeFirst(2)
        } else if implicitAnyDirectory && !pattern.hasPrefix("**/") && pattern != "**" {
            pattern = "**/" + pattern
        }
        var out = "^"
        let chars = Array(pattern)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "*":
                if i + 1 < chars.count, chars[i + 1] == "*" {
                    if i + 2 < chars.count, chars[i + 2] == "/" {
                        out += "(?:.*/)?"
                        i += 3
                    } else {
                        out += ".*"
                        i += 2
                    }
                    continue
                }
                out += "[^/]*"
            case "?":
                out += "[^/]"
            case "[":
                if let close = chars[(i + 1)...].firstIndex(of: "]"), close > i + 1 {
                    var body = String(chars[(i + 1)..<close])
                    if body.hasPrefix("!") { body = "^" + body.dropFirst() }
                    out += "[" + body.replacingOccurrences(of: "\\", with: "\\\\") + "]"
                    i = close + 1
                    continue
                }
                out += "\\["
            default:
                out += NSRegularExpression.escapedPattern(for: String(c))
            }
            i += 1
        }
        return out + "$"
    }

    /// Regex source for an `--exclude-dir` value: a literal name matches that component anywhere;
    /// `**/x`, `*/x`, `/x` and other globs match a directory prefix of the path.
    public static func excludeDirRegexSource(_ dir: String) -> String {
        var d = dir
        while d.hasSuffix("/") && d.count > 1 { d.removeLast() }
        let isGlob = d.contains("*") || d.contains("?") || d.contains("[")
        if !isGlob && !d.hasPrefix("/") {
            return "(^|/)" + NSRegularExpression.escapedPattern(for: d) + "/"
        }
        var body = regexSource(forGlob: d, implicitAnyDirectory: true)
        body.removeLast() // "$": a directory matches when the path continues below it
        return body + "/"
    }
}

/// Compiled path filters of one search: a path passes if it matches any include (when given),
/// no exclude and no excluded directory.
public struct PathFilter {
    private let includes: [NSRegularExpression]
    private let excludes: [NSRegularExpression]
    private let excludedDirs: [NSRegularExpression]

    public init(include: [String], exclude: [String], excludeDir: [String]) throws {
        func compile(_ source: String, _ what: String) throws -> NSRegularExpression {
            do { return try NSRegularExpression(pattern: source) } catch {
                throw ColGrepError.usage("invalid \(what) pattern: \(source)")
            }
        }
        includes = try include.flatMap(Globs.expandBraces).map { try compile(Globs.regexSource(forGlob: $0), "--include") }
        excludes = try exclude.flatMap(Globs.expandBraces).map { try compile(Globs.regexSource(forGlob: $0), "--exclude") }
        excludedDirs = try excludeDir.flatMap(Globs.expandBraces).map { try compile(Globs.excludeDirRegexSource($0), "--exclude-dir") }
    }

    /// True when no filter is set.
    public var isEmpty: Bool { includes.isEmpty && excludes.isEmpty && excludedDirs.isEmpty }

    public func accepts(_ path: String) -> Bool {
        let range = NSRange(path.startIndex..., in: path)
        func hit(_ r: NSRegularExpression) -> Bool { r.firstMatch(in: path, range: range) != nil }
        if !includes.isEmpty && !includes.contains(where: hit) { return false }
        if excludes.contains(where: hit) { return false }
        if excludedDirs.contains(where: hit) { return false }
        return true
    }
}
