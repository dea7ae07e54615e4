import Foundation
import Testing
import Tokenizers

/// Token ids of the ModernBERT-style byte-level BPE fixture (NFC, ByteLevel split, [CLS]/[SEP] template,
/// whitespace-run added tokens, "[Q] "/"[D] ", [MASK] with lstrip) equal HF `tokenizers` on every text.
@Suite struct BPEParityTests {
    @Test func byteLevelBPEMatchesHuggingFaceOnTheCorpus() throws {
        let tokenizer = try Tokenizer(contentsOf: FixtureSupport.bpeTokenizer)
        let texts = try FixtureSupport.corpus()
        let expected = try FixtureSupport.expected("expected-bpe.json")
        #expect(texts.count >= 2000)
        #expect(texts.count == expected.ids.count)
        let bad = FixtureSupport.mismatches(tokenizer, texts: texts, expected: expected.ids, addSpecialTokens: true)
        #expect(bad.isEmpty, "\(bad.joined(separator: "\n"))")
        let subset = Array(texts.prefix(expected.ids_no_special.count))
        let badPlain = FixtureSupport.mismatches(tokenizer, texts: subset, expected: expected.ids_no_special,
                                                 addSpecialTokens: false)
        #expect(badPlain.isEmpty, "\(badPlain.joined(separator: "\n"))")
    }

    @Test func colbertPrefixesAreSingleAddedTokens() throws {
        let tokenizer = try Tokenizer(contentsOf: FixtureSupport.bpeTokenizer)
        let q = try #require(tokenizer.id(forToken: "[Q] "))
        let d = try #require(tokenizer.id(forToken: "[D] "))
        let cls = try #require(tokenizer.id(forToken: "[CLS]"))
        let sep = try #require(tokenizer.id(forToken: "[SEP]"))
        let query = tokenizer.encode("[Q] find the parser")
        #expect(query.first == cls && query.last == sep && query[1] == q)
        #expect(tokenizer.encode("[D] x", addSpecialTokens: false).first == d)
        // Repeated calls reuse the word cache and must give the same ids.
        #expect(tokenizer.encode("[Q] find the parser") == query)
    }
}
