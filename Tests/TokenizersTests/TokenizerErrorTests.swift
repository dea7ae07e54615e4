import Foundation
import Testing
import Tokenizers

/// Bad tokenizer files produce errors that name the file and what is wrong, never a crash.
@Suite struct TokenizerErrorTests {
    private func message(_ json: String) -> String {
        do {
            _ = try Tokenizer(jsonData: Data(json.utf8), source: "bad/tokenizer.json")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func missingFileNamesThePath() {
        let url = URL(fileURLWithPath: "/nonexistent/dir/tokenizer.json")
        #expect(throws: TokenizerError.self) { try Tokenizer(contentsOf: url) }
        do { _ = try Tokenizer(contentsOf: url) } catch { #expect("\(error)".contains("/nonexistent/dir/tokenizer.json")) }
    }

    @Test func malformedFilesAreNamedWithTheProblem() {
        #expect(message("{\"model\": ").hasPrefix("bad/tokenizer.json: invalid JSON"))
        #expect(message("[1, 2]").contains("not a JSON object"))
        #expect(message("{}").contains("missing \"model\""))
        #expect(message("{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}").contains("model.type \"Unigram\" is not supported"))
        #expect(message("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}").contains("unk_token \"[UNK]\""))
        #expect(message("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}")
            .contains("model.merges[0]"))
        #expect(message("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}")
            .contains("model.vocab[\"a\"] is not an integer"))
        #expect(message("{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}")
            .contains("normalizer.type \"Precompiled\""))
    }

    @Test func truncatedRealFileIsReportedNotCrashed() throws {
        let data = try Data(contentsOf: FixtureSupport.bpeTokenizer)
        let truncated = data.prefix(data.count / 2)
        #expect(throws: TokenizerError.self) { try Tokenizer(jsonData: truncated, source: "half.json") }
    }
}
