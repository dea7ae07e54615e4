# Writes a random-weight model with the shape of LateOn-Code-edge (Ettin-encoder-17M ModernBERT +
# Dense 256->512->48) in the PyLate layout, like Sources/Encoder/SyntheticModel.swift does, plus the
# MiniLM tokenizer.json (ids < 30522 fit the 50368 vocabulary). Same compute cost as the real model.
# Usage (numpy and safetensors installed, e.g. in a venv): python3 synthetic_edge_model.py OUT_DIR TOKENIZER_JSON
import json, os, shutil, sys
import numpy as np
from safetensors.numpy import save_file

out, tok = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
vocab, h, inter, layers, heads = 50368, 256, 384, 7, 4
def w(*shape, std=0.02):
    return (rng.uniform(-1, 1, size=shape) * std * 1.73).astype(np.float32)
ones = lambda n: np.ones(n, dtype=np.float32)
t = {"embeddings.tok_embeddings.weight": w(vocab, h), "embeddings.norm.weight": ones(h), "final_norm.weight": ones(h)}
for n in range(layers):
    p = f"layers.{n}."
    if n > 0:
        t[p + "attn_norm.weight"] = ones(h)
    t[p + "attn.Wqkv.weight"] = w(3 * h, h)
    t[p + "attn.Wo.weight"] = w(h, h)
    t[p + "mlp_norm.weight"] = ones(h)
    t[p + "mlp.Wi.weight"] = w(2 * inter, h)
    t[p + "mlp.Wo.weight"] = w(h, inter)
save_file(t, os.path.join(out, "model.safetensors"))
config = {"model_type": "modernbert", "architectures": ["ModernBertModel"], "vocab_size": vocab, "hidden_size": h,
          "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
          "global_attn_every_n_layers": 3, "local_attention": 128, "global_rope_theta": 160000.0,
          "local_rope_theta": 10000.0, "norm_eps": 1e-5, "max_position_embeddings": 8192, "hidden_activation": "gelu"}
json.dump(config, open(os.path.join(out, "config.json"), "w"))
modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
width = h
for i, o in enumerate([512, 48]):
    folder = f"{i + 1}_Dense"
    os.makedirs(os.path.join(out, folder), exist_ok=True)
    save_file({"linear.weight": w(o, width, std=0.05)}, os.path.join(out, folder, "model.safetensors"))
    json.dump({"in_features": width, "out_features": o, "bias": False,
               "activation_function": "torch.nn.modules.linear.Identity"}, open(os.path.join(out, folder, "config.json"), "w"))
    modules.append({"idx": i + 1, "name": str(i + 1), "path": folder, "type": "pylate.models.Dense.Dense"})
    width = o
json.dump(modules, open(os.path.join(out, "modules.json"), "w"))
shutil.copy(tok, os.path.join(out, "tokenizer.json"))
print("model written to", out)
