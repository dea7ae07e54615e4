/// Calls, control flow and variables of a unit's subtree(s) (reference §1.4). Only named nodes count,
/// so a keyword token never doubles its statement.
struct Analysis {
    private(set) var calls: [String] = []
    private(set) var variables: [String] = []
    private(set) var complexity = 1
    private(set) var hasLoops = false
    private(set) var hasBranches = false
    private(set) var hasErrorHandling = false

    init(tree: SyntaxTree, rules: CompiledRules, ranges: [Range<Int32>]) {
        var callSet = Set<String>()
        var variableSet = Set<String>()
        for range in ranges {
            for i in range {
                let n = Int(i)
                let kind = tree.kind[n]
                if rules.errorHandling.contains(kind) && (tree.named[n] || tree.kindName(i) == "?") { hasErrorHandling = true }
                guard tree.named[n] else { continue }
                if rules.branches.contains(kind) {
                    hasBranches = true
                    complexity += 1
                } else if rules.loops.contains(kind) {
                    hasLoops = true
                    complexity += 1
                }
                if rules.calls.contains(kind), let callee = Self.callee(tree, rules, i), !Self.isDefinitionSyntax(tree, rules, i, callee) {
                    callSet.insert(callee)
                }
                if rules.variables.contains(kind) {
                    for v in Self.assignedNames(tree, rules, i) { variableSet.insert(v) }
                }
            }
        }
        calls = callSet.sorted()
        variables = variableSet.sorted()
    }

    /// Call-shaped syntax that is not a call: definition heads (`def`, `defmodule`), the defined
    /// name in `def hello(x)`, and module attributes (`@doc "…"`).
    static func isDefinitionSyntax(_ tree: SyntaxTree, _ rules: CompiledRules, _ n: Int32, _ callee: String) -> Bool {
        guard !rules.headKinds.isEmpty else { return false }
        if rules.rules.headFunctions.contains(callee) || rules.rules.headClasses.contains(callee) { return true }
        var p = tree.parent[Int(n)]
        if p >= 0 && tree.text(p).hasPrefix("@") { return true }
        // `def hello(x)`: the call sits in the `arguments` of a definer call.
        guard p >= 0, tree.kindName(p) == "arguments" || tree.kindName(p) == "list_lit" || tree.kindName(p) == "list" else { return false }
        if !rules.calls.contains(tree.kind[Int(p)]) { p = tree.parent[Int(p)] }
        if p >= 0, rules.calls.contains(tree.kind[Int(p)]), let head = Analysis.callee(tree, rules, p),
           rules.rules.headFunctions.contains(head) || rules.rules.headClasses.contains(head) {
            return true
        }
        return false
    }

    /// The called name: callee text cut to its last `.` / `::` / `->` segment, `!` stripped, starting with a letter.
    static func callee(_ tree: SyntaxTree, _ rules: CompiledRules, _ n: Int32) -> String? {
        let f = rules.f
        var target: Int32?
        for field in [f.function, f.method, f.macro, f.constructor, f.name, f.target, f.type] where field != 0 {
            if let c = tree.child(n, field: field) { target = c; break }
        }
        if target == nil { target = tree.children(n, namedOnly: true).first }
        guard let t = target else { return nil }
        if let answer = normalizeASCIICallee(tree.source, from: Int(tree.startByte[Int(t)]), to: Int(tree.endByte[Int(t)])) {
            return answer
        }
        return normalizeCallee(tree.text(t))
    }

    /// `normalizeCallee` over the source bytes, without making a string of the whole callee text (a chained
    /// call's callee spans its whole chain, lambdas included). Answers only where the bytes up to the cut
    /// are ASCII without `\r` and the cut is not followed by a non-ASCII byte — there every character is one
    /// byte, so the answer (`.some(nil)`: no callee) is `normalizeCallee`'s; elsewhere it returns nil and the
    /// caller asks that.
    static func normalizeASCIICallee(_ source: [UInt8], from start: Int, to end: Int) -> String?? {
        source.withUnsafeBufferPointer { bytes -> String?? in
            var cut = end
            var i = start
            while i < end {
                let b = bytes[i]
                if b >= 0x80 || b == 13 { return nil }
                // `(`, `<`, `{`, `[`, newline, space, tab.
                if b == 40 || b == 60 || b == 123 || b == 91 || b == 10 || b == 32 || b == 9 {
                    if i + 1 < bytes.count && bytes[i + 1] >= 0x80 { return nil }
                    cut = i
                    break
                }
                i += 1
            }
            // Last segment after `.`, `:` or `>`.
            var first = start
            var j = cut
            while j > start {
                let b = bytes[j - 1]
                if b == 46 || b == 58 || b == 62 { first = j; break }
                j -= 1
            }
            var last = cut
            while last > first && (bytes[last - 1] == 33 || bytes[last - 1] == 63) { last -= 1 }
            guard last > first else { return .some(nil) }
            let head = bytes[first] | 0x20
            guard head >= 97 && head <= 122 else { return .some(nil) }
            return .some(String(decoding: UnsafeBufferPointer(rebasing: bytes[first..<last]), as: UTF8.self))
        }
    }

    static func normalizeCallee(_ raw: String) -> String? {
        var s = Substring(raw)
        if let cut = s.firstIndex(where: { "(<{[\n \t".contains($0) }) { s = s[..<cut] }
        // Last segment after `.`, `::`, `->` or `:`.
        if let sep = s.lastIndex(where: { $0 == "." || $0 == ":" || $0 == ">" }) { s = s[s.index(after: sep)...] }
        while let last = s.last, last == "!" || last == "?" { s = s.dropLast() }
        guard let first = s.first, first.isLetter else { return nil }
        return String(s)
    }

    /// Names on the left of an assignment / declaration, each < 50 chars and starting with a letter or `_`.
    static func assignedNames(_ tree: SyntaxTree, _ rules: CompiledRules, _ n: Int32) -> [String] {
        let f = rules.f
        var left: Int32?
        for field in [f.left, f.pattern, f.name, f.lhs] where field != 0 {
            if let c = tree.child(n, field: field) { left = c; break }
        }
        if left == nil, let d = tree.child(n, field: f.declarator) {
            var current = d
            var steps = 0
            while let next = tree.child(current, field: f.declarator), steps < 8 { current = next; steps += 1 }
            left = current
        }
        // Declarations whose declarators carry the names are counted through the declarators themselves.
        if left == nil {
            let kindName = tree.kindName(n)
            if kindName == "local_variable_declaration" || kindName == "lexical_declaration" { return [] }
            let named = tree.children(n, namedOnly: true).filter { !tree.kindName($0).containsText("modifier") }
            left = named.first { rules.identifiers.contains(tree.kind[Int($0)]) || tree.kindName($0).containsText("variable") || tree.kindName($0).containsText("pattern") }
                ?? named.first
        }
        guard let l = left else { return [] }
        return tree.text(l).split(separator: ",").compactMap { part in
            let v = part.trimmingWhitespace()
            guard v.count < 50, let first = v.first, first.isLetter || first == "_" else { return nil }
            return v
        }
    }
}

/// File-level imports reduced to one module token each, and the per-unit filter (reference §1.4).
struct ImportCollector {
    let tree: SyntaxTree
    let rules: CompiledRules

    func collect() -> [String] {
        var seen = Set<String>()
        var result: [String] = []
        let importCalls = Set(rules.rules.importCalls)
        for i in 0..<Int32(tree.count) where tree.named[Int(i)] {
            let kind = tree.kind[Int(i)]
            var sources: [Int32] = []
            if rules.imports.contains(kind) {
                sources = importSources(i)
            } else if !importCalls.isEmpty && rules.calls.contains(kind), let callee = Analysis.callee(tree, rules, i),
                      importCalls.contains(callee) || importCalls.contains("@" + callee) {
                if let args = tree.child(i, field: rules.f.arguments) ?? tree.children(i, namedOnly: true).last,
                   let first = tree.children(args, namedOnly: true).first ?? Optional(args) {
                    sources = [first]
                }
            } else if !importCalls.isEmpty, tree.kindName(i) == "builtin_function",
                      let head = tree.children(i, namedOnly: true).first, importCalls.contains(tree.text(head)),
                      let args = tree.children(i, namedOnly: true).dropFirst().first {
                sources = [args]
            }
            for s in sources {
                if let token = moduleToken(tree.text(s)), seen.insert(token).inserted { result.append(token) }
            }
        }
        return result
    }

    private func importSources(_ n: Int32) -> [Int32] {
        let f = rules.f
        for field in [f.moduleName, f.source, f.path, f.module] where field != 0 {
            if let c = tree.child(n, field: field) { return [c] }
        }
        let names = tree.childrenWith(n, field: f.name)
        if !names.isEmpty { return names }
        if let a = tree.child(n, field: f.argument) { return [a] }
        return tree.children(n, namedOnly: true).first.map { [$0] } ?? []
    }

    /// `"net/http"` → `http` (Go: last path component), `std::collections::HashMap` → `std`,
    /// `java.util.List` → `List` (last-segment languages), `<stdio.h>` → `stdio`, `"./utils/x"` → `utils`.
    func moduleToken(_ raw: String) -> String? {
        var s = raw.trimmingWhitespace()
        s = String(s.drop(while: { "\"'`<(@ ".contains($0) }))
        while let last = s.last, "\"'`>); ".contains(last) { s.removeLast() }
        for prefix in ["./", "../", "~/", "static ", "import "] { while s.hasPrefix(prefix) { s.removeFirst(prefix.count) } }
        if s.isEmpty { return nil }
        if rules.grammar.name == "go" {
            return s.split(separator: "/").last.map(String.init)
        }
        if rules.grammar.name == "c" || rules.grammar.name == "cpp" || rules.grammar.name == "objc" {
            if let dot = s.lastIndex(of: "."), !s[dot...].contains("/") { s = String(s[..<dot]) }
        }
        let separators: Set<Character> = [".", ":", "/", "\\", " ", ","]
        let segments = s.split(whereSeparator: { separators.contains($0) }).filter { !$0.isEmpty && $0 != "*" && $0 != "{" }
        let segment = rules.rules.importToken == .last ? segments.last : segments.first
        guard let token = segment?.trimmingWhitespace(), let first = token.first, first.isLetter || first == "_" else { return nil }
        return token
    }

    /// A function or class keeps the file imports used in its body: a module reached through attribute
    /// access (`json` in `json.loads`, case-insensitive) or one that matches one of its calls.
    static func filter(_ imports: [String], code: String, calls: [String]) -> [String] {
        guard !imports.isEmpty else { return [] }
        let lowered = imports.map { $0.lowercased() }
        let loweredBytes = lowered.map { Array($0.utf8) }
        var accessed = [Bool](repeating: false, count: imports.count)
        var unseen = imports.count
        // Identifiers followed by `.`, `:` or `->`, scanned over UTF-8 bytes and compared with the lowered
        // imports where they lie: a string per identifier, lowered and hashed into a set, was most of this
        // function's time, and this function ~13 % of parsing on the 64-core machine (perf, session 18).
        // An identifier with non-ASCII bytes is lowered as a string, as before.
        func mark(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, ascii: Bool) {
            if ascii {
                let length = end - start
                for k in loweredBytes.indices where !accessed[k] && loweredBytes[k].count == length {
                    var j = 0
                    while j < length {
                        var b = bytes[start + j]
                        if b >= 65 && b <= 90 { b += 32 }
                        if b != loweredBytes[k][j] { break }
                        j += 1
                    }
                    if j == length { accessed[k] = true; unseen -= 1 }
                }
            } else {
                let identifier = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self).lowercased()
                for k in lowered.indices where !accessed[k] && lowered[k] == identifier { accessed[k] = true; unseen -= 1 }
            }
        }
        var text = code
        text.withUTF8 { bytes in
            var start = -1
            var ascii = true
            for i in 0...bytes.count {
                if unseen == 0 { break }
                let b: UInt8 = i < bytes.count ? bytes[i] : 0
                let isIdentifier = (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95 || b >= 128
                if isIdentifier {
                    if start < 0 { start = i; ascii = true }
                    if b >= 128 { ascii = false }
                    continue
                }
                if start >= 0 {
                    let follows = b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
                        || (b == UInt8(ascii: "-") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: ">"))
                    if follows { mark(bytes, start, i, ascii: ascii) }
                    start = -1
                }
            }
        }
        let loweredCalls = unseen > 0 ? calls.map { $0.lowercased() } : []
        return imports.indices.filter { k in
            if accessed[k] { return true }
            let l = lowered[k]
            return loweredCalls.contains { contains($0, l) || (l.count >= 3 && $0.count >= 3 && contains(l, $0)) }
        }.map { imports[$0] }
    }

    /// Whether `text` contains `part`: the byte search `containsText` when both are ASCII (identifiers nearly
    /// always are), else Foundation's `contains`, whose answer it then is. Foundation's search took ~10 % of
    /// parsing a Python project (perf, session 15): it goes through NSString on Linux for every import and call pair.
    static func contains(_ text: String, _ part: String) -> Bool {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) && part.utf8.allSatisfy({ $0 < 0x80 }) else { return text.contains(part) }
        return text.containsText(part)
    }
}

/// Docstring extraction from the lines above a definition.
enum DocText {
    static func stripQuotes(_ raw: String) -> String? {
        var s = Substring(raw.trimmingWhitespace())
        while let f = s.first, "rRuUbBfF".contains(f), s.count > 1, s.dropFirst().first.map({ "\"'".contains($0) || "rRbB".contains($0) }) == true {
            s = s.dropFirst()
        }
        for q in ["\"\"\"", "'''", "\"", "'"] where s.hasPrefix(q) && s.hasSuffix(q) && s.count >= 2 * q.count {
            s = s.dropFirst(q.count).dropLast(q.count)
            break
        }
        let text = s.trimmingWhitespace()
        return text.isEmpty ? nil : text
    }

    /// Index of the first non-blank, non-attribute row above `row`, or nil.
    private static func rowAbove(_ lines: SourceLines, _ row: Int, skipping prefixes: [String], skipBlank: Bool) -> Int? {
        var r = row - 1
        while r >= 0 {
            let t = lines.trimmed(r)
            if t.isEmpty {
                if !skipBlank { return nil }
                r -= 1
                continue
            }
            if prefixes.contains(where: { $0 == "@" || $0 == "#[" || $0 == "#![" || $0 == "[" }) &&
                (t.hasPrefix("@") || t.hasPrefix("#[") || t.hasPrefix("#![") || (t.hasPrefix("[") && t.hasSuffix("]"))) &&
                prefixes.contains(where: { t.hasPrefix($0) }) {
                r -= 1
                continue
            }
            return r
        }
        return nil
    }

    static func lineComments(_ lines: SourceLines, above row: Int, markers: [String], skipping prefixes: [String]) -> String? {
        guard var r = rowAbove(lines, row, skipping: prefixes, skipBlank: false) else { return nil }
        var collected: [String] = []
        while r >= 0 {
            let t = lines.trimmed(r)
            guard let marker = markers.first(where: { t.hasPrefix($0) }) else { break }
            if t.hasPrefix("//!") { break }
            var body = Substring(t.dropFirst(marker.count))
            if marker == "//" || marker == "#" { while body.first == "/" || body.first == "#" { body = body.dropFirst() } }
            collected.append(stripXMLTags(body.trimmingWhitespace()))
            r -= 1
        }
        let text = collected.reversed().filter { !$0.isEmpty }.joined(separator: " ")
        return text.isEmpty ? nil : text
    }

    /// C# `/// <summary>…</summary>`: the text without its XML tags.
    static func stripXMLTags(_ s: String) -> String {
        guard s.contains("<") && s.contains(">") else { return s }
        var out = ""
        var inTag = false
        for ch in s {
            if ch == "<" { inTag = true } else if ch == ">" { inTag = false } else if !inTag { out.append(ch) }
        }
        return out.trimmingWhitespace()
    }

    static func blockComment(_ lines: SourceLines, above row: Int, skipping prefixes: [String]) -> String? {
        guard let r = rowAbove(lines, row, skipping: prefixes, skipBlank: false) else { return nil }
        let t = lines.trimmed(r)
        if t.hasPrefix("///") {
            return lineComments(lines, above: r + 1, markers: ["///"], skipping: [])
        }
        guard t.hasSuffix("*/") else { return nil }
        return delimited(lines, above: row, open: "/*", close: "*/", endRow: r)
    }

    static func delimited(_ lines: SourceLines, above row: Int, open: String, close: String, endRow: Int? = nil) -> String? {
        guard let end = endRow ?? rowAbove(lines, row, skipping: [], skipBlank: false), lines.trimmed(end).hasSuffix(close) else { return nil }
        var start = end
        while start >= 0 && !lines.trimmed(start).containsText(open) { start -= 1 }
        guard start >= 0 else { return nil }
        var parts: [String] = []
        for r in start...end {
            var t = Substring(lines.trimmed(r))
            if r == start, let o = t.utf8Offset(of: open) { t = Substring(t.utf8.dropFirst(o + open.utf8.count)) }
            if r == end, let c = t.utf8Offset(of: close, backwards: true) { t = Substring(t.utf8.prefix(c)) }
            while let f = t.first, f == "*" || f == "!" { t = t.dropFirst() }
            let cleaned = t.trimmingWhitespace()
            if !cleaned.isEmpty { parts.append(cleaned) }
        }
        let text = parts.joined(separator: " ")
        return text.isEmpty ? nil : text
    }

    static func elixirDoc(_ lines: SourceLines, above row: Int) -> String? {
        var r = row - 1
        while r >= 0 {
            let t = lines.trimmed(r)
            if t.hasPrefix("@doc ") { return stripQuotes(String(t.dropFirst(5))) }
            if t.hasPrefix("@spec") || t.hasPrefix("@impl") || t.isEmpty { r -= 1; continue }
            if t == "\"\"\"" {
                // Heredoc: find its opening `@doc """`.
                var s = r - 1
                var body: [String] = []
                while s >= 0 && !lines.trimmed(s).hasPrefix("@doc") { body.append(lines.trimmed(s)); s -= 1 }
                let text = body.reversed().filter { !$0.isEmpty }.joined(separator: " ")
                return s >= 0 && !text.isEmpty ? text : nil
            }
            return nil
        }
        return nil
    }

    static func stringAbove(_ lines: SourceLines, above row: Int) -> String? {
        let r = row - 1
        guard r >= 0 else { return nil }
        let t = lines.trimmed(r)
        if t.hasPrefix("\"\"\"") && t.hasSuffix("\"\"\"") && t.count >= 6 { return stripQuotes(t) }
        guard t.hasSuffix("\"\"\"") else { return nil }
        var s = r - 1
        var body: [String] = []
        while s >= 0 && !lines.trimmed(s).hasPrefix("\"\"\"") { body.append(lines.trimmed(s)); s -= 1 }
        let text = body.reversed().filter { !$0.isEmpty }.joined(separator: " ")
        return text.isEmpty ? nil : text
    }
}
