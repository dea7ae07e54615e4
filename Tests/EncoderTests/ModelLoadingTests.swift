import Foundation
import Testing
import Tensor
@testable import Encoder

/// Bad model folders give an `EncoderError` naming the file at fault; good ones load every dtype.
@Suite struct ModelLoadingTests {
    let backend = CPUBackend(threads: 1, precision: .fp32)

    func loadError(_ directory: URL) -> EncoderError? {
        do { _ = try ColBERTModel(modelDirectory: directory, backend: backend); return nil } catch let error as EncoderError {
            return error
        } catch { return nil }
    }

    @Test func missingWeightsFileIsNamed() throws {
        let dir = try Fixtures.scratchCopy()
        try FileManager.default.removeItem(at: dir.appending(path: "model.safetensors"))
        let error = try #require(loadError(dir))
        #expect(error == .missingFile(dir.appending(path: "model.safetensors"), hint: "the weights are not there; download the model again or point --model at a complete model folder"))
        #expect(error.description.contains("model.safetensors"))
    }

    @Test(arguments: [0, 5, 100, 150_000])
    func truncatedWeightsFileIsNamed(keptBytes: Int) throws {
        let dir = try Fixtures.scratchCopy()
        let url = dir.appending(path: "model.safetensors")
        try Data(try Data(contentsOf: url).prefix(keptBytes)).write(to: url)
        let error = try #require(loadError(dir))
        guard case let .invalidFile(file, reason) = error else { Issue.record("unexpected \(error)"); return }
        #expect(file == url)
        #expect(reason.contains("truncated") || reason.contains("short"))
    }

    @Test func weightsOfAnotherShapeAreNamed() throws {
        let dir = try Fixtures.scratchCopy()
        let configURL = dir.appending(path: "config.json")
        var config = try Fixtures.json(configURL)
        config["intermediate_size"] = 64
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let error = try #require(loadError(dir))
        #expect(error.description.contains("model.safetensors") && error.description.contains("shape"))
    }

    @Test func weightsOfAnotherArchitectureAreNamed() throws {
        let dir = try Fixtures.scratchCopy()
        let configURL = dir.appending(path: "config.json")
        try #"{"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48, "vocab_size": 100}"#
            .write(to: configURL, atomically: true, encoding: .utf8)
        let error = try #require(loadError(dir))
        #expect(error.description.contains("model.safetensors") && error.description.contains("word_embeddings"), "\(error)")
    }

    @Test func unknownArchitectureIsNamed() throws {
        let dir = try Fixtures.scratchCopy()
        let configURL = dir.appending(path: "config.json")
        var config = try Fixtures.json(configURL)
        config["model_type"] = "llama"
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        #expect(loadError(dir) == .unsupportedArchitecture(configURL, "llama"))
    }

    @Test(arguments: ["{\"model_type\": \"modernbert\", ", "[1, 2]", "", "{\"model_type\": \"modernbert\", \"hidden_size\": \"big\"}"])
    func malformedConfigIsNamed(content: String) throws {
        let dir = try Fixtures.scratchCopy()
        let configURL = dir.appending(path: "config.json")
        try content.write(to: configURL, atomically: true, encoding: .utf8)
        let error = try #require(loadError(dir))
        guard case let .invalidFile(file, _) = error else { Issue.record("unexpected \(error)"); return }
        #expect(file == configURL)
    }

    @Test func malformedDenseConfigAndMissingFolderAreNamed() throws {
        let dir = try Fixtures.scratchCopy()
        try "{\"in_features\": 32}".write(to: dir.appending(path: "2_Dense/config.json"), atomically: true, encoding: .utf8)
        #expect(loadError(dir)?.description.contains("2_Dense/config.json") == true)
        try FileManager.default.removeItem(at: dir.appending(path: "2_Dense"))
        #expect(loadError(dir)?.description.contains("2_Dense") == true)
        #expect(loadError(dir.appending(path: "nowhere")) == .missingFile(dir.appending(path: "nowhere"), hint: "no such model folder"))
    }

    @Test func legacyModernBERTConfigKeysAreRead() throws {
        let url = FileManager.default.temporaryDirectory.appending(path: "enc-config-\(UUID().uuidString).json")
        try #"{"model_type": "modernbert", "hidden_size": 256, "num_hidden_layers": 7, "num_attention_heads": 4, "intermediate_size": 384, "vocab_size": 50368, "global_attn_every_n_layers": 3, "local_attention": 128, "global_rope_theta": 160000.0, "local_rope_theta": 10000.0}"#
            .write(to: url, atomically: true, encoding: .utf8)
        let config = try TransformerConfig(contentsOf: url)
        #expect(config.globalLayers == [true, false, false, true, false, false, true])
        #expect(config.globalRopeTheta == 160_000 && config.localRopeTheta == 10_000 && config.localWindow == 128 && config.headDim == 64)
    }

    @Test func halfAndBrainFloatTensorsConvert() throws {
        // 1.0, -2.5, 65504 (largest half), 2^-24 (smallest subnormal half)
        let half: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0001]
        let brain: [UInt16] = [0x3F80, 0xC020, 0x4780, 0x0000]  // 1.0, -2.5, 65536, 0
        var body = Data()
        for v in half + brain { withUnsafeBytes(of: v.littleEndian) { body.append(contentsOf: $0) } }
        let header = #"{"h": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}, "b": {"dtype": "BF16", "shape": [4], "data_offsets": [8, 16]}, "__metadata__": {"format": "pt"}}"#
        var file = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: Array(header.utf8))
        file.append(body)
        let url = FileManager.default.temporaryDirectory.appending(path: "enc-\(UUID().uuidString).safetensors")
        try file.write(to: url)
        let tensors = try SafeTensorsFile(url: url)
        let h = try tensors.matrix("h", shape: [2, 2])
        #expect(h.rows == 2 && h.values == [1, -2.5, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect(try tensors.matrix("b").values == [1, -2.5, 65536, 0])
        #expect(throws: EncoderError.self) { try tensors.matrix("h", shape: [4]) }
        #expect(throws: EncoderError.self) { try tensors.matrix("missing") }
    }

    @Test func tokenIDsOutsideTheVocabularyAreRejected() throws {
        let model = try ColBERTModel(modelDirectory: Fixtures.tinyModernBERT, backend: backend)
        #expect(throws: EncoderError.self) { try model.embed(PackedBatch(sequences: [[1, 100_000, 2]])) }
        #expect(try model.embed(PackedBatch(sequences: [])).rows == 0)
    }
}
