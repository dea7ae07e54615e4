#!/usr/bin/env python3
"""HF `tokenizers` peer for `colgrep bench tokenizer` (not part of tests or CI).

Usage: PYTHON tokenizer_peer.py --tokenizer tokenizer.json --texts texts.json --threads N --out result.json
       [--no-truncation]
Encodes the texts (a JSON list of strings) with encode_batch on N rayon threads, once to warm up and then
timed, and writes {"tokens": total ids, "seconds": wall time of the timed pass}.
Install: python3 -m venv .venv-bench && .venv-bench/bin/pip install tokenizers
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--tokenizer", required=True)
parser.add_argument("--texts", required=True)
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--no-truncation", action="store_true")
args = parser.parse_args()

# rayon reads its pool size when the pool first starts, so set it before importing tokenizers.
os.environ["RAYON_NUM_THREADS"] = str(args.threads)
os.environ["RAYON_RS_NUM_CPUS"] = str(args.threads)
os.environ["TOKENIZERS_PARALLELISM"] = "true"
from tokenizers import Tokenizer  # noqa: E402

tok = Tokenizer.from_file(args.tokenizer)
tok.no_padding()
if args.no_truncation:
    tok.no_truncation()
texts = json.load(open(args.texts))
tok.encode_batch(texts[: max(1, len(texts) // 10)])
start = time.perf_counter()
encodings = tok.encode_batch(texts)
seconds = time.perf_counter() - start
json.dump({"tokens": sum(len(e.ids) for e in encodings), "seconds": seconds}, open(args.out, "w"))
print("hf tokenizers %s: %d tokens in %.3f s" % (__import__("tokenizers").__version__,
      sum(len(e.ids) for e in encodings), seconds), file=sys.stderr)
