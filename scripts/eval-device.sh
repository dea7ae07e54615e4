#!/bin/bash
# Dev-split retrieval eval on the GPU machine (results in the README's "Retrieval quality" table).
# Staging in two folders (carried together: ≤ 64 MiB with the tree; the GPU machine's image already has
# OpenBLAS, SQLite, xxHash and libcurl, so no libraries travel unless lib/ holds some):
#   .devrun/eval5a: colgrep.xz (stripped static release build), optional lib/*.xz or lib/*.so.*,
#           grammars.tar.xz (the dev split's grammar .so files + a manifest.json listing only them),
#           corpus.tar.xz (~/.cache/colgrep-eval as materialize.py wrote it), ev.tar.xz (shared/eval:
#           score.py, materialize.py, repos-dev.json, annotations/)
#   .devrun/eval5b: model.safetensors.xz (all-MiniLM-L6-v2 as fp16, word-embedding rows that no token of
#           the corpus or the queries uses set to zero) + minilm/ (its config files, tokenizer.json.xz)
# `bash scripts/eval-stage.sh` writes both (as .devrun/eval/a and .devrun/eval/b), to be carried by two calls
# on one warm machine: `bash scripts/eval-device.sh unpack .devrun/eval/a`, then `bash scripts/eval-device.sh run .devrun/eval/b`.
# `run` indexes every repo on the GPU (CPU if that fails), then scores hybrid (every search traced through
# COLGREP_TRACE_JSON, for `colgrep debug replay-ranking`), semantic-only and FTS-only, all --code-only,
# queries encoded on the CPU (--force-cpu) as a user's one-shot search would. Env: PAR_INDEX, PAR_Q, BUDGET;
# VARIANTS="label:VAR=VALUE,… …" scores hybrid once per variant instead (e.g. search knobs such as COLGREP_N_FULL_SCORES).
# INDEX_ENV="VAR=VALUE …" sets the index step's environment (index knobs such as COLGREP_LLOYD_PROBES); LABEL_SUFFIX
# is appended to every score label. Every `run` indexes from scratch (its data folder is emptied first), so one
# warm machine can score several index settings by calling `run` once per setting.
set -u
START=$(date +%s)
T=/tmp/ev
mode=${1:?unpack or run}; D=$(cd "${2:?staging folder}" && pwd)
case $mode in
unpack)
  rm -rf $T; mkdir -p $T/lib $T/minilm
  python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/colgrep.xz'),open('$T/colgrep','wb'))" && chmod +x $T/colgrep
  for f in $D/lib/*; do [ -e "$f" ] || continue; case $f in *.xz) xz -dc $f > $T/lib/$(basename ${f%.xz});; *) cp $f $T/lib/;; esac; done
  tar xJf $D/grammars.tar.xz -C $T && tar xJf $D/ev.tar.xz -C $T
  mkdir -p $HOME/.cache && tar xJf $D/corpus.tar.xz -C $HOME/.cache
  LD_LIBRARY_PATH=$T/lib $T/colgrep --version && echo "unpacked in $(( $(date +%s)-START )) s" && touch $T/unpacked
  exit ;;
run)
  [ -f $T/unpacked ] || { echo "nothing unpacked in $T: run 'unpack' first on this machine (it was given back?)"; exit 3; } ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
cp -r $D/minilm/* $T/minilm/; xz -df $T/minilm/tokenizer.json.xz; xz -dc $D/model.safetensors.xz > $T/minilm/model.safetensors
export LD_LIBRARY_PATH=$T/lib:${LD_LIBRARY_PATH:-} COLGREP_GRAMMARS_DIR=$T/grammars COLGREP_DATA_DIR=$T/data
export COLGREP_FALLBACK_MODEL=$T/minilm XDG_CACHE_HOME=$T/cache NCCL_NVLS_ENABLE=0; unset COLGREP_PROFILE
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
B=$T/colgrep M=$T/minilm E=$T/ev
echo "cores $(nproc); $(nvidia-smi --query-gpu=name --format=csv,noheader | paste -sd,); model in $(( $(date +%s)-START )) s"
python3 -c "
import json,os
for r in json.load(open('$E/repos-dev.json')):
    root=os.path.expanduser('~/.cache/colgrep-eval/'+r['name']); b=r.get('benchmark_root') or ''
    print(r['name'], os.path.join(root,b) if b else root)" > $T/dirs.txt
index_one() { # name dir
  local s=$(date +%s.%N) how=gpu
  if ! env $INDEX_ENV $B init -y --force-gpu --model $M "$2" > $T/idx-$1.log 2>&1; then
    how=cpu; $B clear --model $M "$2" >/dev/null 2>&1; env $INDEX_ENV $B init -y --force-cpu --model $M "$2" >> $T/idx-$1.log 2>&1 || how=failed
  fi
  echo "$1 $how $(python3 -c "import time;print(round(time.time()-$s,1))")"
}
INDEX_ENV=${INDEX_ENV:-}; S=${LABEL_SUFFIX:-}; rm -rf $COLGREP_DATA_DIR $T/res $T/trace
echo "index environment: ${INDEX_ENV:-(none)}"
export -f index_one; export B M T E OUT INDEX_ENV
echo "== index"; cat $T/dirs.txt | timeout ${INDEX_LIMIT:-240} xargs -P ${PAR_INDEX:-4} -L1 bash -c 'index_one $0 $1' | tee $OUT/index.txt
grep -h -i "error\|fail" $T/idx-*.log | head -5
echo "index done $(( $(date +%s)-START )) s"
mkdir -p $T/trace
score() { # label env-prefix flags...
  local label=$1 prefix=$2; shift 2; mkdir -p $T/res/$label
  cut -d' ' -f1 $T/dirs.txt | xargs -P ${PAR_Q:-5} -I{} sh -c "python3 $E/score.py --repos $E/repos-dev.json --annotations $E/annotations --tool cmd --label $label --only {} --index-cmd 'true' --query-cmd '$prefix $B --json --no-update --force-cpu --model $M $* -k {k} {query} {dir}' --json $T/res/$label/{}.json > $T/res/$label/{}.log 2>&1"
}
summary() { # label
  python3 - $T/res/$1 $1 <<'PY' | tee -a $OUT/summary.txt
import json,sys,glob
rs=[json.load(open(p))['repos'][0] for p in sorted(glob.glob(sys.argv[1]+'/*.json'))]
tasks=[t['ndcg10'] for r in rs for t in r['task_results']]
if rs: print(sys.argv[2], 'macro %.4f micro %.4f repos %d tasks %d' % (sum(r['ndcg10'] for r in rs)/len(rs), sum(tasks)/len(tasks), len(rs), len(tasks)), ' '.join('%s=%.3f' % (r['name'], r['ndcg10']) for r in rs))
PY
}
left=$(( ${BUDGET:-480} - ($(date +%s)-START) ))
echo "scoring with ${left} s left"
labels=""
if [ -z "${VARIANTS:-}" ]; then
  ( timeout $left bash -c "$(declare -f score); score hybrid$S 'COLGREP_TRACE_JSON=$T/trace/{}.jsonl' --code-only" ) &
  ( timeout $left bash -c "$(declare -f score); score semantic$S '' --code-only --semantic-only" ) &
  ( timeout $left bash -c "$(declare -f score); score fts$S '' --code-only --fts-only" ) &
  labels="hybrid$S semantic$S fts$S"
else # VARIANTS="label:VAR=VALUE,VAR=VALUE …": hybrid searches under each variant's environment
  for v in $VARIANTS; do
    label=${v%%:*}; prefix=$(echo ${v#*:} | tr ',' ' '); labels="$labels $label"
    ( timeout $left bash -c "$(declare -f score); score $label '$prefix' --code-only" ) &
  done
fi
wait
echo "scoring done $(( $(date +%s)-START )) s"
for label in $labels; do summary $label; done
(cd $T && tar cJf $OUT/results$S.tar.xz res idx-*.log dirs.txt) && (cd $T && tar cJf $OUT/traces$S.tar.xz trace)
ls -la $OUT
