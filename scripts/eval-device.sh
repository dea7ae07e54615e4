#!/bin/bash
# Dev-split retrieval eval on the GPU machine (not yet run: see README "Retrieval quality").
# Staging, here (all under <main checkout>/.devrun/eval/, which git ignores; ≤ 64 MiB with the tree):
#   pack.tar.xz   (or grammars.tar.xz alone, with BIN_DIR naming a folder on that machine that holds colgrep and
#                 lib/, e.g. /tmp/rtbin left by routing_table.sh)
#                 colgrep (swift build -c release --static-swift-stdlib -Xlinker -L<dir with libcurl.so>,
#                 stripped), lib/ (every `ldd` dependency but libc/libm/libstdc++/libgcc_s),
#                 grammars/ (the dev split's grammar .so files + a manifest.json listing only them)
#   model.safetensors.xz + minilm/  all-MiniLM-L6-v2 as fp16, word-embedding rows that no token of the
#                 corpus or the queries uses set to zero (xz --lzma2=preset=9e,pb=1,lp=1), tokenizer.json.xz
#   corpus.tar.xz ~/.cache/colgrep-eval as materialize.py wrote it;  ev.tar.xz  shared/eval (score.py …)
# Run there: PAR_INDEX=4 PAR_Q=5 BUDGET=540 bash .devrun/eval/run.sh  (results in $OUT).
set -u
START=$(date +%s)
D=$(cd "$(dirname "$0")" && pwd); T=/tmp/ev; rm -rf $T; mkdir -p $T/minilm
if [ -f $D/pack.tar.xz ]; then tar xJf $D/pack.tar.xz -C $T
else # reuse the binary and libraries routing_table.sh unpacked on this machine earlier (BIN_DIR), and grammars.tar.xz
  mkdir -p $T/lib; cp ${BIN_DIR:-/tmp/rtbin}/colgrep $T/ && cp ${BIN_DIR:-/tmp/rtbin}/lib/* $T/lib/ && tar xJf $D/grammars.tar.xz -C $T || { echo "no pack.tar.xz and no binary in ${BIN_DIR:-/tmp/rtbin}"; exit 1; }
fi
cp -r $D/minilm/* $T/minilm/; xz -d $T/minilm/tokenizer.json.xz; xz -dc $D/model.safetensors.xz > $T/minilm/model.safetensors
tar xJf $D/ev.tar.xz -C $T
mkdir -p $HOME/.cache; tar xJf $D/corpus.tar.xz -C $HOME/.cache
export LD_LIBRARY_PATH=$T/lib:${LD_LIBRARY_PATH:-} COLGREP_GRAMMARS_DIR=$T/grammars COLGREP_DATA_DIR=$T/data
export COLGREP_FALLBACK_MODEL=$T/minilm XDG_CACHE_HOME=$T/cache NCCL_NVLS_ENABLE=0; unset COLGREP_PROFILE
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
B=$T/colgrep M=$T/minilm E=$T/ev
echo "cores $(nproc); $(nvidia-smi --query-gpu=name --format=csv,noheader); unpack $(( $(date +%s)-START )) s"
python3 -c "
import json,os
for r in json.load(open('$E/repos-dev.json')):
    root=os.path.expanduser('~/.cache/colgrep-eval/'+r['name']); b=r.get('benchmark_root') or ''
    print(r['name'], os.path.join(root,b) if b else root)" > $T/dirs.txt
index_one() { # name dir
  local s=$(date +%s.%N) how=gpu
  if ! $B init -y --force-gpu --model $M "$2" > $T/idx-$1.log 2>&1; then
    how=cpu; $B clear --model $M "$2" >/dev/null 2>&1; $B init -y --force-cpu --model $M "$2" >> $T/idx-$1.log 2>&1 || how=failed
  fi
  echo "$1 $how $(python3 -c "import time;print(round(time.time()-$s,1))")"
}
export -f index_one; export B M T E OUT
echo "== index"; cat $T/dirs.txt | timeout ${INDEX_LIMIT:-330} xargs -P ${PAR_INDEX:-3} -L1 bash -c 'index_one $0 $1' | tee $OUT/index.txt
grep -h -i "error\|fail" $T/idx-*.log | head -5
echo "index done $(( $(date +%s)-START )) s"
score() { # label flags...
  local label=$1; shift; mkdir -p $T/res/$label
  cut -d' ' -f1 $T/dirs.txt | xargs -P ${PAR_Q:-12} -I{} sh -c "python3 $E/score.py --repos $E/repos-dev.json --annotations $E/annotations --tool cmd --label $label --only {} --index-cmd 'true' --query-cmd '$B --json --no-update --force-cpu --model $M $* -k {k} {query} {dir}' --json $T/res/$label/{}.json > $T/res/$label/{}.log 2>&1"
  python3 - $T/res/$label $label <<'PY' | tee -a $OUT/summary.txt
import json,sys,glob
rs=[json.load(open(p))['repos'][0] for p in sorted(glob.glob(sys.argv[1]+'/*.json'))]
tasks=[t['ndcg10'] for r in rs for t in r['task_results']]
print(sys.argv[2], 'macro %.4f micro %.4f repos %d tasks %d' % (sum(r['ndcg10'] for r in rs)/len(rs), sum(tasks)/len(tasks), len(rs), len(tasks)), ' '.join('%s=%.3f' % (r['name'], r['ndcg10']) for r in rs))
PY
}
left=$(( ${BUDGET:-540} - ($(date +%s)-START) ))
echo "scoring with ${left} s left"
( timeout $left bash -c "$(declare -f score); score hybrid --code-only" ) &
( timeout $left bash -c "$(declare -f score); score semantic --code-only --semantic-only" ) &
( timeout $left bash -c "$(declare -f score); score fts --code-only --fts-only" ) &
wait
echo "scoring done $(( $(date +%s)-START )) s"
for label in hybrid semantic fts; do python3 - $T/res/$label $label-final <<'PY' | tee -a $OUT/summary.txt
import json,sys,glob
rs=[json.load(open(p))['repos'][0] for p in sorted(glob.glob(sys.argv[1]+'/*.json'))]
tasks=[t['ndcg10'] for r in rs for t in r['task_results']]
if rs: print(sys.argv[2], 'macro %.4f micro %.4f repos %d tasks %d' % (sum(r['ndcg10'] for r in rs)/len(rs), sum(tasks)/len(tasks), len(rs), len(tasks)), ' '.join('%s=%.3f' % (r['name'], r['ndcg10']) for r in rs))
PY
done
(cd $T && tar czf $OUT/results.tar.gz res idx-*.log dirs.txt)
