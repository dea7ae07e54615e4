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

/// The int8 path's own bound: per-token cosine ≥ 0.99 against the fp32 references. The sequences are packed
/// into one batch so that `linear` sees more than `CPUBackend.int8MinimumRows` rows (smaller batches stay fp32).
@Suite struct Int8ParityTests {
    @Test(arguments: [CPUPrecision.int8, .auto])
    func tinyModernBERTInt8StaysWithinBound(precision: CPUPrecision) throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: CPUBackend(threads: 2, precision: precision))
        let expected = try Fixtures.json(Fixtures.tinyModernBERT.appending(path: "expected.json"))
        let raw = expected["raw"] as! [String: Any], cases = expected["cases"] as! [[String: Any]]
        var sequences = [Fixtures.ids(raw["ids"])], references = Fixtures.matrix(raw["vectors"])
        for item in cases {
            sequences.append(Fixtures.ids(item["query_ids"]))
            references += Fixtures.matrix(item["query_vectors"])
        }
        let batch = PackedBatch(sequences: sequences)
        #expect(batch.tokenCount >= CPUBackend.int8MinimumRows)
        #expect(minimumRowCosine(try model.embed(batch), references) >= 0.99)
    }

    /// MiniLM (BERT, post-norm) has outlier activation channels that per-row int8 quantisation does not survive
    /// everywhere (all layers int8: minimum per-token cosine 0.988 with 8-bit weights, 0.980 with AVX2's 7-bit
    /// weights); `.auto` measures each weight and must keep the result within the bound. Three copies of the
    /// cases make the batch large enough (≥ `calibrationRows`) for measuring to happen.
    @Test(.enabled(if: Fixtures.hasMiniLM, "all-MiniLM-L6-v2 is not provisioned: run scripts/setup.sh"))
    func miniLMAutoStaysWithinBound() throws {
        let backend = CPUBackend(threads: 2, precision: .auto)
        let model = try ColBERTModel(modelDirectory: Fixtures.miniLM, backend: backend)
        let cases = try Fixtures.json(Fixtures.directory.appending(path: "minilm_expected.json"))["cases"] as! [[String: Any]]
        let copies = Array(repeating: cases, count: 3).flatMap { $0 }
        let batch = PackedBatch(sequences: copies.map { Fixtures.ids($0["ids"]) })
        #expect(batch.tokenCount >= CPUBackend.calibrationRows)
        let cosine = minimumRowCosine(try model.embed(batch), copies.flatMap { Fixtures.matrix($0["vectors"]) })
        #expect(cosine >= 0.99, "minimum per-token cosine \(cosine)")
    }
}
