import Foundation

/// Random-weight models in the real PyLate file layout, for the encoder benchmark: loading them goes
/// through exactly the code path of a downloaded model.
public enum SyntheticModel {
    /// The shape of LateOn-Code-edge's backbone (Ettin-encoder-17M) and head, as /work/shared/bench uses it.
    public struct ModernBERTShape: Sendable {
        public var vocab = 50368, hidden = 256, intermediate = 384, layers = 7, heads = 4
        public var globalEvery = 3, localWindow = 128
        public var head = [512, 48]
        public init() {}
    }

    /// Writes `config.json`, `model.safetensors`, `modules.json` and `N_Dense/` folders into `directory`.
    public static func writeModernBERT(_ shape: ModernBERTShape = ModernBERTShape(), to directory: URL, seed: UInt64 = 0) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        var random = SplitMix(seed: seed)
        func weights(_ dims: [Int], std: Float = 0.02) -> [Float] { (0..<dims.reduce(1, *)).map { _ in random.uniform() * std * 1.73 } }
        func ones(_ n: Int) -> [Float] { [Float](repeating: 1, count: n) }
        let h = shape.hidden, i = shape.intermediate
        var tensors: [SafeTensorsWriter.Tensor] = [
            .init(name: "embeddings.tok_embeddings.weight", shape: [shape.vocab, h], values: weights([shape.vocab, h])),
            .init(name: "embeddings.norm.weight", shape: [h], values: ones(h)),
            .init(name: "final_norm.weight", shape: [h], values: ones(h)),
        ]
        for n in 0..<shape.layers {
            let p = "layers.\(n)."
            if n > 0 { tensors.append(.init(name: p + "attn_norm.weight", shape: [h], values: ones(h))) }
            tensors += [
                .init(name: p + "attn.Wqkv.weight", shape: [3 * h, h], values: weights([3 * h, h])),
                .init(name: p + "attn.Wo.weight", shape: [h, h], values: weights([h, h])),
                .init(name: p + "mlp_norm.weight", shape: [h], values: ones(h)),
                .init(name: p + "mlp.Wi.weight", shape: [2 * i, h], values: weights([2 * i, h])),
                .init(name: p + "mlp.Wo.weight", shape: [h, i], values: weights([h, i])),
            ]
        }
        try SafeTensorsWriter.write(tensors, to: directory.appending(path: "model.safetensors"))
        let config: [String: Any] = [
            "model_type": "modernbert", "architectures": ["ModernBertModel"], "vocab_size": shape.vocab,
            "hidden_size": h, "intermediate_size": i, "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
            "global_attn_every_n_layers": shape.globalEvery, "local_attention": shape.localWindow,
            "global_rope_theta": 160_000.0, "local_rope_theta": 10_000.0, "norm_eps": 1e-5, "max_position_embeddings": 8192,
            "hidden_activation": "gelu",
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: directory.appending(path: "config.json"))
        var modules: [[String: Any]] = [["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"]]
        var width = h
        for (index, out) in shape.head.enumerated() {
            let folder = "\(index + 1)_Dense"
            try fm.createDirectory(at: directory.appending(path: folder), withIntermediateDirectories: true)
            try SafeTensorsWriter.write([.init(name: "linear.weight", shape: [out, width], values: weights([out, width], std: 0.05))],
                                        to: directory.appending(path: "\(folder)/model.safetensors"))
            let dense: [String: Any] = ["in_features": width, "out_features": out, "bias": false,
                                        "activation_function": "torch.nn.modules.linear.Identity"]
            try JSONSerialization.data(withJSONObject: dense).write(to: directory.appending(path: "\(folder)/config.json"))
            modules.append(["idx": index + 1, "name": "\(index + 1)", "path": folder, "type": "pylate.models.Dense.Dense"])
            width = out
        }
        try JSONSerialization.data(withJSONObject: modules).write(to: directory.appending(path: "modules.json"))
    }
}

extension SyntheticModel {
    /// The shape of all-MiniLM-L6-v2 (BERT, post-norm, no ColBERT head).
    public struct BERTShape: Sendable {
        public var vocab = 30522, hidden = 384, intermediate = 1536, layers = 6, heads = 12, maxPositions = 512
        public init() {}
    }

    /// Writes a random BERT in the sentence-transformers layout (`config.json`, `model.safetensors`, no Dense).
    public static func writeBERT(_ shape: BERTShape = BERTShape(), to directory: URL, seed: UInt64 = 0) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var random = SplitMix(seed: seed)
        func weights(_ dims: [Int]) -> [Float] { (0..<dims.reduce(1, *)).map { _ in random.uniform() * 0.02 * 1.73 } }
        let h = shape.hidden, i = shape.intermediate
        func norm(_ name: String) -> [SafeTensorsWriter.Tensor] {
            [.init(name: name + ".weight", shape: [h], values: [Float](repeating: 1, count: h)),
             .init(name: name + ".bias", shape: [h], values: [Float](repeating: 0, count: h))]
        }
        var tensors: [SafeTensorsWriter.Tensor] = [
            .init(name: "embeddings.word_embeddings.weight", shape: [shape.vocab, h], values: weights([shape.vocab, h])),
            .init(name: "embeddings.position_embeddings.weight", shape: [shape.maxPositions, h], values: weights([shape.maxPositions, h])),
            .init(name: "embeddings.token_type_embeddings.weight", shape: [2, h], values: weights([2, h])),
        ] + norm("embeddings.LayerNorm")
        for n in 0..<shape.layers {
            let p = "encoder.layer.\(n)."
            for part in ["query", "key", "value"] {
                tensors += [.init(name: p + "attention.self.\(part).weight", shape: [h, h], values: weights([h, h])),
                            .init(name: p + "attention.self.\(part).bias", shape: [h], values: weights([h]))]
            }
            tensors += [
                .init(name: p + "attention.output.dense.weight", shape: [h, h], values: weights([h, h])),
                .init(name: p + "attention.output.dense.bias", shape: [h], values: weights([h])),
                .init(name: p + "intermediate.dense.weight", shape: [i, h], values: weights([i, h])),
                .init(name: p + "intermediate.dense.bias", shape: [i], values: weights([i])),
                .init(name: p + "output.dense.weight", shape: [h, i], values: weights([h, i])),
                .init(name: p + "output.dense.bias", shape: [h], values: weights([h])),
            ] + norm(p + "attention.output.LayerNorm") + norm(p + "output.LayerNorm")
        }
        try SafeTensorsWriter.write(tensors, to: directory.appending(path: "model.safetensors"))
        let config: [String: Any] = [
            "model_type": "bert", "architectures": ["BertModel"], "vocab_size": shape.vocab, "hidden_size": h,
            "intermediate_size": i, "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
            "max_position_embeddings": shape.maxPositions, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        ]
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: directory.appending(path: "config.json"))
    }
}

/// A small seeded generator (SplitMix64): reproducible weights and ids without the system RNG.
public struct SplitMix: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
