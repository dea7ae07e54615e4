import ArgumentParser
import CodeUnits
import Foundation

/// `colgrep debug units FILE… [--json]`: the units extracted from each file, with every field of the
/// reference §1.4 plus the embedding text (§1.5). Called-by links are resolved across the given files.
struct DebugUnits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "units",
        abstract: "Print the code units extracted from files, with their embedding text.")

    @Argument(help: "Files to extract.")
    var files: [String]

    @Flag(help: "Print JSON (one array of units).")
    var json = false

    @Option(help: "Grammar bundle directory (default: COLGREP_GRAMMARS_DIR or the one next to the binary).")
    var grammars: String?

    @Option(help: "Maximum syntax-tree depth before a file is skipped.")
    var maxRecursionDepth = 1024

    func run() throws {
        let directory = grammars.map { URL(fileURLWithPath: $0) } ?? GrammarLocator.defaultDirectory()
        let extractor = try UnitExtractor(grammarDirectory: directory, maxRecursionDepth: maxRecursionDepth)
        var units: [CodeUnit] = []
        var stderr = FileHandle.standardError
        for path in files {
            let url = URL(fileURLWithPath: path)
            let extraction = extractor.extract(root: url.deletingLastPathComponent(), relativePath: url.lastPathComponent)
            let withPath = extraction.units.map { unit -> CodeUnit in
                var u = unit
                u.file = path
                u.qualifiedName = path + u.qualifiedName.dropFirst(url.lastPathComponent.count)
                return u
            }
            units.append(contentsOf: withPath)
            for w in extraction.warnings { print("warning: \(w)", to: &stderr) }
            if let reason = extraction.skipReason { print("skipped \(path): \(reason)", to: &stderr) }
        }
        CallGraph.resolve(&units)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
            // Keep the reference's field order: encode each unit, then splice `embedding_text` in last.
            var out = "[\n"
            for (i, unit) in units.enumerated() {
                var text = String(decoding: try encoder.encode(unit), as: UTF8.self)
                let embedding = String(decoding: try encoder.encode([EmbeddingText.build(for: unit)]), as: UTF8.self)
                let value = embedding.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst().dropLast().trimmingCharacters(in: .whitespacesAndNewlines)
                if let close = text.lastIndex(of: "}") {
                    text.replaceSubrange(close...close, with: ",\n  \"embedding_text\" : \(value)\n}")
                }
                out += text + (i + 1 < units.count ? ",\n" : "\n")
            }
            out += "]"
            print(out)
        } else {
            for u in units {
                print("\(u.file):\(u.line)-\(u.endLine) \(u.unitType.rawValue) \(u.qualifiedName)")
            }
        }
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) {
        write(Data(string.utf8))
    }
}
