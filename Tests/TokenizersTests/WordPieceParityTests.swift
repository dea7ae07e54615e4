import Foundation
import Testing
import Tokenizers

/// Token ids of the real all-MiniLM-L6-v2 tokenizer.json equal HF `tokenizers` on every corpus text
/// (code, prose, unicode, emoji, CJK, CRLF, tabs, long identifiers, empty and whitespace-only texts).
@Suite struct WordPieceParityTests {
    @Test func miniLMMatchesHuggingFaceOnTheCorpus() throws {
        try FixtureSupport.expectCorpusParity(Tokenizer(contentsOf: FixtureSupport.miniLMTokenizer), expectedFile: "expected-minilm.json")
    }

    @Test func singleEncodeMatchesBatchAndVocabularyLookups() throws {
        let tokenizer = try Tokenizer(contentsOf: FixtureSupport.miniLMTokenizer)
        #expect(tokenizer.vocabularySize == 30522)
        #expect(tokenizer.id(forToken: "[CLS]") == 101)
        #expect(tokenizer.token(forID: 102) == "[SEP]")
        #expect(tokenizer.id(forToken: "no-such-token") == nil)
        let texts = ["Hello, World!", "", "  ", "def f(x): return x**2"]
        #expect(texts.map { tokenizer.encode($0) } == tokenizer.encodeBatch(texts))
        #expect(tokenizer.encode("") == [101, 102])
        #expect(tokenizer.encode("", addSpecialTokens: false) == [])
        let long = [String(repeating: "token stream ", count: 200)]
        let untruncated = tokenizer.encodeBatch(long, threads: 2, maxLength: nil)
        #expect(untruncated[0].count == 402)
        #expect(untruncated[0] == tokenizer.encode(long[0], maxLength: nil))
        #expect(tokenizer.encodeBatch(long, threads: 2)[0].count == 128)
    }

    @Test func hugeTextIsTruncatedToTheConfiguredLength() throws {
        let tokenizer = try Tokenizer(contentsOf: FixtureSupport.miniLMTokenizer)
        let huge = String(repeating: "let value = compute(x) // note\n", count: 33_000)  // ~1 MB
        let ids = tokenizer.encode(huge)
        #expect(ids.count == 128)
        #expect(ids.first == 101 && ids.last == 102)
        #expect(tokenizer.encode(huge, maxLength: 10).count == 10)
        #expect(tokenizer.encode("a b c", addSpecialTokens: true, maxLength: nil) == [101, 1037, 1038, 1039, 102])
    }
}
