import Foundation
import Tensor

/// BERT (MiniLM and the other sentence-transformers backbones): learned absolute positions, token type 0,
/// post-norm layers with biases, separate Q/K/V weights fused at load time into one QKV projection.
public final class BERT: TransformerBackbone {
    struct Layer {
        let qkv: any DeviceMatrix, qkvBias: any DeviceMatrix
        let attentionOutput: any DeviceMatrix, attentionOutputBias: any DeviceMatrix
        let attentionNorm: (weight: any DeviceMatrix, bias: any DeviceMatrix)
        let intermediate: any DeviceMatrix, intermediateBias: any DeviceMatrix
        let output: any DeviceMatrix, outputBias: any DeviceMatrix
        let outputNorm: (weight: any DeviceMatrix, bias: any DeviceMatrix)
    }

    public let config: TransformerConfig
    let backend: any Backend
    let words: any DeviceMatrix
    /// Position embeddings with token type 0's embedding already added: every token we encode has
    /// type 0, so the per-batch token-type matrix (an upload and an add per batch) folds into them.
    let positions: any DeviceMatrix
    let embeddingNorm: (weight: any DeviceMatrix, bias: any DeviceMatrix)
    let layers: [Layer]

    /// Loads the backbone's weights; the fused Q/K/V projections come from the standard
    /// `FusedWeightCache` when it holds them for this model file (and are put there when not).
    public convenience init(config: TransformerConfig, weights: SafeTensorsFile, backend: any Backend) throws {
        try self.init(config: config, weights: weights, backend: backend, weightCache: FusedWeightCache.standard())
    }

    init(config: TransformerConfig, weights: SafeTensorsFile, backend: any Backend, weightCache: FusedWeightCache?) throws {
        self.config = config
        self.backend = backend
        let h = config.hiddenSize, i = config.intermediateSize
        let w = try WeightLoader(file: weights, backend: backend, anchor: "embeddings.word_embeddings.weight", cache: weightCache)
        func norm(_ name: String) throws -> (weight: any DeviceMatrix, bias: any DeviceMatrix) {
            (try w.load(name + ".weight", [h]), try w.load(name + ".bias", [h]))
        }
        words = try w.load("embeddings.word_embeddings.weight", [config.vocabSize, h])
        let types = try w.host("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h])
        positions = try w.concatenated([("embeddings.position_embeddings.weight", [config.maxPositions, h])], cols: h,
                                       addRow: Array(types.values.prefix(h)))
        embeddingNorm = try norm("embeddings.LayerNorm")
        layers = try (0..<config.layers).map { n in
            let p = "encoder.layer.\(n)."
            let qkv = ["query", "key", "value"].map { p + "attention.self.\($0)" }
            return Layer(
                qkv: try w.concatenated(qkv.map { ($0 + ".weight", [h, h]) }, cols: h),
                qkvBias: try w.concatenated(qkv.map { ($0 + ".bias", [h]) }, cols: h, asRow: true),
                attentionOutput: try w.load(p + "attention.output.dense.weight", [h, h]),
                attentionOutputBias: try w.load(p + "attention.output.dense.bias", [h]),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try w.load(p + "intermediate.dense.weight", [i, h]),
                intermediateBias: try w.load(p + "intermediate.dense.bias", [i]),
                output: try w.load(p + "output.dense.weight", [h, i]),
                outputBias: try w.load(p + "output.dense.bias", [h]),
                outputNorm: try norm(p + "output.LayerNorm"))
        }
        if let reduced = backend as? any ReducedPrecisionLinear {
            for layer in layers {
                for weight in [layer.qkv, layer.attentionOutput, layer.intermediate, layer.output] { reduced.allowReducedPrecision(weight) }
            }
        }
    }

    /// Live activations, in floats per token, at each step of `forward`: embeddings (words, positions, sum);
    /// attention (x, qkv, attended); the feed-forward (h, intermediate, output) once x is released.
    public var activationBytesPerToken: Int {
        let h = config.hiddenSize, i = config.intermediateSize
        return MemoryLayout<Float>.stride * max(3 * h, 5 * h, 4 * h, 2 * h + i)
    }

    // Every intermediate lives inside one statement or one helper call, and a layer consumes its input
    // before the feed-forward, so what is held at once is what `activationBytesPerToken` counts.
    public func forward(_ batch: PackedBatch) throws -> any DeviceMatrix {
        let b = backend, eps = config.normEps
        guard batch.maxSequenceLength <= config.maxPositions else {
            throw EncoderError.invalidInput("a sequence of \(batch.maxSequenceLength) tokens exceeds BERT's \(config.maxPositions) positions")
        }
        var x = try b.embed(words: words, ids: batch.tokenIDs, positions: (positions, batch.positions),
                            normWeight: embeddingNorm.weight, normBias: embeddingNorm.bias, eps: eps)
        for layer in layers { x = try self.layer(layer, consume x, batch: batch) }
        return x
    }

    /// One post-norm layer; `x` is released once the attention half is done with it.
    private func layer(_ layer: Layer, _ x: consuming any DeviceMatrix, batch: PackedBatch) throws -> any DeviceMatrix {
        let b = backend, eps = config.normEps
        let h = try b.layerNorm(b.linear(attention(x, layer: layer, batch: batch), weight: layer.attentionOutput,
                                         bias: layer.attentionOutputBias, activation: .none, residual: x),
                                weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias, eps: eps)
        _ = consume x
        let out = try b.linear(b.linear(h, weight: layer.intermediate, bias: layer.intermediateBias, activation: config.activation, residual: nil),
                               weight: layer.output, bias: layer.outputBias, activation: .none, residual: h)
        return try b.layerNorm(out, weight: layer.outputNorm.weight, bias: layer.outputNorm.bias, eps: eps)
    }

    /// Self-attention before its output projection; `qkv` ends with this call.
    private func attention(_ x: any DeviceMatrix, layer: Layer, batch: PackedBatch) throws -> any DeviceMatrix {
        let qkv = try backend.linear(x, weight: layer.qkv, bias: layer.qkvBias, activation: .none, residual: nil)
        return try backend.attention(qkv, batch: batch, heads: config.heads, headDim: config.headDim, rotary: nil, window: nil)
    }
}
