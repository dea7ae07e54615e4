#!/bin/bash
# Session 6, route helper: cold `colgrep init` before/after on the GPU machine (16 CPU cores + 1 GPU),
# interleaved in one call, per-stage profiles (COLGREP_PROFILE=1) kept.
#   base = main 7ce3b21 (= 32fb8ef's sources; session 5's cli5 binary), new = branch route (streamed codec).
# small = this repo's Sources (165 files), medium = nvim-lspconfig (427 files), both CPU only
# (COLGREP_FORCE_CPU=1, 16 threads); large = 20 eval checkouts + CPython lib (5,372 files) with the
# default routing (GPU + CPU). Model: MiniLM shapes, random weights made here (timings do not depend
# on the values). Staged like .devrun/cli5 (see scripts/bench/cli_device_run.sh) in <repo>/.devrun/route6/:
# colgrep-base.xz and colgrep-new.xz (stripped static release builds, `bash scripts/build-release.sh`),
# lib/{libopenblas.so.0,libgfortran.so.5,libquadmath.so.0}.xz, grammars.tar.xz (.deps/grammars/linux-x86_64),
# minilm/ (the fallback model's small files, no weights), repos.tar.xz (small/ medium/ large/), this script
# as run.sh; on the GPU machine: bash .devrun/route6/run.sh (results in $OUT: summary.md, logs.tgz).
# The local 2-core A/B used the same `cold` function (docs/PERFORMANCE.md, session 6).
set -u
cd "$(dirname "$0")"; D=$PWD
W=/tmp/r6; mkdir -p $W/lib $W/grammars $W/repos
python3 - "$D" "$W" <<'PY'
import lzma, shutil, sys
d, w = sys.argv[1:]
for src, dst in [("colgrep-base.xz", "base"), ("colgrep-new.xz", "new"), ("lib/libopenblas.so.0.xz", "lib/libopenblas.so.0"),
                 ("lib/libgfortran.so.5.xz", "lib/libgfortran.so.5"), ("lib/libquadmath.so.0.xz", "lib/libquadmath.so.0")]:
    shutil.copyfileobj(lzma.open(f"{d}/{src}"), open(f"{w}/{dst}", "wb"))
PY
chmod +x $W/base $W/new
export LD_LIBRARY_PATH=$W/lib:${LD_LIBRARY_PATH:-}
tar xJf $D/grammars.tar.xz -C $W/grammars
tar xJf $D/repos.tar.xz -C $W/repos
cp -r $D/minilm $W/minilm
python3 - $W/minilm <<'PY'
import sys, torch
from transformers import BertConfig, BertModel
torch.manual_seed(0)
BertModel(BertConfig.from_pretrained(sys.argv[1]), add_pooling_layer=False).save_pretrained(sys.argv[1] + "/random", safe_serialization=True)
PY
mv $W/minilm/random/model.safetensors $W/minilm/model.safetensors
export COLGREP_FALLBACK_MODEL=$W/minilm COLGREP_GRAMMARS_DIR=$W/grammars XDG_CACHE_HOME=$W/xdg
export COLGREP_CUDA_LIBRARY_PATH=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
L=$W/logs; mkdir -p $L
S=$OUT/summary.md
{ echo "# route6 $(date -u +%FT%TZ)"; nproc; nvidia-smi --query-gpu=name --format=csv,noheader; uptime; } > $S
TIMEFORMAT='%R %U %S'
# cold BIN NAME REPO [env...]: fresh data folder, profile to $L/BIN-NAME-N.err, one summary line.
n=0
cold() {
  local bin=$1 name=$2 repo=$3; shift 3; n=$((n + 1))
  local data=$W/data-$n log=$L/$bin-$name-$n.err
  rm -rf $data
  local t; t=$( { time env "$@" COLGREP_DATA_DIR=$data COLGREP_PROFILE=1 $W/$bin init -y $W/repos/$repo > /dev/null 2> $log ; } 2>&1 )
  python3 - "$log" "$bin" "$name" "$t" >> $S <<'PY'
import re, sys
log, binary, name, t = sys.argv[1:]
wall, user, system = map(float, t.split())
tokens = busy = total = 0.0
for line in open(log):
    m = re.search(r"([0-9.]+) (ms|s)\b", line)
    if not m: continue
    v = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    r = re.search(r"routing actual: encode ([0-9.]+) s", line)
    if r: busy = float(r.group(1))  # wall spent inside the encoder (all devices)
    elif re.match(r"\s*encode\[", line): tokens += float(re.search(r"tokens=(\d+)", line).group(1))
    elif re.match(r"\s*total wall", line): total = v
print(f"| {binary} | {name} | {wall:.2f} s | {user + system:.1f} s | {total:.2f} s | {busy:.2f} s | {100 * busy / total if total else 0:.0f} % | {tokens / total / 1000 if total else 0:.1f}k |")
PY
}
echo "| binary | repo | wall | CPU (user+sys) | profile total | encode busy | busy / total | tokens/s e2e |" >> $S
echo "|---|---|---|---|---|---|---|---|" >> $S
# Warm-ups (int8 choices and GPU kernels cached, page cache), not counted.
cold new warm small COLGREP_FORCE_CPU=1; cold base warm small COLGREP_FORCE_CPU=1; cold new warmgpu medium
for round in 1 2; do
  for bin in $([ $round = 1 ] && echo "base new" || echo "new base"); do
    cold $bin small small COLGREP_FORCE_CPU=1
    cold $bin medium medium COLGREP_FORCE_CPU=1
  done
done
cold new large large
cold base large large
uptime >> $S
(cd $L && tar czf $OUT/logs.tgz .)
cat $S
