import Foundation
import Testing
import Tokenizers

/// Truncation that keeps the first ids stops tokenizing once it has them; the ids must be exactly those
/// of tokenizing the whole text and cutting it, for both model kinds, with and without special tokens.
@Suite struct EarlyTruncationTests {
    /// `whole` (a text's untruncated ids) cut to `maxLength` the way HF truncates from the right.
    func cut(_ whole: [Int32], _ tokenizer: Tokenizer, maxLength: Int, special: Bool) -> [Int32] {
        guard special else { return Array(whole.prefix(maxLength)) }
        let counts = tokenizer.specialTokenCounts
        let content = whole.dropFirst(counts.prefix).dropLast(counts.suffix)
        let budget = max(0, maxLength - counts.prefix - counts.suffix)
        return Array(whole.prefix(counts.prefix)) + content.prefix(budget) + whole.suffix(counts.suffix)
    }

    @Test(arguments: ["minilm", "bpe"])
    func stoppingEarlyKeepsTheSameIds(_ kind: String) throws {
        let tokenizer = try Tokenizer(contentsOf: kind == "bpe" ? FixtureSupport.bpeTokenizer : FixtureSupport.miniLMTokenizer)
        #expect(!tokenizer.truncatesFromStart)
        let corpus = try FixtureSupport.corpus()
        // Long texts made of the corpus's varied pieces (unicode, CJK, CRLF, added tokens, long identifiers).
        var texts: [String] = []
        for start in stride(from: 0, to: min(corpus.count, 900), by: 60) {
            texts.append(corpus[start..<min(start + 60, corpus.count)].joined(separator: "\n"))
        }
        var truncated = 0
        for text in texts {
            for special in [true, false] {
                let whole = tokenizer.encode(text, addSpecialTokens: special, maxLength: nil)
                for maxLength in [0, 1, 3, 17, 128, 300] {
                    let early = tokenizer.encode(text, addSpecialTokens: special, maxLength: maxLength)
                    #expect(early == cut(whole, tokenizer, maxLength: maxLength, special: special),
                            "\(kind) maxLength \(maxLength) special \(special): \(text.prefix(60))")
                    if whole.count > maxLength { truncated += 1 }
                }
            }
        }
        #expect(truncated > texts.count * 8)  // most cases really cut (and so really stopped early)
        #expect(tokenizer.encodeBatch(texts, threads: 2, maxLength: 64) == texts.map { tokenizer.encode($0, maxLength: 64) })
    }
}
