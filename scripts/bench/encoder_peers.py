"""Peers of `colgrep bench encoder`: PyTorch CPU fp32 (eager, SDPA), ONNX Runtime CPU fp32 and ONNX Runtime
CPU dynamic INT8 (ColGREP's engine) on the synthetic Ettin-17M-shaped ColBERT encoder of /work/shared/bench/torch_baseline.py
and ort_baseline.py (random weights, ModernBERT hidden 256 / intermediate 384 / 7 layers / 4 heads, global
attention every 3rd layer, 128-token window, head 256 → 512 → 48, L2 norm), padded length-sorted batches of 32.

Run by colgrep itself (`colgrep bench encoder --python .venv-bench/bin/python`); by hand:
    python encoder_peers.py --threads 2 --docs 1500 --out /tmp/peers.json
Writes {"lengths": [...], "torch_tok_s": …, "ort_fp32_tok_s": …, "ort_int8_tok_s": …} to --out. Lengths: numpy default_rng(0),
lognormal(log 180, 0.8) clipped to 8–512, the first --docs values (the same documents the anchors time).
"""
import argparse, json, math, os, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--docs", type=int, default=1500)
parser.add_argument("--out", required=True)
parser.add_argument("--lengths-only", action="store_true")
args = parser.parse_args()

import numpy as np
rng = np.random.default_rng(0)
lens = np.clip(rng.lognormal(mean=math.log(180), sigma=0.8, size=max(args.docs, 1)).astype(int), 8, 512)[:args.docs]
result = {"lengths": [int(x) for x in lens]}
if args.lengths_only:
    json.dump(result, open(args.out, "w")); sys.exit(0)

import torch
from transformers import ModernBertConfig, ModernBertModel
import onnxruntime as ort
from onnxruntime.quantization import quantize_dynamic, QuantType

torch.manual_seed(0)
cfg = ModernBertConfig(vocab_size=50368, hidden_size=256, intermediate_size=384, num_hidden_layers=7,
    num_attention_heads=4, global_attn_every_n_layers=3, local_attention=128, max_position_embeddings=8192,
    global_rope_theta=160000.0, local_rope_theta=10000.0, norm_eps=1e-5)
proj = torch.nn.Sequential(torch.nn.Linear(256, 512, bias=False), torch.nn.Linear(512, 48, bias=False))
order = np.argsort(-lens); tokens = int(lens.sum())
feed_rng = np.random.default_rng(1)
feeds = []
for i in range(0, len(lens), 32):
    idx = order[i:i + 32]; L = int(lens[idx].max())
    ids = feed_rng.integers(5, 50000, (len(idx), L)).astype(np.int64); mask = np.zeros((len(idx), L), np.int64)
    for j, k in enumerate(idx): mask[j, :lens[k]] = 1
    feeds.append((ids, mask))

torch.set_num_threads(args.threads)
model = ModernBertModel._from_config(cfg, attn_implementation="sdpa").eval()
with torch.inference_mode():
    def run_torch(a, b):
        return torch.nn.functional.normalize(proj(model(input_ids=a, attention_mask=b).last_hidden_state), dim=-1)
    run_torch(torch.from_numpy(feeds[-1][0]), torch.from_numpy(feeds[-1][1]))  # warm-up
    t = time.perf_counter()
    for a, b in feeds: run_torch(torch.from_numpy(a), torch.from_numpy(b))
    result["torch_tok_s"] = tokens / (time.perf_counter() - t)
print(f"torch cpu fp32 {args.threads}t: {result['torch_tok_s']:,.0f} tok/s", file=sys.stderr, flush=True)

eager = ModernBertModel._from_config(cfg, attn_implementation="eager").eval()
eager.load_state_dict(model.state_dict())
class Wrapped(torch.nn.Module):
    def __init__(s): super().__init__(); s.m = eager; s.p = proj
    def forward(s, a, b):
        return torch.nn.functional.normalize(s.p(s.m(input_ids=a, attention_mask=b).last_hidden_state), dim=-1)
work = tempfile.mkdtemp(prefix="colgrep-bench-")
fp32, int8 = os.path.join(work, "enc.onnx"), os.path.join(work, "enc_int8.onnx")
a = torch.randint(5, 50000, (2, 64)); b = torch.ones(2, 64, dtype=torch.long)
torch.onnx.export(Wrapped().eval(), (a, b), fp32, input_names=["input_ids", "attention_mask"], output_names=["output"],
    dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "output": {0: "b", 1: "s"}},
    opset_version=17, dynamo=False)
quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
so = ort.SessionOptions(); so.intra_op_num_threads = args.threads; so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
for name, path in [("fp32", fp32), ("int8", int8)]:
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    session.run(None, {"input_ids": feeds[-1][0], "attention_mask": feeds[-1][1]})  # warm-up
    t = time.perf_counter()
    for ids, mask in feeds: session.run(None, {"input_ids": ids, "attention_mask": mask})
    result[f"ort_{name}_tok_s"] = tokens / (time.perf_counter() - t)
    print(f"ort cpu {name} {args.threads}t: {result[f'ort_{name}_tok_s']:,.0f} tok/s", file=sys.stderr, flush=True)
json.dump(result, open(args.out, "w"))
