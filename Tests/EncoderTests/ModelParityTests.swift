import Foundation
import Testing
import Tensor
@testable import Encoder

/// fp32 parity against transformers (+ the PyLate head), references computed in float64 by
/// scripts/fixtures/make_encoder_fixtures.py: per-token cosine ≥ 0.9999.
@Suite struct ModelParityTests {
    let backend = CPUBackend(threads: 2, precision: .fp32)

    @Test func tinyModernBERTWithTwoDenseLayersMatchesTransformers() throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        #expect(model.dimension == 16)
        #expect(model.backbone.config.globalLayers == [true, false, false, true])
        let expected = try Fixtures.json(Fixtures.tinyModernBERT.appending(path: "expected.json"))
        // A 63-token sequence against an 8-token window: the band and both RoPE thetas are exercised.
        let raw = expected["raw"] as! [String: Any]
        let vectors = try model.embed(PackedBatch(sequences: [Fixtures.ids(raw["ids"])]))
        #expect(minimumRowCosine(vectors, Fixtures.matrix(raw["vectors"])) >= 0.9999)
        // The same cases packed together give the same rows as one by one (no cross-sequence leakage).
        let cases = expected["cases"] as! [[String: Any]]
        let sequences = cases.map { Fixtures.ids($0["query_ids"]) }
        let packed = try model.embed(PackedBatch(sequences: sequences))
        var row = 0
        for (sequence, item) in zip(sequences, cases) {
            let part = HostMatrix(rows: sequence.count, cols: 16, values: Array(packed.values[(row * 16)..<((row + sequence.count) * 16)]))
            #expect(minimumRowCosine(part, Fixtures.matrix(item["query_vectors"])) >= 0.9999)
            row += sequence.count
        }
    }

    @Test(.enabled(if: Fixtures.hasMiniLM, "all-MiniLM-L6-v2 is not provisioned: run scripts/setup.sh"))
    func realMiniLMMatchesTransformers() throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.miniLM, backend: backend)
        #expect(model.dimension == 384 && model.head.isEmpty)
        let expected = try Fixtures.json(Fixtures.directory.appending(path: "minilm_expected.json"))
        let cases = expected["cases"] as! [[String: Any]]
        let sequences = cases.map { Fixtures.ids($0["ids"]) }
        let packed = try model.embed(PackedBatch(sequences: sequences))
        var row = 0
        for (sequence, item) in zip(sequences, cases) {
            let part = HostMatrix(rows: sequence.count, cols: 384, values: Array(packed.values[(row * 384)..<((row + sequence.count) * 384)]))
            #expect(minimumRowCosine(part, Fixtures.matrix(item["vectors"])) >= 0.9999, "text: \(item["text"]!)")
            row += sequence.count
        }
    }
}

/// The int8 path's own bound: per-token cosine ≥ 0.99 against the fp32 references.
@Suite struct Int8ParityTests {
    let backend = CPUBackend(threads: 2, precision: .int8)

    @Test func tinyModernBERTInt8StaysWithinBound() throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        let raw = try Fixtures.json(Fixtures.tinyModernBERT.appending(path: "expected.json"))["raw"] as! [String: Any]
        let vectors = try model.embed(PackedBatch(sequences: [Fixtures.ids(raw["ids"])]))
        #expect(minimumRowCosine(vectors, Fixtures.matrix(raw["vectors"])) >= 0.99)
    }

    @Test(.enabled(if: Fixtures.hasMiniLM, "all-MiniLM-L6-v2 is not provisioned: run scripts/setup.sh"))
    func miniLMInt8StaysWithinBound() throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.miniLM, backend: backend)
        let cases = try Fixtures.json(Fixtures.directory.appending(path: "minilm_expected.json"))["cases"] as! [[String: Any]]
        for item in cases {
            let vectors = try model.embed(PackedBatch(sequences: [Fixtures.ids(item["ids"])]))
            #expect(minimumRowCosine(vectors, Fixtures.matrix(item["vectors"])) >= 0.99, "text: \(item["text"]!)")
        }
    }
}
