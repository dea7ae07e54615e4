/// Builds the function / method / class / constant units of one parsed file (reference §1.4): a
/// pre-order walk with an explicit stack (no recursion, so deep trees cannot overflow a worker's stack).
struct UnitBuilder {
    let tree: SyntaxTree
    let rules: CompiledRules
    let lines: SourceLines
    let file: String
    let language: String
    let fileImports: [String]

    private var units: [CodeUnit] = []

    init(tree: SyntaxTree, rules: CompiledRules, lines: SourceLines, file: String, language: String) {
        self.tree = tree
        self.rules = rules
        self.lines = lines
        self.file = file
        self.language = language
        self.fileImports = ImportCollector(tree: tree, rules: rules).collect()
    }

    private struct Frame {
        let node: Int32
        let parentClass: String?
        let insideDefinition: Bool
    }

    mutating func build() -> [CodeUnit] {
        walk([Frame(node: 0, parentClass: nil, insideDefinition: false)])
        return units
    }

    /// Pre-order walk from `initial` (a stack: last element first), appending units.
    private mutating func walk(_ initial: [Frame]) {
        var stack = initial
        while let frame = stack.popLast() {
            let n = frame.node
            if !tree.named[Int(n)] { continue }
            let kind = tree.kind[Int(n)]
            var childContext: (parentClass: String?, inside: Bool)? = (frame.parentClass, frame.insideDefinition)
            if rules.headKinds.contains(kind), let head = headDefinition(n) {
                if head.isClass {
                    addClass(n, name: head.name, parentClass: frame.parentClass)
                    childContext = (head.name, true)
                } else {
                    addFunction(n, name: head.name, parentClass: frame.parentClass)
                    childContext = (frame.parentClass, true)
                }
            } else if rules.functions.contains(kind) {
                if !isWrappedDefinition(n), let name = definitionName(n) { addFunction(n, name: name, parentClass: frame.parentClass) }
                childContext = (frame.parentClass, true)
            } else if rules.implContainers.contains(kind) {
                let type = tree.child(n, field: rules.f.type).map { baseTypeName(tree.text($0)) }
                childContext = (type ?? frame.parentClass, true)
            } else if rules.classes.contains(kind) {
                if let name = definitionName(n) {
                    let recurse = addClass(n, name: name, parentClass: frame.parentClass)
                    childContext = recurse ? (name, true) : nil
                }
            } else if rules.constants.contains(kind) && !frame.insideDefinition && frame.parentClass == nil {
                addConstant(n)
                childContext = nil
            }
            guard let context = childContext else { continue }
            stack.append(contentsOf: childFrames(n, parentClass: context.parentClass, inside: context.inside))
        }
    }

    /// Frames for `n`'s named children, reversed so the stack pops them in source order.
    private func childFrames(_ n: Int32, parentClass: String?, inside: Bool) -> [Frame] {
        tree.children(n, namedOnly: true).reversed().map { Frame(node: $0, parentClass: parentClass, insideDefinition: inside) }
    }

    // MARK: - units

    private mutating func addFunction(_ n: Int32, name: String, parentClass: String?, start: Int32? = nil, spanNode: Int32? = nil) {
        var type: UnitType = .function
        var parent = parentClass
        if parent == nil, let receiver = goReceiverType(n) { parent = receiver }
        if parent == nil, let scope = qualifiedScope(n) { parent = scope }
        if parent != nil { type = .method }
        var analysed = [tree.subtree(n)]
        var endRow = tree.endRow[Int(spanNode ?? n)]
        if let span = spanNode { analysed.append(tree.subtree(span)) }
        if !rules.siblingBodies.isEmpty, let next = nextNamedSibling(n), rules.siblingBodies.contains(tree.kind[Int(next)]) {
            analysed.append(tree.subtree(next))
            endRow = max(endRow, tree.endRow[Int(next)])
        }
        let startRow = start ?? tree.startRow[Int(n)]
        var unit = makeUnit(name: name, type: type, parentClass: parent, node: n, startRow: startRow, endRow: endRow, analysed: analysed)
        unit.parameters = parameters(of: n)
        if rules.rules.reportsReturnType { unit.returnType = returnType(of: n) }
        units.append(unit)
    }

    /// Adds a class unit; returns whether its body should be walked for methods.
    @discardableResult
    private mutating func addClass(_ n: Int32, name: String, parentClass: String?, start: Int32? = nil) -> Bool {
        let startRow = start ?? tree.startRow[Int(n)]
        var unit = makeUnit(name: name, type: .class, parentClass: parentClass, node: n, startRow: startRow,
                            endRow: tree.endRow[Int(n)], analysed: [tree.subtree(n)])
        unit.extends = extends(of: n)
        unit.parameters = typeParameters(of: n)
        units.append(unit)
        if isAbstract(n) { return false }
        let range = tree.subtree(n)
        for d in range.dropFirst() where rules.functions.contains(tree.kind[Int(d)]) || rules.headKinds.contains(tree.kind[Int(d)]) {
            if rules.headKinds.contains(tree.kind[Int(d)]) && headDefinition(d)?.isClass != false { continue }
            return true
        }
        return false
    }

    private mutating func addConstant(_ n: Int32) {
        if !rules.rules.constantOperators.isEmpty {
            let ops = Set(rules.rules.constantOperators)
            guard tree.children(n).contains(where: { !tree.named[Int($0)] && ops.contains(tree.text($0)) }) else { return }
        }
        let name: String
        if rules.rules.upperCaseConstantsOnly {
            guard let assignment = tree.children(n, namedOnly: true).first(where: { rules.assignments.contains(tree.kind[Int($0)]) }),
                  let left = tree.child(assignment, field: rules.f.left),
                  rules.identifiers.contains(tree.kind[Int(left)]), isUpperCaseName(tree.text(left)) else { return }
            name = tree.text(left)
        } else {
            guard let found = bindingName(n) else { return }
            name = found
        }
        // A binding whose value is a function or class (JS `const f = () => …`, Zig `const P = struct {…}`,
        // R `f <- function(…)`) becomes that unit, spanning the whole declaration.
        let range = tree.subtree(n)
        for d in nodes(below: n, maxDepth: 3) {
            let kind = tree.kind[Int(d)]
            if rules.functions.contains(kind) {
                addFunctionFromBinding(value: d, declaration: n, name: name)
                return
            }
            if rules.classes.contains(kind) && definitionNameIfOwn(d) == nil {
                if addClass(d, name: name, parentClass: nil, start: tree.startRow[Int(n)]) {
                    walk(childFrames(d, parentClass: name, inside: true))
                }
                return
            }
        }
        var unit = makeUnit(name: name, type: .constant, parentClass: nil, node: n, startRow: tree.startRow[Int(n)],
                            endRow: tree.endRow[Int(n)], analysed: [range])
        unit.imports = fileImports
        if let typeNode = rules.f.type != 0 ? firstDescendant(n, field: rules.f.type, maxDepth: 2) : nil {
            unit.returnType = tree.text(typeNode).trimmingWhitespace()
        }
        units.append(unit)
    }

    private mutating func addFunctionFromBinding(value: Int32, declaration: Int32, name: String) {
        addFunction(value, name: name, parentClass: nil, start: tree.startRow[Int(declaration)], spanNode: declaration)
        // The function body may hold nested definitions of its own.
        walk(childFrames(value, parentClass: nil, inside: true))
    }

    private func makeUnit(name: String, type: UnitType, parentClass: String?, node: Int32, startRow: Int32, endRow: Int32,
                          analysed: [Range<Int32>]) -> CodeUnit {
        let start = movedUpOverAttributes(Int(startRow))
        let signatureRow = signatureRow(node)
        let analysis = Analysis(tree: tree, rules: rules, ranges: analysed)
        let code = lines.code(start, Int(endRow))
        let qualified = parentClass.map { "\(file)::\($0)::\(name)" } ?? "\(file)::\(name)"
        var unit = CodeUnit(
            name: name, qualifiedName: qualified, file: file, line: start + 1, endLine: Int(endRow) + 1,
            language: language, unitType: type, signature: lines.trimmed(signatureRow),
            docstring: docstring(node), parentClass: parentClass, calls: analysis.calls,
            complexity: analysis.complexity, hasLoops: analysis.hasLoops, hasBranches: analysis.hasBranches,
            hasErrorHandling: analysis.hasErrorHandling, variables: analysis.variables, code: code)
        if type != .constant {
            unit.imports = ImportCollector.filter(fileImports, code: code, calls: analysis.calls)
        }
        return unit
    }

    // MARK: - names

    /// The name a definition node gives itself (field `name`, C declarators, Go type specs, …) or, when it
    /// has none, the name of the binding that holds it (JS `const f = …`, R `f <- function`).
    private func definitionName(_ n: Int32) -> String? {
        if rules.rules.nameFromFirstLine {
            // `.button {` → `.button`; `\section{Intro}` keeps its braces.
            let first = lines.trimmed(Int(tree.startRow[Int(n)]))
            var head = first
            if let brace = first.utf8Offset(of: " {") {
                head = String(first.utf8.prefix(brace))!.trimmingWhitespace()
            } else if first.hasSuffix("{") {
                head = first.dropLast().trimmingWhitespace()
            }
            return head.isEmpty ? nil : String(head.prefix(120))
        }
        if let own = definitionNameIfOwn(n) { return own }
        if rules.rules.requireNameField { return nil }
        if let p = parentNode(n), let name = bindingName(p, excluding: n) { return name }
        return nil
    }

    private func definitionNameIfOwn(_ n: Int32) -> String? {
        if let nameNode = tree.child(n, field: rules.f.name) {
            return cleanName(leafName(nameNode))
        }
        if rules.rules.requireNameField { return nil }
        // A wrapper around another definition (Dart `method_signature` → `function_signature`).
        if let first = tree.children(n, namedOnly: true).first, rules.functions.contains(tree.kind[Int(first)]),
           tree.startByte[Int(first)] == tree.startByte[Int(n)] || tree.startRow[Int(first)] == tree.startRow[Int(n)] {
            return definitionNameIfOwn(first)
        }
        if let declarator = tree.child(n, field: rules.f.declarator) {
            return cleanName(declaratorName(declarator).name)
        }
        for c in tree.children(n, namedOnly: true) where rules.typeSpecs.contains(tree.kind[Int(c)]) {
            if let nameNode = tree.child(c, field: rules.f.name) { return cleanName(tree.text(nameNode)) }
        }
        // Fallback: the first identifier on the definition's first line, outside parameter lists.
        let firstRow = tree.startRow[Int(n)]
        var queue = tree.children(n, namedOnly: true)
        var index = 0
        while index < queue.count && index < 64 {
            let c = queue[index]
            index += 1
            if tree.startRow[Int(c)] != firstRow { continue }
            let kind = tree.kind[Int(c)]
            if rules.parameterLists.contains(kind) || rules.functions.contains(kind) { continue }
            if rules.identifiers.contains(kind) { return cleanName(leafName(c)) }
            queue.append(contentsOf: tree.children(c, namedOnly: true))
        }
        return nil
    }

    /// The name bound by a declaration / assignment node (`name`, `left`, `lhs`, `pattern`, declarators).
    private func bindingName(_ n: Int32, excluding: Int32? = nil) -> String? {
        for field in [rules.f.name, rules.f.left, rules.f.lhs, rules.f.pattern] {
            if let c = tree.child(n, field: field), c != excluding { return cleanName(leafName(c)) }
        }
        if let d = tree.child(n, field: rules.f.declarator), d != excluding { return cleanName(declaratorName(d).name) }
        // Declarations that wrap a declarator (`lexical_declaration` → `variable_declarator`, Go specs).
        var queue = tree.children(n, namedOnly: true)
        var index = 0
        while index < queue.count && index < 48 {
            let c = queue[index]
            index += 1
            if c == excluding { continue }
            let kind = tree.kind[Int(c)]
            if rules.identifiers.contains(kind) { return cleanName(leafName(c)) }
            for field in [rules.f.name, rules.f.left, rules.f.lhs, rules.f.pattern] {
                if let named = tree.child(c, field: field), named != excluding { return cleanName(leafName(named)) }
            }
            if let d = tree.child(c, field: rules.f.declarator) { return cleanName(declaratorName(d).name) }
            if rules.functions.contains(kind) || rules.classes.contains(kind) { continue }
            queue.append(contentsOf: tree.children(c, namedOnly: true))
        }
        return nil
    }

    /// Text of a name node, descending through compound names that carry their own `name` field.
    private func leafName(_ n: Int32) -> String {
        if !rules.identifiers.contains(tree.kind[Int(n)]) || tree.child(n, field: rules.f.scope) != nil,
           let inner = tree.child(n, field: rules.f.name) {
            return leafName(inner)
        }
        return tree.text(n)
    }

    /// Follows C/C++ declarator chains down to the declared name; `scope` is a qualified name's scope.
    private func declaratorName(_ n: Int32) -> (name: String, scope: String?) {
        var current = n
        var steps = 0
        while let next = tree.child(current, field: rules.f.declarator), steps < 16 {
            current = next
            steps += 1
        }
        if let nameNode = tree.child(current, field: rules.f.name) {
            let scope = tree.child(current, field: rules.f.scope).map { tree.text($0) }
            return (declaratorName(nameNode).name, scope)
        }
        return (tree.text(current), nil)
    }

    private func cleanName(_ raw: String) -> String? {
        var s = raw.trimmingWhitespace()
        if let newline = s.firstIndex(of: "\n") { s = String(s[..<newline]).trimmingWhitespace() }
        // `M.method` (Lua), `obj:method`: the defined name is the last segment.
        if !s.utf8.contains(UInt8(ascii: " ")), let sep = s.lastIndex(where: { $0 == "." || $0 == ":" }), s.index(after: sep) < s.endIndex {
            s = String(s[s.index(after: sep)...])
        }
        if s.count > 120 { s = String(s.prefix(120)) }
        return s.isEmpty ? nil : s
    }

    private func headDefinition(_ n: Int32) -> (name: String, isClass: Bool)? {
        let named = tree.children(n, namedOnly: true)
        let headNode = tree.child(n, field: rules.f.target) ?? named.first
        guard let head = headNode else { return nil }
        let headText = tree.text(head)
        let isFunction = rules.rules.headFunctions.contains(headText)
        let isClass = rules.rules.headClasses.contains(headText)
        guard isFunction || isClass else { return nil }
        guard let afterHead = named.first(where: { $0 != head }) else { return nil }
        var current = afterHead
        var steps = 0
        while !rules.identifiers.contains(tree.kind[Int(current)]), let first = tree.children(current, namedOnly: true).first, steps < 8 {
            current = first
            steps += 1
        }
        guard let name = cleanName(tree.text(current)) else { return nil }
        return (name, isClass)
    }

    // MARK: - fields

    private func goReceiverType(_ n: Int32) -> String? {
        guard rules.f.receiver != 0, let receiver = tree.child(n, field: rules.f.receiver) else { return nil }
        for p in tree.children(receiver, namedOnly: true) {
            if let t = tree.child(p, field: rules.f.type) { return baseTypeName(tree.text(t)) }
        }
        return nil
    }

    private func qualifiedScope(_ n: Int32) -> String? {
        guard let d = tree.child(n, field: rules.f.declarator) else { return nil }
        return declaratorName(d).scope
    }

    /// `*Cache` → `Cache`, `Point<T>` → `Point`.
    private func baseTypeName(_ text: String) -> String {
        var s = text.trimmingWhitespace()
        while s.hasPrefix("*") || s.hasPrefix("&") { s.removeFirst() }
        if let lt = s.firstIndex(of: "<") { s = String(s[..<lt]) }
        if let bracket = s.firstIndex(of: "[") { s = String(s[..<bracket]) }
        return s.trimmingWhitespace()
    }

    private func parameterList(_ n: Int32) -> Int32? {
        if let p = tree.child(n, field: rules.f.parameters) { return p }
        if let d = tree.child(n, field: rules.f.declarator) {
            var current = d
            var steps = 0
            while steps < 16 {
                if let p = tree.child(current, field: rules.f.parameters) { return p }
                guard let next = tree.child(current, field: rules.f.declarator) else { break }
                current = next
                steps += 1
            }
        }
        for c in tree.children(n, namedOnly: true) where rules.parameterLists.contains(tree.kind[Int(c)]) { return c }
        return nil
    }

    private static let skippedParameters: Set<String> = ["self", "this", "cls", "&self", "&mut self", "mut self", "_", "$this"]

    private func parameters(of n: Int32) -> [String] {
        var nodes: [Int32]
        if let list = parameterList(n) {
            nodes = tree.children(list, namedOnly: true)
        } else {
            // Swift and others put parameters straight under the function node.
            nodes = tree.children(n, namedOnly: true).filter { rules.parameterNodes.contains(tree.kind[Int($0)]) }
        }
        var names: [String] = []
        for p in nodes {
            let kind = tree.kind[Int(p)]
            if kind == 0 { continue }
            let kindName = tree.kindName(p)
            if kindName.containsText("comment") { continue }
            var found: [String] = []
            if rules.identifiers.contains(kind) {
                found = [tree.text(p)]
            } else
            if let nameFields = Optional(tree.childrenWith(p, field: rules.f.name)), !nameFields.isEmpty {
                // Several `name` fields are grouped names (Go `a, b int`); Swift also labels the type `name`.
                let identifiers = nameFields.filter { rules.identifiers.contains(tree.kind[Int($0)]) }
                found = (identifiers.isEmpty ? [nameFields[0]] : identifiers).map { tree.text($0) }
            } else if let c = tree.child(p, field: rules.f.pattern) ?? tree.child(p, field: rules.f.left) {
                found = [tree.text(c)]
            } else if let d = tree.child(p, field: rules.f.declarator) {
                found = [declaratorName(d).name]
            } else if let id = firstIdentifier(p) {
                found = [tree.text(id)]
            }
            for raw in found {
                var name = raw.trimmingWhitespace()
                while let first = name.first, "*&".contains(first) { name.removeFirst() }
                if name.isEmpty || name.count > 60 || Self.skippedParameters.contains(name) { continue }
                names.append(name)
            }
        }
        return names
    }

    private func typeParameters(of n: Int32) -> [String] {
        let list = tree.child(n, field: rules.f.typeParameters)
            ?? tree.children(n, namedOnly: true).first { rules.typeParameterLists.contains(tree.kind[Int($0)]) }
        guard let list else { return [] }
        return tree.children(list, namedOnly: true).compactMap { p in
            if rules.identifiers.contains(tree.kind[Int(p)]) { return tree.text(p) }
            return (tree.child(p, field: rules.f.name) ?? firstIdentifier(p)).map { tree.text($0) }
        }
    }

    private func returnType(of n: Int32) -> String? {
        for field in [rules.f.returnType, rules.f.result, rules.f.returns, rules.f.type] where field != 0 {
            if let t = tree.child(n, field: field) {
                var s = tree.text(t).trimmingWhitespace()
                if s.hasPrefix(":") { s = String(s.dropFirst()).trimmingWhitespace() }
                if s.hasPrefix("->") { s = String(s.dropFirst(2)).trimmingWhitespace() }
                return s.isEmpty ? nil : s
            }
        }
        return nil
    }

    private func extends(of n: Int32) -> String? {
        var candidate: Int32?
        for field in [rules.f.superclass, rules.f.superclasses] where field != 0 {
            if let c = tree.child(n, field: field) { candidate = c; break }
        }
        if candidate == nil {
            candidate = tree.children(n, namedOnly: true).first { rules.extendsKinds.contains(tree.kind[Int($0)]) }
        }
        guard var node = candidate else { return nil }
        // TS `class_heritage` holds `extends_clause` and `implements_clause`: prefer the extends part.
        if tree.kindName(node) == "class_heritage",
           let e = tree.children(node, namedOnly: true).first(where: { tree.kindName($0) == "extends_clause" }) {
            node = e
        }
        var s = tree.text(node).trimmingWhitespace()
        for prefix in ["extends", "<", ":", "("] where s.hasPrefix(prefix) {
            s = String(s.dropFirst(prefix.count)).trimmingWhitespace()
        }
        for keyword in ["public ", "private ", "protected ", "virtual "] where s.hasPrefix(keyword) {
            s = String(s.dropFirst(keyword.count)).trimmingWhitespace()
        }
        if s.hasSuffix(")") && !s.contains("(") { s = String(s.dropLast()) }
        if s.hasSuffix("()") { s = String(s.dropLast(2)) }
        s = s.trimmingWhitespace()
        return s.isEmpty ? nil : s
    }

    private func isAbstract(_ n: Int32) -> Bool {
        if rules.abstractClasses.contains(tree.kind[Int(n)]) { return true }
        guard !rules.abstractKeywordSymbols.isEmpty else { return false }
        var c = tree.firstChild[Int(n)]
        while c >= 0 {
            if rules.abstractKeywordSymbols.contains(tree.kind[Int(c)]) && !tree.named[Int(c)] { return true }
            // Swift/Kotlin put the keyword under a declaration-kind child on some grammar versions.
            if tree.named[Int(c)] && tree.endRow[Int(c)] == tree.startRow[Int(n)] && tree.firstChild[Int(c)] < 0
                && rules.abstractKeywordSymbols.contains(tree.kind[Int(c)]) { return true }
            c = tree.nextSibling[Int(c)]
        }
        return false
    }

    // MARK: - lines and docs

    private func movedUpOverAttributes(_ row: Int) -> Int {
        let prefixes = rules.rules.attributePrefixes
        guard !prefixes.isEmpty else { return row }
        var start = row
        var r = row - 1
        while r >= 0 {
            let t = lines.trimmed(r)
            if t.isEmpty { r -= 1; continue }
            if prefixes.contains(where: { t.hasPrefix($0) }) && !(t.hasPrefix("*") && t.hasSuffix(";")) {
                start = r
                r -= 1
            } else {
                break
            }
        }
        return start
    }

    /// The definition's first line, past attribute lines the node itself contains (Java annotations).
    private func signatureRow(_ n: Int32) -> Int {
        var row = Int(tree.startRow[Int(n)])
        let last = Int(tree.endRow[Int(n)])
        let prefixes = rules.rules.attributePrefixes.filter { $0 == "@" || $0 == "#[" || $0 == "[" }
        while row < last, prefixes.contains(where: { lines.trimmed(row).hasPrefix($0) }) { row += 1 }
        return row
    }

    private func docstring(_ n: Int32) -> String? {
        let nodeRow = Int(tree.startRow[Int(n)])
        switch rules.rules.doc {
        case .none:
            return nil
        case .bodyString:
            guard let body = tree.child(n, field: rules.f.body),
                  let first = tree.children(body, namedOnly: true).first,
                  rules.expressionStatements.contains(tree.kind[Int(first)]),
                  let string = tree.children(first, namedOnly: true).first,
                  rules.stringKinds.contains(tree.kind[Int(string)]) else { return nil }
            return DocText.stripQuotes(tree.text(string))
        case .lineComments(let markers):
            return DocText.lineComments(lines, above: nodeRow, markers: markers, skipping: rules.rules.attributePrefixes)
        case .blockComment:
            return DocText.blockComment(lines, above: nodeRow, skipping: rules.rules.attributePrefixes)
        case .ocamlComment:
            return DocText.delimited(lines, above: nodeRow, open: "(*", close: "*)")
        case .elixirAttribute:
            return DocText.elixirDoc(lines, above: nodeRow)
        case .stringAbove:
            return DocText.stringAbove(lines, above: nodeRow)
        }
    }

    // MARK: - tree helpers

    /// A definition directly wrapped by another of the same family, which already made the unit.
    private func isWrappedDefinition(_ n: Int32) -> Bool {
        guard let p = parentNode(n), rules.functions.contains(tree.kind[Int(p)]) else { return false }
        return tree.children(p, namedOnly: true).first == n && tree.startRow[Int(p)] == tree.startRow[Int(n)]
    }

    private func parentNode(_ n: Int32) -> Int32? {
        let p = tree.parent[Int(n)]
        return p >= 0 ? p : nil
    }

    private func nextNamedSibling(_ n: Int32) -> Int32? {
        var s = tree.nextSibling[Int(n)]
        while s >= 0 && !tree.named[Int(s)] { s = tree.nextSibling[Int(s)] }
        return s >= 0 ? s : nil
    }

    /// Named descendants of `n` down to `maxDepth` levels, breadth first.
    private func nodes(below n: Int32, maxDepth: Int) -> [Int32] {
        var result: [Int32] = []
        var level = [n]
        for _ in 0..<maxDepth {
            level = level.flatMap { tree.children($0, namedOnly: true) }
            if level.isEmpty { break }
            result.append(contentsOf: level)
        }
        return result
    }

    private func firstIdentifier(_ n: Int32) -> Int32? {
        for d in tree.subtree(n) where rules.identifiers.contains(tree.kind[Int(d)]) { return d }
        return nil
    }

    private func firstDescendant(_ n: Int32, field: UInt16, maxDepth: Int) -> Int32? {
        nodes(below: n, maxDepth: maxDepth).first { tree.field[Int($0)] == field }
    }

    private func isUpperCaseName(_ s: String) -> Bool {
        var hasLetter = false
        for ch in s.unicodeScalars {
            if ch.properties.isLowercase { return false }
            if ch.properties.isUppercase { hasLetter = true }
            else if !(ch == "_" || ("0"..."9").contains(ch)) { return false }
        }
        return hasLetter
    }
}
