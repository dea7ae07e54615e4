import Foundation

/// Errors raised when an extractor cannot be set up at all.
public enum UnitExtractorError: Error, CustomStringConvertible {
    case unreadableManifest(String)

    public var description: String {
        switch self {
        case .unreadableManifest(let path):
            return "\(path): grammar manifest missing or unreadable (run scripts/setup.sh or set COLGREP_GRAMMARS_DIR)"
        }
    }
}

/// Turns one file's bytes into code units: tree-sitter units (functions, methods, classes, constants)
/// plus raw-code gaps for source languages, one `document` unit for text formats. Grammars load lazily
/// from the bundle; a grammar that fails to load yields one warning and text units for that language.
/// Thread-safe; each thread reuses its own parsers.
public final class UnitExtractor: Sendable {
    public let maxRecursionDepth: Int
    public let maxFileSize: Int
    private let registry: GrammarRegistry
    private let parsers = ParserPool()
    private let state = ExtractorState()

    /// `grammarDirectory` holds `manifest.json` and the grammar libraries; nil means no grammars (every
    /// language falls back to text units, with one warning each). Throws when the directory is given but
    /// its manifest cannot be read.
    public init(grammarDirectory: URL?, maxRecursionDepth: Int = 1024, maxFileSize: Int = 512 * 1024) throws {
        if let grammarDirectory {
            let manifest = grammarDirectory.appendingPathComponent("manifest.json")
            guard FileManager.default.isReadableFile(atPath: manifest.path) else {
                throw UnitExtractorError.unreadableManifest(manifest.path)
            }
        }
        self.registry = GrammarRegistry(directory: grammarDirectory)
        self.maxRecursionDepth = maxRecursionDepth
        self.maxFileSize = maxFileSize
    }

    /// Grammar problems met so far, one line per grammar.
    public var warnings: [String] { state.allWarnings() }

    /// Reads `root/file` and extracts it; a file that vanished or cannot be read is a skip with its reason.
    public func extract(root: URL, relativePath: String) -> FileExtraction {
        let url = root.appendingPathComponent(relativePath)
        do {
            let data = try Data(contentsOf: url, options: .mappedIfSafe)
            return extract(relativePath: relativePath, data: data)
        } catch {
            let missing = !FileManager.default.fileExists(atPath: url.path)
            return FileExtraction(units: [], skipReason: missing ? "vanished before it was read" : "unreadable: \(error.localizedDescription)")
        }
    }

    public func extract(relativePath: String, data: Data) -> FileExtraction {
        if data.count > maxFileSize {
            return FileExtraction(units: [], skipReason: "larger than \(maxFileSize / 1024) KiB (\(data.count) bytes)")
        }
        if data.prefix(8192).contains(0) {
            return FileExtraction(units: [], skipReason: "binary file (NUL bytes)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            return FileExtraction(units: [], skipReason: "invalid UTF-8")
        }
        guard let language = Language.detect(path: relativePath) else {
            return FileExtraction(units: [], skipReason: "unknown language")
        }
        if language.isTextFormat {
            return FileExtraction(units: TextDocument.unit(file: relativePath, language: language.name, text: text).map { [$0] } ?? [])
        }
        let rules = LanguageRules.table[language.name] ?? LanguageRules()
        let grammarName = language.grammar ?? language.name
        let grammar: Grammar
        switch registry.grammar(grammarName) {
        case .success(let g):
            grammar = g
        case .failure(let error):
            let warning = "\(error.message); \(language.name) files are indexed as text"
            let fresh = state.warnOnce(grammarName, warning)
            return FileExtraction(units: TextDocument.unit(file: relativePath, language: language.name, text: text).map { [$0] } ?? [],
                                  warnings: fresh ? [warning] : [])
        }
        let bytes = Array(data)
        let lines = SourceLines(text)
        do {
            var units: [CodeUnit]
            var imports: [String]
            if let scriptGrammarName = rules.embeddedScriptGrammar {
                (units, imports) = try extractEmbedded(host: grammar, scriptGrammar: scriptGrammarName, bytes: bytes, lines: lines,
                                                       file: relativePath, language: language.name)
            } else {
                let compiledRules = compiled(rules, grammar: grammar, key: language.name)
                guard let parser = parsers.parser(for: grammar) else {
                    return FileExtraction(units: [], skipReason: "tree-sitter could not create a parser for \(grammar.name)")
                }
                let tree = try SyntaxTree(parser: parser, grammar: grammar, source: bytes, maxDepth: maxRecursionDepth)
                var builder = UnitBuilder(tree: tree, rules: compiledRules, lines: lines, file: relativePath, language: language.name)
                units = builder.build()
                imports = builder.fileImports
            }
            RawCodeGaps.fill(&units, lines: lines, file: relativePath, language: language.name, imports: imports)
            units.sort { ($0.line, -$0.endLine) < ($1.line, -$1.endLine) }
            return FileExtraction(units: units)
        } catch SyntaxTree.BuildError.tooDeep(let depth) {
            return FileExtraction(units: [], skipReason: "syntax tree nested deeper than \(depth) levels (raise --max-recursion-depth to index it)")
        } catch {
            return FileExtraction(units: [], skipReason: "tree-sitter failed to parse the file")
        }
    }

    /// Vue, Svelte, HTML, Astro: script blocks are parsed with the script grammar on a copy of the file
    /// where everything else is blanked (newlines kept), so rows and byte offsets stay the file's own.
    private func extractEmbedded(host: Grammar, scriptGrammar: String, bytes: [UInt8], lines: SourceLines, file: String,
                                 language: String) throws -> ([CodeUnit], [String]) {
        guard let hostParser = parsers.parser(for: host) else { return ([], []) }
        let hostTree = try SyntaxTree(parser: hostParser, grammar: host, source: bytes, maxDepth: maxRecursionDepth)
        let scriptKinds = host.symbols(["script_element", "frontmatter_js_block"])
        let rawText = host.symbols(["raw_text"])
        var ranges: [Range<Int>] = []
        for i in 0..<Int32(hostTree.count) where scriptKinds.contains(hostTree.kind[Int(i)]) {
            let inner = hostTree.children(i).filter { rawText.contains(hostTree.kind[Int($0)]) }
            let nodes = inner.isEmpty ? [i] : inner
            for n in nodes { ranges.append(Int(hostTree.startByte[Int(n)])..<Int(hostTree.endByte[Int(n)])) }
        }
        guard !ranges.isEmpty, case .success(let script) = registry.grammar(scriptGrammar),
              let scriptRules = LanguageRules.table[scriptGrammar], let parser = parsers.parser(for: script) else { return ([], []) }
        var masked = [UInt8](repeating: UInt8(ascii: " "), count: bytes.count)
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { masked[i] = b }
        for r in ranges { masked.replaceSubrange(r, with: bytes[r]) }
        let tree = try SyntaxTree(parser: parser, grammar: script, source: masked, maxDepth: maxRecursionDepth)
        var builder = UnitBuilder(tree: tree, rules: compiled(scriptRules, grammar: script, key: scriptGrammar), lines: lines,
                                  file: file, language: language)
        return (builder.build(), builder.fileImports)
    }

    private func compiled(_ rules: LanguageRules, grammar: Grammar, key: String) -> CompiledRules {
        state.compiled(key + "|" + grammar.name) { CompiledRules(rules: rules, grammar: grammar) }
    }
}

/// Shared mutable state of an extractor behind a lock: compiled rules and warnings already given.
private final class ExtractorState: @unchecked Sendable {
    private let lock = NSLock()
    private var rules: [String: CompiledRules] = [:]
    private var warned: [String: String] = [:]

    func compiled(_ key: String, make: () -> CompiledRules) -> CompiledRules {
        lock.lock()
        defer { lock.unlock() }
        if let r = rules[key] { return r }
        let r = make()
        rules[key] = r
        return r
    }

    /// Records a warning; true the first time for this grammar.
    func warnOnce(_ grammar: String, _ message: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if warned[grammar] != nil { return false }
        warned[grammar] = message
        return true
    }

    func allWarnings() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return warned.keys.sorted().map { warned[$0]! }
    }
}
