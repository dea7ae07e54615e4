import Foundation

/// Everything one `colgrep [QUERY] [PATH…]` invocation asks for, after flag parsing.
public struct SearchRequest: Sendable {
    public var query: String
    public var paths: [String]
    public var pattern: String?
    public var fixedStrings = false
    public var wordRegexp = false
    public var caseSensitive = false
    /// `-k` when given; nil means the default (15, 10 with `-n`, unbounded with `-e`).
    public var explicitK: Int?
    public var contextLines: Int?
    public var include: [String] = []
    public var exclude: [String] = []
    public var excludeDir: [String] = []
    public var codeOnly = false
    public var semanticOnly = false
    /// Keyword-only ranking (no model load): the FTS-only evaluation mode.
    public var keywordOnly = false
    public var alpha: Double?
    public var noUpdate = false
    public var model: String?
    public var noPool = false
    public var poolFactor: Int?
    public var yes = false

    public init(query: String, paths: [String]) {
        self.query = query
        self.paths = paths
    }

    /// `top_k`: `-k` > config `default_k` > 15 (10 with `-n`); with `-e` and no `-k`, unbounded.
    public func topK(config: ColGrepConfig) -> Int {
        if let explicitK { return max(1, explicitK) }
        if pattern != nil { return Int.max / 1024 }
        if let k = config.defaultK { return max(1, k) }
        return contextLines != nil ? 10 : 15
    }
}

/// The reference's positional-argument rules (§2.1).
public enum QueryArguments {
    /// Starts with `.`, `/`, `~` or contains a path separator.
    public static func looksLikePath(_ s: String) -> Bool {
        s.hasPrefix(".") || s.hasPrefix("/") || s.hasPrefix("~") || s.contains("/") || s.contains("\\")
    }

    /// Returns (query, pattern, paths): with `-e`, a path-like query moves to the paths; without
    /// `-e`, `colgrep A B` where B is no existing path and not path-like means `-e A` with query `B`.
    public static func resolve(query: String?, rest: [String], pattern: String?,
                               exists: (String) -> Bool) -> (query: String, pattern: String?, paths: [String]) {
        var q = query ?? ""
        var paths = rest
        var pat = pattern
        if let p = pat {
            if looksLikePath(q) {
                paths.insert(q, at: 0)
                q = ""
            }
            if q.isEmpty { q = p }
        } else if let first = paths.first, !exists(first), !looksLikePath(first) {
            pat = q
            q = first
            paths.removeFirst()
        }
        if paths.isEmpty { paths = ["."] }
        return (q, pat, paths)
    }
}
