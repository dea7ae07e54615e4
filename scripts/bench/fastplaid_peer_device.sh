#!/bin/bash
# Issue #5's GPU peer on the device machine: fast-plaid 1.7 with its CUDA path at 100k units (128-d, 4-bit) through
# fastplaid_device_peer.py, and ours (`colgrep bench search`, CPU, 2 threads) at the same size in the same call.
# The machine has torch but no fast-plaid and no network: the staging folder carries the wheels
# (wheels/fast_plaid-1.7.0.<torch tag>-cp312-*.whl for torch 2.7.0 … 2.11.0, fastkmeans 0.5.0, usearch, numkong, joblib,
# filelock, tqdm: `pip download --no-deps --python-version 3.12 --only-binary=:all:`), fastplaid_baseline.py (the
# shared script), fastplaid_device_peer.py, colgrep.xz and lib/*.xz. The wheel matching the machine's torch is unpacked
# into /tmp/fp (a wheel is a zip), with the others, and put on PYTHONPATH. Results: $OUT/fastplaid-cuda.json,
# $OUT/ours.json, $OUT/peer-summary.txt.
#   DOCS=100000 QUERIES=50 CORES=2,3 bash fastplaid_peer_device.sh
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/fp-out}; DOCS=${DOCS:-100000}; QUERIES=${QUERIES:-50}; CORES=${CORES:-2,3}
mkdir -p "$OUT" /tmp/fp /tmp/fpbin/lib
tag=$(python3 -c "import torch; print(torch.__version__.split('+')[0].replace('.', ''))")
echo "torch $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'), python $(python3 -V), fast-plaid tag $tag" | tee "$OUT/peer-summary.txt"
wheel=$(ls "$D"/wheels/fast_plaid-1.7.0."$tag"-*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "no fast-plaid wheel for torch tag $tag in $D/wheels" | tee -a "$OUT/peer-summary.txt"; exit 3; }
python3 - "$wheel" "$D/wheels" <<'PY'
import glob, importlib.util, os, sys, zipfile
chosen, folder = sys.argv[1], sys.argv[2]
for wheel in [chosen] + [w for w in glob.glob(folder + "/*.whl") if "fast_plaid" not in os.path.basename(w)]:
    module = os.path.basename(wheel).split("-")[0]
    if "fast_plaid" not in module and importlib.util.find_spec(module) is not None:
        continue  # the machine's own copy stays
    zipfile.ZipFile(wheel).extractall("/tmp/fp")
PY
export PYTHONPATH=/tmp/fp:${PYTHONPATH:-}
python3 -c "import fast_plaid, importlib.metadata as m; print('fast-plaid', m.version('fast-plaid'))" 2>&1 | tee -a "$OUT/peer-summary.txt"
echo "== fast-plaid, cuda, $DOCS documents"
python3 "$D/fastplaid_device_peer.py" "$D/fastplaid_baseline.py" --n-docs "$DOCS" --threads 16 --n-queries "$QUERIES" \
    --index-dir /tmp/fp-index --no-batch --out "$OUT/fastplaid-cuda.json" 2>&1 | tail -6
echo "== ours, CPU cores $CORES, $DOCS documents"
python3 -c "import lzma,shutil,glob,os,sys
shutil.copyfileobj(lzma.open(sys.argv[1]+'/colgrep.xz'),open('/tmp/fpbin/colgrep','wb'))
for f in glob.glob(sys.argv[1]+'/lib/*.xz'): shutil.copyfileobj(lzma.open(f),open('/tmp/fpbin/lib/'+os.path.basename(f)[:-3],'wb'))" "$D"
chmod +x /tmp/fpbin/colgrep
LD_LIBRARY_PATH=/tmp/fpbin/lib:${LD_LIBRARY_PATH:-} taskset -c "$CORES" /tmp/fpbin/colgrep bench search --dims 128 --nbits 4 \
    --documents "$DOCS" --no-peer --threads 2 --queries 100 --brute-force-queries "$QUERIES" --work-directory /tmp --json \
    > "$OUT/ours.json" 2> "$OUT/ours.err"; tail -3 "$OUT/ours.err"
python3 - "$OUT" <<'PY' | tee -a "$OUT/peer-summary.txt"
import json, sys
out = sys.argv[1]
try: fp = json.load(open(out + "/fastplaid-cuda.json"))
except Exception as e: fp = {}; print("fast-plaid: no result", e)
print("fast-plaid cuda:", {k: v for k, v in fp.items() if not isinstance(v, (dict, list))})
try:
    ours = json.load(open(out + "/ours.json"))
    for run in ours["runs"]: print("ours:", {k: v for k, v in run.items() if not isinstance(v, (dict, list))})
except Exception as e: print("ours: no result", e)
PY
