import Foundation
import Tensor

/// The backbone's `config.json`: the fields BERT and ModernBERT read, with transformers' defaults.
/// Both ModernBERT spellings are accepted: `global_attn_every_n_layers` / `global_rope_theta` /
/// `local_rope_theta` (transformers 4) and `layer_types` / `rope_parameters` (transformers 5).
public struct TransformerConfig: Sendable, Equatable {
    public enum Architecture: String, Sendable { case bert, modernbert }

    public var architecture: Architecture
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var normEps: Float
    public var vocabSize: Int
    public var maxPositions: Int
    public var activation: Activation
    /// BERT: number of token types (segment embeddings).
    public var typeVocabSize: Int
    /// ModernBERT: whether each layer attends globally (else within `localWindow`).
    public var globalLayers: [Bool]
    /// ModernBERT: the sliding window (`local_attention`, tokens attend to distance ≤ window / 2).
    public var localWindow: Int
    public var globalRopeTheta: Float
    public var localRopeTheta: Float
    public var normBias: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool

    public var headDim: Int { hiddenSize / heads }

    public init(contentsOf url: URL) throws {
        let fields = JSONFields(object: try JSONFile.object(at: url)!, url: url)
        let type = try fields.string("model_type")?.lowercased() ?? ""
        switch type {
        case "bert": architecture = .bert
        case "modernbert": architecture = .modernbert
        default: throw EncoderError.unsupportedArchitecture(url, type.isEmpty ? "(no model_type)" : type)
        }
        hiddenSize = try fields.requiredInt("hidden_size")
        layers = try fields.requiredInt("num_hidden_layers")
        heads = try fields.requiredInt("num_attention_heads")
        intermediateSize = try fields.requiredInt("intermediate_size")
        vocabSize = try fields.requiredInt("vocab_size")
        guard hiddenSize % heads == 0 else {
            throw EncoderError.invalidFile(url, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
        }
        let isBERT = architecture == .bert
        maxPositions = try fields.int("max_position_embeddings") ?? (isBERT ? 512 : 8192)
        normEps = Float(try fields.double(isBERT ? "layer_norm_eps" : "norm_eps") ?? (isBERT ? 1e-12 : 1e-5))
        let activationName = try fields.string(isBERT ? "hidden_act" : "hidden_activation") ?? "gelu"
        switch activationName {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .geluTanh
        default: throw EncoderError.invalidFile(url, reason: "activation \"\(activationName)\" is not supported (gelu, gelu_new, gelu_pytorch_tanh)")
        }
        if !isBERT, activation != .gelu {
            throw EncoderError.invalidFile(url, reason: "ModernBERT's GeGLU is implemented with exact gelu; \"\(activationName)\" is not supported")
        }
        typeVocabSize = try fields.int("type_vocab_size") ?? 2
        localWindow = try fields.int("local_attention") ?? 128
        normBias = try fields.bool("norm_bias") ?? false
        attentionBias = try fields.bool("attention_bias") ?? false
        mlpBias = try fields.bool("mlp_bias") ?? false

        let every = try fields.int("global_attn_every_n_layers") ?? 1
        guard every > 0 else { throw EncoderError.invalidFile(url, reason: "global_attn_every_n_layers must be positive") }
        if isBERT {
            globalLayers = Array(repeating: true, count: layers)
        } else if let types = try fields.strings("layer_types") {
            guard types.count == layers else {
                throw EncoderError.invalidFile(url, reason: "layer_types lists \(types.count) layers, num_hidden_layers is \(layers)")
            }
            globalLayers = try types.map { type in
                switch type {
                case "full_attention": return true
                case "sliding_attention": return false
                default: throw EncoderError.invalidFile(url, reason: "unknown layer type \"\(type)\"")
                }
            }
        } else {
            globalLayers = (0..<layers).map { $0 % every == 0 }
        }
        let rope = fields.object["rope_parameters"] as? [String: Any]
        func theta(_ kind: String) -> Double? { (rope?[kind] as? [String: Any])?["rope_theta"] as? Double }
        globalRopeTheta = Float(try theta("full_attention") ?? fields.double("global_rope_theta") ?? 160_000)
        localRopeTheta = Float(try theta("sliding_attention") ?? fields.double("local_rope_theta") ?? 10_000)
    }
}
