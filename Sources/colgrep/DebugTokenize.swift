import ArgumentParser
import Encoder
import Foundation
import Tensor

/// `colgrep debug tokenize`: the prepared ids ColBERT encodes (markers, truncation, expansion), as JSON.
struct DebugTokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the prepared token ids of each text as JSON: [{\"ids\": [...]}]."
    )

    @OptionGroup var options: DebugModelOptions

    func run() async throws {
        let encoder = try options.loadEncoder()
        let ids = options.query ? options.texts.map(encoder.tokenizeQuery) : encoder.tokenizeDocuments(options.texts)
        print("[" + ids.map { "{\"ids\": [" + $0.map(String.init).joined(separator: ", ") + "]}" }.joined(separator: ", ") + "]")
    }
}

/// Options shared by `debug tokenize` and `debug embed`.
struct DebugModelOptions: ParsableArguments {
    @Option(help: "A model folder or a Hugging Face model id.") var model: String
    @Flag(help: "Treat the texts as queries ([Q] marker, query length, expansion) instead of documents.") var query = false
    @Option(help: "CPU threads (default: every core).") var threads: Int?
    @Option(help: "Arithmetic of the CPU encoder: fp32, int8 or auto (default: auto, int8 per weight where measured faster and within parity).") var precision: CPUPrecision?
    @Argument(help: "Texts to process.") var texts: [String]

    func loadEncoder() throws -> ColBERTEncoder {
        do {
            let directory = try ModelLocator.resolve(model, fallback: nil)
            return try ColBERTEncoder(modelDirectory: directory, backend: CPUBackend(threads: threads, precision: precision))
        } catch let error as EncoderError {
            FileHandle.standardError.write(Data("colgrep: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension CPUPrecision: ExpressibleByArgument {}
