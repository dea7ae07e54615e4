import Foundation
import Testing

extension EndToEndTests {
    /// The index folder of the test project (the only one under the data folder's `indices`).
    func indexFolder() throws -> URL {
        let indices = data.appendingPathComponent("indices")
        let names = try FileManager.default.contentsOfDirectory(atPath: indices.path)
        #expect(names.count == 1)
        return indices.appendingPathComponent(names[0])
    }

    /// `init --fts-only` writes a keyword index without vectors and says so in the state; keyword
    /// searches use it as is; a normal search then rebuilds it with embeddings.
    @Test func keywordOnlyIndexThenNormalSearchBuildsEmbeddings() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        let built = try colgrep(["init", "--fts-only", "."])
        #expect(built.status == 0, "\(built.stderr)")
        #expect(!built.stderr.contains("Model:"), "no model load for a keyword-only index")
        let folder = try indexFolder()
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("index").path))
        let state = try String(contentsOf: folder.appendingPathComponent("state.json"), encoding: .utf8)
        #expect(state.contains("\"embeddings_absent\":true"), "\(state)")

        let keyword = try colgrep(["--fts-only", "-k", "1", "fetch_with_retry"])
        #expect(keyword.status == 0 && keyword.stdout.hasPrefix("src/http_client.py:"), "\(keyword.stdout) \(keyword.stderr)")
        #expect(!keyword.stderr.contains("Indexed"), "the keyword-only index is up to date")

        let normal = try colgrep(["--semantic-only", "-k", "1", "sum of item prices in the shopping cart"])
        #expect(normal.stderr.contains("has no embeddings"), "\(normal.stderr)")
        #expect(normal.stdout.hasPrefix("web/cart.js:"), "\(normal.stdout)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("index").path))
        let rebuilt = try String(contentsOf: folder.appendingPathComponent("state.json"), encoding: .utf8)
        #expect(!rebuilt.contains("embeddings_absent"))

        // An index with embeddings stays one: a keyword-only update of it encodes what changed.
        try "def shipping_cost(weight):\n    return 4.5 + 0.3 * weight\n".write(to: project.appendingPathComponent("src/shipping.py"), atomically: true, encoding: .utf8)
        let update = try colgrep(["init", "--fts-only", "."])
        #expect(update.stderr.contains("added: 1"), "\(update.stderr)")
        let semantic = try colgrep(["--semantic-only", "-k", "1", "--no-update", "shipping cost by weight"])
        #expect(semantic.stdout.hasPrefix("src/shipping.py:"), "\(semantic.stdout)")
    }
}
