import Foundation
import Testing
import Tokenizers

/// Locations of test data: committed fixtures and the model files scripts/setup.sh puts in .deps.
enum FixtureSupport {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests/TokenizersTests/Fixtures")
    static let miniLMTokenizer = packageRoot.appendingPathComponent(".deps/models/all-MiniLM-L6-v2/tokenizer.json")
    static let bpeTokenizer = fixtures.appendingPathComponent("bpe-modernbert-style.tokenizer.json")

    struct Corpus: Decodable { let texts: [String] }
    struct Expected: Decodable {
        let ids: [[Int32]]
        let ids_no_special: [[Int32]]
    }

    static func corpus() throws -> [String] {
        try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: fixtures.appendingPathComponent("corpus.json"))).texts
    }

    static func expected(_ name: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    /// Compares ours with HF's ids text by text; returns a description of the first mismatches.
    static func mismatches(_ tokenizer: Tokenizer, texts: [String], expected: [[Int32]], addSpecialTokens: Bool)
        -> [String]
    {
        let ours = tokenizer.encodeBatch(texts, addSpecialTokens: addSpecialTokens)
        var report: [String] = []
        for (i, ids) in ours.enumerated() where ids != expected[i] {
            let text = texts[i].unicodeScalars.prefix(80).map { $0.escaped(asASCII: true) }.joined()
            report.append("text \(i) \"\(text)\": ours \(ids.prefix(40)) vs HF \(expected[i].prefix(40))")
            if report.count == 5 { break }
        }
        return report
    }

    /// The whole corpus with special tokens, and the prefix the fixture also holds without them, equal
    /// HF's ids from `expectedFile`.
    static func expectCorpusParity(_ tokenizer: Tokenizer, expectedFile: String) throws {
        let texts = try corpus()
        let expected = try expected(expectedFile)
        #expect(texts.count >= 2000)
        #expect(texts.count == expected.ids.count)
        let bad = mismatches(tokenizer, texts: texts, expected: expected.ids, addSpecialTokens: true)
        #expect(bad.isEmpty, "\(bad.joined(separator: "\n"))")
        let subset = Array(texts.prefix(expected.ids_no_special.count))
        let badPlain = mismatches(tokenizer, texts: subset, expected: expected.ids_no_special, addSpecialTokens: false)
        #expect(badPlain.isEmpty, "\(badPlain.joined(separator: "\n"))")
    }
}
