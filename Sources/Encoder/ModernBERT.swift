import Foundation
import Tensor

/// ModernBERT (the Ettin / LateOn-Code backbones): pre-norm layers, fused QKV without biases, RoPE with a
/// global and a local θ, sliding-window attention on the layers that are not global, GeGLU MLP, final norm.
/// Layer 0 has no attention norm (the embedding norm precedes it). Runs on packed sequences, no padding.
public final class ModernBERT: TransformerBackbone {
    struct Layer {
        let attentionNorm: (weight: any DeviceMatrix, bias: (any DeviceMatrix)?)?
        let qkv: any DeviceMatrix, qkvBias: (any DeviceMatrix)?
        let output: any DeviceMatrix, outputBias: (any DeviceMatrix)?
        let mlpNorm: (weight: any DeviceMatrix, bias: (any DeviceMatrix)?)
        let mlpIn: any DeviceMatrix, mlpInBias: (any DeviceMatrix)?
        let mlpOut: any DeviceMatrix, mlpOutBias: (any DeviceMatrix)?
        let isGlobal: Bool
    }

    public let config: TransformerConfig
    let backend: any Backend
    let embeddings: any DeviceMatrix
    let embeddingNorm: (weight: any DeviceMatrix, bias: (any DeviceMatrix)?)
    let layers: [Layer]
    let finalNorm: (weight: any DeviceMatrix, bias: (any DeviceMatrix)?)

    public init(config: TransformerConfig, weights: SafeTensorsFile, backend: any Backend) throws {
        self.config = config
        self.backend = backend
        let h = config.hiddenSize, i = config.intermediateSize
        let w = try WeightLoader(file: weights, backend: backend, anchor: "embeddings.tok_embeddings.weight")
        func norm(_ name: String) throws -> (weight: any DeviceMatrix, bias: (any DeviceMatrix)?) {
            (try w.load(name + ".weight", [h]), try w.optional(name + ".bias", [h], present: config.normBias))
        }
        embeddings = try w.load("embeddings.tok_embeddings.weight", [config.vocabSize, h])
        embeddingNorm = try norm("embeddings.norm")
        layers = try (0..<config.layers).map { n in
            let p = "layers.\(n)."
            return Layer(
                attentionNorm: w.has(p + "attn_norm.weight") ? try norm(p + "attn_norm") : nil,
                qkv: try w.load(p + "attn.Wqkv.weight", [3 * h, h]),
                qkvBias: try w.optional(p + "attn.Wqkv.bias", [3 * h], present: config.attentionBias),
                output: try w.load(p + "attn.Wo.weight", [h, h]),
                outputBias: try w.optional(p + "attn.Wo.bias", [h], present: config.attentionBias),
                mlpNorm: try norm(p + "mlp_norm"),
                mlpIn: try w.load(p + "mlp.Wi.weight", [2 * i, h]),
                mlpInBias: try w.optional(p + "mlp.Wi.bias", [2 * i], present: config.mlpBias),
                mlpOut: try w.load(p + "mlp.Wo.weight", [h, i]),
                mlpOutBias: try w.optional(p + "mlp.Wo.bias", [h], present: config.mlpBias),
                isGlobal: config.globalLayers[n])
        }
        finalNorm = try norm("final_norm")
        if let reduced = backend as? any ReducedPrecisionLinear {
            for layer in layers { for weight in [layer.qkv, layer.output, layer.mlpIn, layer.mlpOut] { reduced.allowReducedPrecision(weight) } }
        }
    }

    /// Live activations, in floats per token, at each step of `forward`: embeddings (gathered + normed);
    /// attention (x, normed or attended, qkv); the MLP's up-projection (x, normed, 2i) and GeGLU (x, 2i, i).
    public var activationBytesPerToken: Int {
        let h = config.hiddenSize, i = config.intermediateSize
        return MemoryLayout<Float>.stride * max(2 * h, 5 * h, 2 * h + 2 * i, h + 3 * i)
    }

    // Every intermediate lives inside one statement or one helper call, so what is held at once is what
    // `activationBytesPerToken` counts, in debug and release builds alike.
    public func forward(_ batch: PackedBatch) throws -> any DeviceMatrix {
        let b = backend, eps = config.normEps
        var x = try b.embed(words: embeddings, ids: batch.tokenIDs, positions: nil,
                            normWeight: embeddingNorm.weight, normBias: embeddingNorm.bias, eps: eps)
        for layer in layers {
            x = try b.linear(attention(x, layer: layer, batch: batch), weight: layer.output, bias: layer.outputBias, activation: .none, residual: x)
            x = try b.linear(gatedMLPInput(x, layer: layer), weight: layer.mlpOut, bias: layer.mlpOutBias, activation: .none, residual: x)
        }
        return try b.layerNorm(x, weight: finalNorm.weight, bias: finalNorm.bias, eps: eps)
    }

    /// The attention block before its output projection; `qkv` ends with this call.
    private func attention(_ x: any DeviceMatrix, layer: Layer, batch: PackedBatch) throws -> any DeviceMatrix {
        let b = backend
        let qkv = try b.linear(layer.attentionNorm.map { try b.layerNorm(x, weight: $0.weight, bias: $0.bias, eps: config.normEps) } ?? x,
                               weight: layer.qkv, bias: layer.qkvBias, activation: .none, residual: nil)
        return try b.attention(qkv, batch: batch, heads: config.heads, headDim: config.headDim,
                               rotary: Rotary(theta: layer.isGlobal ? config.globalRopeTheta : config.localRopeTheta),
                               window: layer.isGlobal ? nil : config.localWindow)
    }

    /// `gelu(a) · g` of the MLP's up-projection `[a | g]`, in one backend call (a GPU backend fuses the two).
    private func gatedMLPInput(_ x: any DeviceMatrix, layer: Layer) throws -> any DeviceMatrix {
        let b = backend
        return try b.linearGeGLU(b.layerNorm(x, weight: layer.mlpNorm.weight, bias: layer.mlpNorm.bias, eps: config.normEps),
                                 weight: layer.mlpIn, bias: layer.mlpInBias)
    }
}
