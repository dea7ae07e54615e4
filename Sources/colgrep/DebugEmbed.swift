import ArgumentParser
import Encoder
import Foundation

/// `colgrep debug embed`: prepared ids and the per-token unit vectors ColBERT produces, as JSON.
/// Documents list the ids of the rows kept after the skiplist, so ids and vectors pair up row by row.
struct DebugEmbed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print ids and per-token vectors of each text as JSON: [{\"ids\": [...], \"vectors\": [[...]]}]."
    )

    @OptionGroup var options: DebugModelOptions

    func run() async throws {
        let encoder = try options.loadEncoder()
        let prepared = options.query ? options.texts.map(encoder.tokenizeQuery) : encoder.tokenizeDocuments(options.texts)
        let vectors = try encoder.encode(prepared: prepared, isQuery: options.query)
        var items: [String] = []
        for (ids, matrix) in zip(prepared, vectors) {
            let kept = options.query ? ids : ids.filter { !encoder.skiplistIDs.contains($0) }
            let rows = (0..<matrix.rows).map { "[" + matrix.row($0).map { "\($0)" }.joined(separator: ", ") + "]" }
            items.append("{\"ids\": [" + kept.map(String.init).joined(separator: ", ") + "], \"vectors\": [" + rows.joined(separator: ", ") + "]}")
        }
        print("[" + items.joined(separator: ",\n") + "]")
    }
}
