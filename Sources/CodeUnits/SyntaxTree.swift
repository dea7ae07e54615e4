import CTreeSitter
import Foundation

/// A parsed file flattened into arrays (one walk with a tree cursor), so the extraction passes navigate
/// in Swift without C calls or recursion. Node 0 is the root.
struct SyntaxTree {
    var kind: [UInt16] = []
    var named: [Bool] = []
    var field: [UInt16] = []
    var parent: [Int32] = []
    var firstChild: [Int32] = []
    var nextSibling: [Int32] = []
    var startByte: [Int32] = []
    var endByte: [Int32] = []
    var startRow: [Int32] = []
    var endRow: [Int32] = []
    /// One past the last node of each node's subtree (nodes are stored in pre-order).
    var subtreeEnd: [Int32] = []
    let source: [UInt8]
    let grammar: Grammar

    enum BuildError: Error { case tooDeep(Int), parseFailed }

    /// Parses `source` with `parser` and flattens the tree; fails when nesting exceeds `maxDepth`.
    init(parser: OpaquePointer, grammar: Grammar, source: [UInt8], maxDepth: Int) throws {
        self.source = source
        self.grammar = grammar
        guard let tree = source.withUnsafeBufferPointer({ buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                ts_parser_parse_string(parser, nil, $0, UInt32(buffer.count))
            }
        }) else { throw BuildError.parseFailed }
        defer { ts_tree_delete(tree) }
        var cursor = ts_tree_cursor_new(ts_tree_root_node(tree))
        defer { ts_tree_cursor_delete(&cursor) }
        let estimate = source.count / 3 + 16
        kind.reserveCapacity(estimate)
        append(ts_tree_cursor_current_node(&cursor), parent: -1, field: 0)
        var current: Int32 = 0
        var depth = 0
        walk: while true {
            if ts_tree_cursor_goto_first_child(&cursor) {
                depth += 1
                if depth > maxDepth { throw BuildError.tooDeep(maxDepth) }
                let child = append(ts_tree_cursor_current_node(&cursor), parent: current, field: ts_tree_cursor_current_field_id(&cursor))
                firstChild[Int(current)] = child
                current = child
                continue
            }
            while !ts_tree_cursor_goto_next_sibling(&cursor) {
                guard ts_tree_cursor_goto_parent(&cursor) else { break walk }
                depth -= 1
                current = parent[Int(current)]
            }
            let sibling = append(ts_tree_cursor_current_node(&cursor), parent: parent[Int(current)], field: ts_tree_cursor_current_field_id(&cursor))
            nextSibling[Int(current)] = sibling
            current = sibling
        }
        subtreeEnd = (0..<Int32(kind.count)).map { $0 + 1 }
        for i in stride(from: kind.count - 1, to: 0, by: -1) {
            let p = Int(parent[i])
            if subtreeEnd[i] > subtreeEnd[p] { subtreeEnd[p] = subtreeEnd[i] }
        }
    }

    @discardableResult
    private mutating func append(_ node: TSNode, parent p: Int32, field f: UInt16) -> Int32 {
        let index = Int32(kind.count)
        kind.append(ts_node_symbol(node))
        named.append(ts_node_is_named(node))
        field.append(f)
        parent.append(p)
        firstChild.append(-1)
        nextSibling.append(-1)
        startByte.append(Int32(ts_node_start_byte(node)))
        endByte.append(Int32(ts_node_end_byte(node)))
        let start = ts_node_start_point(node), end = ts_node_end_point(node)
        startRow.append(Int32(start.row))
        // A node ending at column 0 ends with the previous line's newline: that line is its last.
        endRow.append(Int32(end.column == 0 && end.row > start.row ? end.row - 1 : end.row))
        return index
    }

    var count: Int { kind.count }

    /// The node's kind name; `ERROR` for error nodes (their symbol is outside the grammar's table).
    func kindName(_ n: Int32) -> String {
        let k = Int(kind[Int(n)])
        return k < grammar.symbolNames.count ? grammar.symbolNames[k] : "ERROR"
    }

    func text(_ n: Int32) -> String {
        String(decoding: source[Int(startByte[Int(n)])..<Int(endByte[Int(n)])], as: UTF8.self)
    }

    /// Children in order (all, or named only).
    func children(_ n: Int32, namedOnly: Bool = false) -> [Int32] {
        var result: [Int32] = []
        var c = firstChild[Int(n)]
        while c >= 0 {
            if !namedOnly || named[Int(c)] { result.append(c) }
            c = nextSibling[Int(c)]
        }
        return result
    }

    func child(_ n: Int32, field f: UInt16) -> Int32? {
        guard f != 0 else { return nil }
        var c = firstChild[Int(n)]
        while c >= 0 {
            if field[Int(c)] == f { return c }
            c = nextSibling[Int(c)]
        }
        return nil
    }

    func childrenWith(_ n: Int32, field f: UInt16) -> [Int32] {
        guard f != 0 else { return [] }
        return children(n).filter { field[Int($0)] == f }
    }

    /// The range of node indices in `n`'s subtree (pre-order makes it contiguous).
    func subtree(_ n: Int32) -> Range<Int32> { n..<subtreeEnd[Int(n)] }
}

/// One `TSParser` per thread and grammar, created on first use and reused for every later file.
final class ParserPool: @unchecked Sendable {
    private final class ThreadParsers {
        var parsers: [String: OpaquePointer] = [:]
        deinit { for p in parsers.values { ts_parser_delete(p) } }
    }

    private let key = "colgrep.CodeUnits.ParserPool.\(UUID().uuidString)"

    func parser(for grammar: Grammar) -> OpaquePointer? {
        let dictionary = Thread.current.threadDictionary
        let holder: ThreadParsers
        if let h = dictionary[key] as? ThreadParsers {
            holder = h
        } else {
            holder = ThreadParsers()
            dictionary[key] = holder
        }
        if let p = holder.parsers[grammar.name] { return p }
        guard let p = ts_parser_new() else { return nil }
        guard ts_parser_set_language(p, grammar.language) else {
            ts_parser_delete(p)
            return nil
        }
        holder.parsers[grammar.name] = p
        return p
    }
}
