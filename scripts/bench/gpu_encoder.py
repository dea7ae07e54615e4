"""GPU encoder peers and parity reference for `colgrep bench encoder-gpu` and the CUDA parity check.

Runs on the GPU machine (PyTorch + transformers). Subcommands:
  make-model DIR            full-size random Ettin-17M-shaped ModernBERT (hidden 256, intermediate 384, 7 layers,
                            4 heads, global every 3rd layer, 128-token window) + LateOn-Code-edge head
                            (1_Dense 256->512, 2_Dense 512->48, no bias) in the PyLate/sentence-transformers layout,
                            seeded, so colgrep and PyTorch encode with the same weights.
  lengths OUT [--docs N]    the synthetic workload's document lengths (numpy default_rng(0), lognormal(log 180, 0.8),
                            clipped to 8..512), as /work/shared/bench/torch_baseline.py draws them.
  parity-ids OUT            64 sequences of random ids with lengths 1..512 (tile edges and window edges included).
  reference DIR IDS OUT [bf16]  reference (transformers, fp32 without TF32; or PyTorch's own bf16 run, to set our
                            bf16 error beside its) of backbone -> Dense head -> L2 norm per token, raw f32.
  compare OURS REF IDS      per-token cosine between two raw f32 files: prints min / mean / p1 as JSON.
  peers DIR LENGTHS OUT     PyTorch CUDA bf16 eager and torch.compile tokens/s on those lengths, the method of
                            /work/shared/bench/torch_compile.py (padded, length-sorted batches of 64, lengths rounded
                            up to 64, inputs already on the GPU).
Usage: python3 scripts/bench/gpu_encoder.py <subcommand> ...
"""
import json, math, os, sys, time
import numpy as np

def modernbert_config():
    from transformers import ModernBertConfig
    return ModernBertConfig(vocab_size=50368, hidden_size=256, intermediate_size=384, num_hidden_layers=7,
        num_attention_heads=4, global_attn_every_n_layers=3, local_attention=128, max_position_embeddings=8192,
        global_rope_theta=160000.0, local_rope_theta=10000.0, norm_eps=1e-5)

def make_model(directory):
    import torch
    from transformers import ModernBertModel
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = ModernBertModel(modernbert_config()).eval()
    # Larger-than-default init spreads activations like a trained model's, so parity is not judged on near-zeros.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2: p.normal_(0, 0.05)
    model.save_pretrained(directory, safe_serialization=True)
    head = []
    for index, (i, o) in enumerate([(256, 512), (512, 48)], start=1):
        folder = os.path.join(directory, f"{index}_Dense"); os.makedirs(folder, exist_ok=True)
        w = torch.randn(o, i) / math.sqrt(i)
        save_file({"linear.weight": w.contiguous()}, os.path.join(folder, "model.safetensors"))
        json.dump({"in_features": i, "out_features": o, "bias": False,
                   "activation_function": "torch.nn.modules.linear.Identity"}, open(os.path.join(folder, "config.json"), "w"))
        head.append(w)
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
               {"idx": 2, "name": "2", "path": "2_Dense", "type": "pylate.models.Dense.Dense"}],
              open(os.path.join(directory, "modules.json"), "w"))

def load_reference_model(directory):
    import torch
    from transformers import AutoModel
    from safetensors.torch import load_file
    model = AutoModel.from_pretrained(directory, attn_implementation="eager", torch_dtype=torch.float32).eval()
    head = []
    modules = os.path.join(directory, "modules.json")
    if os.path.exists(modules):
        for m in json.load(open(modules)):
            if m["type"].endswith("Dense"):
                t = load_file(os.path.join(directory, m["path"], "model.safetensors"))
                head.append((t["linear.weight"], t.get("linear.bias")))
    return model, head

def reference(directory, ids_file, out, dtype="fp32"):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, head = load_reference_model(directory)
    model = model.to(device)
    if dtype == "bf16": model = model.to(torch.bfloat16)
    rows = []
    with torch.inference_mode():
        for seq in json.load(open(ids_file)):
            ids = torch.tensor([seq], device=device)
            x = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0].float()
            for w, b in head:
                if dtype == "bf16": x = (x.to(torch.bfloat16) @ w.to(device).to(torch.bfloat16).T).float()
                else: x = x @ w.to(device).float().T + (b.to(device).float() if b is not None else 0)
            rows.append(torch.nn.functional.normalize(x, dim=-1).cpu().numpy())
    np.concatenate(rows).astype(np.float32).tofile(out)

def compare(ours, ref, ids_file):
    seqs = json.load(open(ids_file)); n = sum(len(s) for s in seqs)
    a = np.fromfile(ours, dtype=np.float32); b = np.fromfile(ref, dtype=np.float32)
    assert a.size == b.size and a.size % n == 0, f"sizes differ: {a.size} vs {b.size} for {n} tokens"
    a = a.reshape(n, -1).astype(np.float64); b = b.reshape(n, -1).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    print(json.dumps({"tokens": n, "dim": a.shape[1], "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                      "p1_cosine": float(np.percentile(cos, 1))}))

def lengths(out, docs):
    rng = np.random.default_rng(0)
    lens = np.clip(rng.lognormal(mean=math.log(180), sigma=0.8, size=docs).astype(int), 8, 512)
    json.dump([int(x) for x in lens], open(out, "w"))

def parity_ids(out):
    rng = np.random.default_rng(3)
    lens = [1, 2, 63, 64, 65, 127, 128, 129, 130, 200, 256, 511, 512] + list(rng.integers(1, 513, 51))
    json.dump([[int(x) for x in rng.integers(5, 9000, int(n))] for n in lens], open(out, "w"))

def peers(directory, lengths_file, out):
    import torch
    model, head = load_reference_model(directory)
    lens = np.array(json.load(open(lengths_file))); n = len(lens); tok = int(lens.sum())
    vocab = model.config.vocab_size
    order = np.argsort(-lens); batches = []
    for i in range(0, n, 64):
        idx = order[i:i + 64]; L = int(math.ceil(lens[idx].max() / 64) * 64)
        ids = torch.randint(5, min(50000, vocab), (len(idx), L)); mask = torch.zeros(len(idx), L, dtype=torch.long)
        for j, k in enumerate(idx): mask[j, :lens[k]] = 1
        batches.append((ids.cuda(), mask.cuda()))
    res = {"docs": n, "tokens": tok, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for attn in ["sdpa"]:
        from transformers import AutoModel
        m = AutoModel.from_pretrained(directory, attn_implementation=attn, torch_dtype=torch.bfloat16).cuda().eval()
        ws = [w.cuda().to(torch.bfloat16) for w, _ in head]
        def f(a, b):
            x = m(input_ids=a, attention_mask=b).last_hidden_state
            for w in ws: x = x @ w.T
            return torch.nn.functional.normalize(x, dim=-1)
        for name, fn in [("eager", f), ("compile", torch.compile(f, dynamic=True))]:
            with torch.inference_mode():
                t0 = time.perf_counter()
                for a, b in batches[:: max(1, len(batches) // 12)]: fn(a, b)
                torch.cuda.synchronize(); warm = time.perf_counter() - t0
                t = time.perf_counter()
                for a, b in batches: fn(a, b)
                torch.cuda.synchronize(); dt = time.perf_counter() - t
            res[f"{attn}_{name}_bf16_tok_s"] = tok / dt; res[f"{attn}_{name}_warmup_s"] = warm
            print(f"torch {attn} {name} bf16 bs64: warmup {warm:.1f}s, {tok / dt:,.0f} tok/s", file=sys.stderr, flush=True)
    json.dump(res, open(out, "w"), indent=1)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-model": make_model(args[0])
    elif cmd == "lengths": lengths(args[0], int(args[2]) if len(args) > 2 else 20000)
    elif cmd == "parity-ids": parity_ids(args[0])
    elif cmd == "reference": reference(*args)
    elif cmd == "compare": compare(*args)
    elif cmd == "peers": peers(*args)
    else: sys.exit(__doc__)
