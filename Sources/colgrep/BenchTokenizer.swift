import ArgumentParser
import Foundation
import Tokenizers

/// `colgrep bench tokenizer`: our tokenizers against HF `tokenizers` on the same texts and thread count,
/// for both families (WordPiece: the real all-MiniLM-L6-v2 file; byte-level BPE: the ModernBERT-style
/// fixture). The texts are the parity corpus repeated to at least `--min-tokens` ids per family. HF runs
/// from a Python venv through scripts/bench/tokenizer_peer.py. Truncation is off on both sides, so every
/// token the tokenizers produce is counted (with it, long texts do uncounted work).
struct BenchTokenizer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer throughput (tokens/s) against HF tokenizers, WordPiece and byte-level BPE."
    )

    @Option(help: "Threads for both implementations.") var threads: Int = 1
    @Option(help: "Python of a venv with tokenizers installed.") var python: String = ".venv-bench/bin/python"
    @Option(help: "Minimum ids per family in the timed pass.") var minTokens: Int = 2_000_000
    @Flag(help: "Print one JSON object.") var json = false

    private static let install = "python3 -m venv .venv-bench && .venv-bench/bin/pip install tokenizers"

    func run() async throws {
        guard threads > 0, minTokens > 0 else { throw ValidationError("--threads and --min-tokens must be positive") }
        let root = try Self.packageRoot()
        let peers = PeerPython(path: python)
        try peers.require(modules: "tokenizers", describedAs: "the tokenizers package", install: Self.install)
        let fixtures = root.appendingPathComponent("Tests/TokenizersTests/Fixtures")
        let corpusData = try Data(contentsOf: fixtures.appendingPathComponent("corpus.json"))
        guard let corpus = (try JSONSerialization.jsonObject(with: corpusData) as? [String: Any])?["texts"] as? [String] else {
            throw ValidationError("\(fixtures.path)/corpus.json has no \"texts\" list")
        }
        let families: [(String, URL)] = [
            ("wordpiece", root.appendingPathComponent(".deps/models/all-MiniLM-L6-v2/tokenizer.json")),
            ("bpe", fixtures.appendingPathComponent("bpe-modernbert-style.tokenizer.json")),
        ]
        var results: [(String, [(String, Any)])] = []
        for (name, file) in families {
            let tokenizer = try Tokenizer(contentsOf: file)
            // Repeat the corpus until one pass yields at least minTokens ids.
            let perPass = tokenizer.encodeBatch(corpus, threads: threads, maxLength: nil).reduce(0) { $0 + $1.count }
            let repeats = max(1, (minTokens + perPass - 1) / perPass)
            let texts = Array([[String]](repeating: corpus, count: repeats).joined())
            let ours = measure(tokenizer, texts)
            let hf = try runPeer(tokenizer: file, texts: texts)
            let oursRate = Double(ours.tokens) / ours.seconds
            let hfRate = Double(hf.tokens) / hf.seconds
            if ours.tokens != hf.tokens {
                throw ValidationError("\(name): ours produced \(ours.tokens) ids, HF \(hf.tokens): run the parity tests")
            }
            results.append((name, [
                ("ours_tok_s", oursRate.rounded()), ("hf_tok_s", hfRate.rounded()),
                ("ratio", (oursRate / hfRate * 1000).rounded() / 1000),
                ("ours_tok_s_per_core", (oursRate / Double(threads)).rounded()), ("tokens", ours.tokens),
                ("texts", texts.count),
            ]))
        }
        if json {
            let body = results.map { name, fields in
                "\"\(name)\": {" + fields.map { "\"\($0.0)\": \(Self.jsonValue($0.1))" }.joined(separator: ", ") + "}"
            }
            print("{\"threads\": \(threads), " + body.joined(separator: ", ") + "}")
        } else {
            print("threads: \(threads)")
            for (name, fields) in results {
                print("\(name): " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
            }
        }
    }

    private func measure(_ tokenizer: Tokenizer, _ texts: [String]) -> (tokens: Int, seconds: Double) {
        _ = tokenizer.encodeBatch(Array(texts.prefix(max(1, texts.count / 10))), threads: threads, maxLength: nil)  // warm-up, as the peer
        let start = DispatchTime.now().uptimeNanoseconds
        let ids = tokenizer.encodeBatch(texts, threads: threads, maxLength: nil)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (ids.reduce(0) { $0 + $1.count }, seconds)
    }

    private func runPeer(tokenizer: URL, texts: [String]) throws -> (tokens: Int, seconds: Double) {
        let root = try Self.packageRoot()
        let temp = FileManager.default.temporaryDirectory
        let textsURL = temp.appendingPathComponent("colgrep-bench-texts-\(getpid()).json")
        let outURL = temp.appendingPathComponent("colgrep-bench-peer-\(getpid()).json")
        defer {
            try? FileManager.default.removeItem(at: textsURL)
            try? FileManager.default.removeItem(at: outURL)
        }
        try JSONSerialization.data(withJSONObject: texts).write(to: textsURL)
        try PeerPython(path: python).run([root.appendingPathComponent("scripts/bench/tokenizer_peer.py").path, "--tokenizer", tokenizer.path,
                       "--texts", textsURL.path, "--no-truncation", "--threads", "\(threads)", "--out", outURL.path])
        guard let result = try JSONSerialization.jsonObject(with: Data(contentsOf: outURL)) as? [String: Any],
              let tokens = result["tokens"] as? Int, let seconds = result["seconds"] as? Double else {
            throw ValidationError("the peer script wrote no usable result to \(outURL.path)")
        }
        return (tokens, seconds)
    }

    /// The checkout this binary was built from (fixtures and scripts live there).
    static func packageRoot() throws -> URL {
        let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for candidate in [URL(fileURLWithPath: FileManager.default.currentDirectoryPath), fromSource]
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("Tests/TokenizersTests/Fixtures/corpus.json").path) {
            return candidate
        }
        throw ValidationError("cannot find Tests/TokenizersTests/Fixtures/corpus.json; run from the colgrep checkout")
    }



    private static func jsonValue(_ value: Any) -> String {
        switch value {
        case let d as Double: d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
        default: "\(value)"
        }
    }
}
