#!/bin/bash
# Cold index before/after on the GPU machine (1 GPU + 16 cores), one call, binaries alternating
# (session 7, route helper; session 6's version measured small/medium/large with MiniLM only).
#   base, new: two stripped static release binaries (colgrep-base.xz, colgrep-new.xz), e.g. main vs a branch.
# A: transformers/models up to nomic_bert (routing_table.sh's large corpus), Ettin-17M-shaped random model,
#    `bench index-stages` (every stage alone, then a cold init; GPU 0) new then base, then init-only base, new.
# B: the large MiniLM repository set (repos.tar.xz: large/ = eval checkouts + CPython lib, 5,372 files),
#    random-weight MiniLM, cold `init` with COLGREP_PROFILE=1, new then base (kernels and calibration warmed
#    first for both models, so neither run pays a cold start the other does not).
# Stage a folder (e.g. .devrun/route7/) with: colgrep-base.xz, colgrep-new.xz, lib/ (libopenblas.so.0.xz,
# libgfortran.so.5.xz, libquadmath.so.0.xz), grammars.tar.xz (manifest.json + grammar .so files), repos.tar.xz,
# minilm/ (all-MiniLM-L6-v2 without its weights: made here with torch), tokenizer.json, synthetic_edge_model.py
# and this script. Run: BUDGET=280 bash .devrun/route7/run.sh   (results: $OUT/summary.md, $OUT/logs.tgz)
set -u
START=$(date +%s); BUDGET=${BUDGET:-285}
cd "$(dirname "$0")"; D=$PWD
W=/tmp/r7; rm -rf $W; mkdir -p $W/lib $W/grammars $W/repos $W/c/large
python3 - "$D" "$W" <<'PY'
import lzma, shutil, sys
d, w = sys.argv[1:]
for src, dst in [("colgrep-base.xz", "base"), ("colgrep-new.xz", "new"), ("lib/libopenblas.so.0.xz", "lib/libopenblas.so.0"),
                 ("lib/libgfortran.so.5.xz", "lib/libgfortran.so.5"), ("lib/libquadmath.so.0.xz", "lib/libquadmath.so.0")]:
    shutil.copyfileobj(lzma.open(f"{d}/{src}"), open(f"{w}/{dst}", "wb"))
PY
chmod +x $W/base $W/new
export LD_LIBRARY_PATH=$W/lib:${LD_LIBRARY_PATH:-} NCCL_NVLS_ENABLE=0
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
python3 $D/synthetic_edge_model.py $W/ettin $D/tokenizer.json > /dev/null
SITE=$(python3 -c 'import transformers,os;print(os.path.dirname(os.path.dirname(transformers.__file__)))')
for m in $(ls $SITE/transformers/models | sort); do [[ "$m" > nomic_bert ]] && break; cp -r $SITE/transformers/models/$m $W/c/large/; done
export COLGREP_FALLBACK_MODEL=$W/minilm COLGREP_GRAMMARS_DIR=$W/grammars XDG_CACHE_HOME=$W/xdg TMPDIR=$W
export COLGREP_CUDA_LIBRARY_PATH=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
L=$W/logs; mkdir -p $L; S=$OUT/summary.md
{ echo "# route7 $(date -u +%FT%TZ)"; nproc; nvidia-smi --query-gpu=name --format=csv,noheader; uptime
  echo "corpus A: $(find $W/c/large -type f -name '*.py' | wc -l) .py files"; } > $S
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# Kernels compiled and cost models calibrated once for both models (shared cache), outside the measured runs.
$W/new warm-cache --model $W/ettin > $L/warm-ettin.txt 2>&1
$W/new warm-cache --model $W/minilm > $L/warm-minilm.txt 2>&1
echo "setup + warm-cache done at $(( $(date +%s) - START )) s" >> $S
TIMEFORMAT='%R %U %S'
stages() { # BIN LABEL [--init-only]
  local l=$(left); if [ $l -lt 40 ]; then echo "A $1 $2: skipped (budget)" >> $S; return; fi
  local t; t=$( { time timeout $l $W/$1 bench index-stages $W/c/large --model $W/ettin --force-gpu --devices 0 --json ${3:-} > $L/A-$1-$2.json 2> $L/A-$1-$2.txt ; } 2>&1 )
  echo "== A $1 $2 ${3:-} (process wall/user/sys: $t)" >> $S
  grep -E "^(store|store rows|tokenize|embedding text|encode|codec|lanes|bound|cold init)" $L/A-$1-$2.txt >> $S
  grep -E "^  (store|model: wait|encode.prepare|tokenize|codec \+ index append|total wall)" $L/A-$1-$2.txt >> $S
}
n=0
cold() { # BIN REPO
  local l=$(left); if [ $l -lt 45 ]; then echo "B $1 $2: skipped (budget)" >> $S; return; fi
  n=$((n + 1)); local data=$W/data-$n log=$L/B-$1-$2-$n.err
  local t; t=$( { time timeout $l env COLGREP_DATA_DIR=$data COLGREP_PROFILE=1 $W/$1 init -y $W/repos/$2 > /dev/null 2> $log ; } 2>&1 )
  echo "== B $1 $2 (wall/user/sys: $t)" >> $S
  grep -E "^  (store|model: wait|encode|codec \+ index append|k-means|parse|tokenize|embedding text|pool|routing actual|total wall|peak)" $log >> $S
  rm -rf $data
}
stages new full; stages base full
cold new large; cold base large
stages base init2 --init-only; stages new init2 --init-only
uptime >> $S
(cd $L && tar czf $OUT/logs.tgz .)
cat $S
