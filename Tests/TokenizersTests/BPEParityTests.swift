import Foundation
import Testing
import Tokenizers

/// Token ids of the ModernBERT-style byte-level BPE fixture (NFC, ByteLevel split, [CLS]/[SEP] template,
/// whitespace-run added tokens, "[Q] "/"[D] ", [MASK] with lstrip) equal HF `tokenizers` on every text.
@Suite struct BPEParityTests {
    @Test func byteLevelBPEMatchesHuggingFaceOnTheCorpus() throws {
        try FixtureSupport.expectCorpusParity(Tokenizer(contentsOf: FixtureSupport.bpeTokenizer), expectedFile: "expected-bpe.json")
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
