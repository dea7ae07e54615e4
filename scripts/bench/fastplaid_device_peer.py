"""fast-plaid's CUDA path as issue #5's GPU peer ("close to its H100 path").

Runs the project's CPU baseline script (shared/bench/fastplaid_baseline.py, given as the first argument) exactly as
written, with the one difference that its index is created on FASTPLAID_DEVICE (default "cuda") instead of "cpu":
the same synthetic data, timings, brute-force recall and JSON. The rest of the command line goes to that script.

    python3 fastplaid_device_peer.py fastplaid_baseline.py --n-docs 100000 --threads 16 --n-queries 50 --out r.json
"""
import os
import sys

script = sys.argv[1]
source = open(script).read()
device = os.environ.get("FASTPLAID_DEVICE", "cuda")
patched = source.replace('device="cpu"', f'device="{device}"')
if patched == source:
    sys.exit(f"{script}: no device=\"cpu\" to replace; the baseline changed, so this wrapper must be checked again")
sys.argv = [script] + sys.argv[2:]
exec(compile(patched, script, "exec"), {"__name__": "__main__", "__file__": script})
