#!/bin/bash
# cuBLASLt's timed algorithm choices kept in the kernel cache (session 13, helper tune8; issues #7 and #9).
# Separate processes of `colgrep bench encoder-gpu` (Ettin-17M shape, 20,000 synthetic documents, one timed pass)
# with the compiled kernels cached in every run and the cuBLASLt choices (*.algo in the kernel cache):
#   cold  - removed first: the process times its shapes and writes them;
#   warm  - kept from the run before: the process loads them (cublaslt_timed 0);
#   off   - COLGREP_CUBLASLT_TUNE=1: no timing, the heuristic's answers (the floor for first_pass_s).
# first_pass_s is the first pass over the workload before any warm-up (BenchEncoderGPU). Then `warm-cache
# --provider cuda` on an empty cache followed by a bench (should time nothing), and `debug gpu-selftest`.
# Stage (build machine) .devrun/<name>/: colgrep.xz (stripped static release, xz), lib/*.xz (libopenblas.so.0,
# libgfortran.so.5, libquadmath.so.0), gpu_encoder.py and this script; run `bash .devrun/<name>/tuned_algorithms_device.sh`.
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/tuned-out}; mkdir -p $OUT /tmp/t8/lib
python3 -c "import lzma,shutil,glob,os;shutil.copyfileobj(lzma.open('$D/colgrep.xz'),open('/tmp/t8/colgrep','wb'));[shutil.copyfileobj(lzma.open(f),open('/tmp/t8/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
chmod +x /tmp/t8/colgrep; C=/tmp/t8/colgrep
export LD_LIBRARY_PATH=/tmp/t8/lib:${LD_LIBRARY_PATH:-}
export COLGREP_CUDA_LIBRARY_PATH=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1; nproc; } | tee $OUT/env.txt
python3 $D/gpu_encoder.py make-model /tmp/ettin > /dev/null 2>&1; python3 $D/gpu_encoder.py lengths /tmp/lengths.json --docs 20000 > /dev/null 2>&1
export XDG_CACHE_HOME=/tmp/t8/cache; rm -rf $XDG_CACHE_HOME; K=$XDG_CACHE_HOME/colgrep/kernels
bench() { # label [VAR=value ...]
  local label=$1; shift
  env "$@" timeout 60 $C bench encoder-gpu --model /tmp/ettin --lengths /tmp/lengths.json --streams 3 --repeats 1 --python "" --json > $OUT/bench-$label.json 2> $OUT/bench-$label.err
  python3 - $OUT/bench-$label.json $label <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:8s} first_pass_s {r['first_pass_s']:.3f}  timed {r['cublaslt_timed']:2d}  loaded {r['cublaslt_loaded']:2d}  tok/s {r['ours_tok_s']/1e6:.2f}M  {r['backend']}")
for line in r['cublaslt_tuning']: print('         ', line)
PY
}
bench compile COLGREP_CUBLASLT_TUNE=1 > /dev/null  # kernels compiled into the cache, no choices stored
for round in 1 2; do
  rm -f $K/*.algo; bench cold-$round | head -1; echo "  files: $(ls $K/*.algo 2>/dev/null | wc -l) .algo"
  bench warm-$round | head -1
  bench off-$round COLGREP_CUBLASLT_TUNE=1 | head -1
done
bench warm-3 | tail -n +2 | head -12  # what a warm process says about each shape
echo "== warm-cache on an empty cache, then a bench"
rm -rf /tmp/t8/wc; XDG_CACHE_HOME=/tmp/t8/wc timeout 120 $C warm-cache --provider cuda --model /tmp/ettin > $OUT/warm-cache.txt 2>&1; echo "rc=$?"
grep -i "cublaslt\|nothing\|error" $OUT/warm-cache.txt
XDG_CACHE_HOME=/tmp/t8/wc bench after-warm-cache | head -1
echo "== self-test"
XDG_CACHE_HOME=/tmp/t8/st timeout 150 $C debug gpu-selftest > $OUT/selftest.txt 2>&1; echo "rc=$? PASS $(grep -c PASS $OUT/selftest.txt) FAIL $(grep -c FAIL $OUT/selftest.txt)"
grep FAIL $OUT/selftest.txt | head; grep "cuBLASLt" $OUT/selftest.txt
