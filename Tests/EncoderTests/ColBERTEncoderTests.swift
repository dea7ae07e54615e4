import Foundation
import Testing
import Tensor
@testable import Encoder

/// ColGREP's input preparation and output (reference §1.7) against the fixture script's Python rendition.
@Suite struct ColBERTEncoderTests {
    let backend = CPUBackend(threads: 2, precision: .fp32)

    func tinyCases() throws -> [[String: Any]] {
        try Fixtures.json(Fixtures.tinyModernBERT.appending(path: "expected.json"))["cases"] as! [[String: Any]]
    }

    @Test func tinyModernBERTDocumentsAndQueriesMatchPyLateLayout() throws {
        let encoder = try ColBERTEncoder(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        #expect(encoder.dimension == 16 && encoder.hasMarkers && encoder.lowercase && !encoder.queryExpansion)
        #expect(encoder.modelName == "tiny-modernbert" && encoder.documentLength == 24 && encoder.queryLength == 16)
        let cases = try tinyCases()
        let texts = cases.map { $0["text"] as! String }
        #expect(encoder.tokenizeDocuments(texts) == cases.map { Fixtures.ids($0["document_ids"]) })
        #expect(texts.map(encoder.tokenizeQuery) == cases.map { Fixtures.ids($0["query_ids"]) })
        // A budget smaller than one document: every batch is one sequence, and order must still hold.
        for budget in [4096, 10] {
            encoder.batcher = TokenBudgetBatcher(tokenBudget: budget)
            let documents = try encoder.encodeDocuments(texts)
            for (matrix, item) in zip(documents, cases) {
                #expect(minimumRowCosine(matrix, Fixtures.matrix(item["document_vectors"])) >= 0.9999)
            }
        }
        for (text, item) in zip(texts, cases) {
            #expect(minimumRowCosine(try encoder.encodeQuery(text), Fixtures.matrix(item["query_vectors"])) >= 0.9999)
        }
    }

    @Test func emptyTextIsClsMarkerSep() throws {
        let encoder = try ColBERTEncoder(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        let ids = encoder.tokenizeDocuments(["", "   \n\t "])
        #expect(ids[0].count == 3 && ids[0][1] == encoder.documentMarker && ids[0] == ids[1])
        #expect(try encoder.encodeDocuments([""])[0].rows == 3)
    }

    @Test func oneMegabyteTextIsTruncatedKeepingSep() throws {
        let encoder = try ColBERTEncoder(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        let text = String(repeating: "func load(path) { return Parser(text) }\n", count: 1_048_576 / 40)
        let ids = encoder.tokenizeDocuments([text])[0]
        let sep = try #require(encoder.tokenizer.id(forToken: "[SEP]"))
        #expect(ids.count == encoder.documentLength && ids.last == sep && ids[1] == encoder.documentMarker)
        let short = encoder.tokenizeDocuments([String(text.prefix(400))])[0]
        #expect(Array(ids.dropLast()) == Array(short.prefix(ids.count - 1)))
        let query = encoder.tokenizeQuery(text)
        #expect(query.count == encoder.queryLength && query.last == sep && query[1] == encoder.queryMarker)
        #expect(try encoder.encodeDocuments([text])[0].rows <= encoder.documentLength)
    }

    @Test func longDocumentsStopTokenizingWithTheSameIds() throws {
        let encoder = try ColBERTEncoder(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        let limit = try #require(encoder.documentTokenizeLimit)
        #expect(limit == encoder.documentLength + 1)
        let texts = (0..<40).map { n in
            (0..<(n * 3)).map { "Value\($0) = read_file(path_\($0)); // ünïcode 日本 \(n)" }.joined(separator: "\n")
        }
        let whole = encoder.tokenizer.encodeBatch(texts.map(encoder.clean), addSpecialTokens: true, threads: 2, maxLength: nil)
            .map { encoder.prepare($0, marker: encoder.documentMarker, maxLength: encoder.documentLength) }
        #expect(encoder.tokenizeDocuments(texts) == whole)
        #expect(whole.filter { $0.count == encoder.documentLength }.count > 30)
    }

    @Test func queryExpansionPadsWithMask() throws {
        let dir = try Fixtures.scratchCopy()
        let url = dir.appending(path: "onnx_config.json")
        var config = try Fixtures.json(url)
        config["do_query_expansion"] = true
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        let encoder = try ColBERTEncoder(modelDirectory: dir, backend: backend)
        let ids = encoder.tokenizeQuery("load path")
        let mask = try #require(encoder.maskID)
        #expect(ids.count == encoder.queryLength && ids.last == mask)
        #expect(try encoder.encodeQuery("load path").rows == encoder.queryLength)
    }

    @Test(.enabled(if: Fixtures.hasMiniLM, "all-MiniLM-L6-v2 is not provisioned: run scripts/setup.sh"))
    func miniLMFallbackHasNoMarkersNoProjectionAndSkiplist() throws {
        let encoder = try ColBERTEncoder(modelDirectory: Fixtures.miniLM, backend: backend)
        #expect(!encoder.hasMarkers && !encoder.queryExpansion && encoder.dimension == 384)
        let expected = try Fixtures.json(Fixtures.directory.appending(path: "minilm_expected.json"))
        let skip = Set(Fixtures.ids(expected["skiplist_ids"]))
        #expect(encoder.skiplistIDs == skip)
        let cases = expected["cases"] as! [[String: Any]]
        let texts = cases.map { $0["text"] as! String }
        #expect(encoder.tokenizeDocuments(texts) == cases.map { Fixtures.ids($0["ids"]) })
        let documents = try encoder.encodeDocuments(texts)
        for (matrix, item) in zip(documents, cases) {
            let ids = Fixtures.ids(item["ids"]), vectors = Fixtures.matrix(item["vectors"])
            let kept = ids.indices.filter { !skip.contains(ids[$0]) }.map { vectors[$0] }
            #expect(minimumRowCosine(matrix, kept) >= 0.9999)
        }
        #expect(try encoder.encodeQuery(texts[0]).rows == Fixtures.ids(cases[0]["ids"]).count)
    }

    @Test func missingOrMalformedTokenizerIsNamed() throws {
        let dir = try Fixtures.scratchCopy()
        let url = dir.appending(path: "tokenizer.json")
        try "{\"model\": {\"type\": \"BPE\", ".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: EncoderError.self) { try ColBERTEncoder(modelDirectory: dir, backend: backend) }
        do { _ = try ColBERTEncoder(modelDirectory: dir, backend: backend) } catch {
            #expect("\(error)".contains("tokenizer.json"))
        }
        try FileManager.default.removeItem(at: url)
        do { _ = try ColBERTEncoder(modelDirectory: dir, backend: backend); Issue.record("loaded without tokenizer.json") } catch {
            #expect("\(error)".contains("tokenizer.json"))
        }
    }

    @Test func batcherCoversEveryIndexOnceWithinBudget() {
        let lengths = [5, 300, 17, 17, 4096, 1, 80]
        let plan = TokenBudgetBatcher(tokenBudget: 100).plan(lengths: lengths)
        #expect(plan.flatMap { $0 }.sorted() == Array(lengths.indices))
        for batch in plan where batch.count > 1 { #expect(batch.map { lengths[$0] }.reduce(0, +) <= 100) }
        #expect(TokenBudgetBatcher().plan(lengths: []).isEmpty)
    }

    @Test func modelLocatorFindsFoldersCachedSnapshotsAndFallsBack() throws {
        let cache = FileManager.default.temporaryDirectory.appending(path: "enc-hub-\(UUID().uuidString)")
        let offline = HubClient(environment: ["HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": cache.path])
        #expect(try ModelLocator.resolve(Fixtures.tinyModernBERT.path, fallback: nil, hub: offline).path == Fixtures.tinyModernBERT.path)
        let fallback = Fixtures.tinyModernBERT
        #expect(try ModelLocator.resolve("no-such-org/no-such-model", fallback: fallback, hub: offline, memo: nil) == fallback)
        #expect(throws: EncoderError.self) { try ModelLocator.resolve("/no/such/folder", fallback: nil, hub: offline) }
        #expect(throws: EncoderError.self) { try ModelLocator.resolve("no-such-org/no-such-model", fallback: nil, hub: offline) }
        // A snapshot in the Hugging Face cache layout is found offline, Dense folders included.
        let commit = String(repeating: "ab", count: 20)
        let repo = cache.appending(path: "models--acme--tiny")
        try FileManager.default.createDirectory(at: repo.appending(path: "refs"), withIntermediateDirectories: true)
        try commit.write(to: repo.appending(path: "refs/main"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: repo.appending(path: "snapshots"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.tinyModernBERT, to: repo.appending(path: "snapshots/\(commit)"))
        let found = try ModelLocator.resolve("acme/tiny", fallback: nil, hub: offline)
        #expect(found.lastPathComponent == commit)
        let encoder = try ColBERTEncoder(modelDirectory: found, backend: backend)
        #expect(encoder.modelName == "tiny-modernbert" && encoder.dimension == 16)
        #expect(ColBERTEncoder.name(of: found) == "acme/tiny")
        // Cache first: with the snapshot on disk, no request is made, even to an endpoint nothing listens on.
        let unreachable = HubClient(environment: ["HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": cache.path])
        #expect(try ModelLocator.resolve("acme/tiny", fallback: nil, hub: unreachable).lastPathComponent == commit)
        // An incomplete snapshot (weights missing) is not used as is.
        try FileManager.default.removeItem(at: repo.appending(path: "snapshots/\(commit)/model.safetensors"))
        #expect(!ModelLocator.isComplete(repo.appending(path: "snapshots/\(commit)")))
    }
}
