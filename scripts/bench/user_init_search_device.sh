#!/bin/bash
# A user's cold `colgrep init DIR -y` (auto routing, a fresh data folder, timed from outside the process) and
# one-shot search latency, on the GPU machine, for same-call A/B (docs/PERFORMANCE.md, "Acceleration routing →
# Session 19"). Stage the folder as for index_stages_device.sh (colgrep-<name>.xz for each of BINARIES, lib/,
# grammars/, tokenizer.json, synthetic_edge_model.py, index_stages_device.sh and this script), then run
#   BINARIES="base new" VARIANTS="base:X=0 new:X=0 new-s4:COLGREP_KEYWORD_SHARDS=4" CORPUS=huge bash user_init_search_device.sh
# A variant is label:VAR=value[,VAR=value]; its binary is the label's part before the first '-'. ROUNDS (3) rounds,
# alternating; the last round's indexes are searched (ten queries, hybrid and --semantic-only, ROUNDS rounds).
# TRACE=1 also writes each init's timeline (COLGREP_TRACE) to /tmp/tr/user-<label>-r<round>.json (read it with
# trace_spans.py; tracing adds ~0.1 s at exit).
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/user-init-out}; mkdir -p $OUT /tmp/tr
BUDGET=560 VARIANTS="base" ROUNDS=0 HUGE=1 OUT=/tmp/setup bash $D/index_stages_device.sh > $OUT/setup.txt 2>&1
export LD_LIBRARY_PATH=/tmp/isbin/lib COLGREP_GRAMMARS_DIR=$D/grammars XDG_CACHE_HOME=/tmp/ist/cache TMPDIR=/tmp/ist NCCL_NVLS_ENABLE=0
M=/tmp/ist/model; C=/tmp/ist/c/${CORPUS:-large}; R=${ROUNDS:-3}
now() { date +%s.%N; }
d() { python3 -c "print(round($2-$1,3))"; }
for r in $(seq 1 $R); do for v in $VARIANTS; do
  label=${v%%:*}; env=${v#*:}; b=${label%%-*}; l=user-$label-r$r; D2=/tmp/ist/data-$l
  st=$(now)
  env ${env//,/ } ${TRACE:+COLGREP_TRACE=/tmp/tr/$l.json} COLGREP_DATA_DIR=$D2 COLGREP_PROFILE=1 /tmp/isbin/colgrep-$b init $C --model $M -y > /dev/null 2> /tmp/tr/$l.txt
  rc=$?; e=$(now)
  echo "== $l: rc $rc process wall $(d $st $e) s; $(grep -E 'GPUs: ' /tmp/tr/$l.txt | cut -c1-40)" >> $OUT/summary.txt
  grep -E "^  store(: rows|: rows: unit_content|: commit)? " /tmp/tr/$l.txt | tr -s ' ' >> $OUT/summary.txt
  [ $r = $R ] || rm -rf $D2
done; done
Q=("attention mask" "load pretrained weights" "gradient checkpointing" "rotary embedding" "tokenizer padding side" "distributed data parallel" "quantization config" "beam search" "cache key value" "learning rate scheduler")
for rr in $(seq 1 $R); do for v in $VARIANTS; do for mode in --alpha=0.55 --semantic-only; do
  label=${v%%:*}; b=${label%%-*}; D2=/tmp/ist/data-user-$label-r$R
  st=$(now)
  for q in "${Q[@]}"; do COLGREP_NO_SERVER=1 COLGREP_DATA_DIR=$D2 /tmp/isbin/colgrep-$b search $mode "$q" $C --model $M -k 10 > /dev/null 2>&1; done
  e=$(now); echo "search $label $mode round $rr: 10 queries $(d $st $e) s" >> $OUT/summary.txt
done; done; done
for v in $VARIANTS; do label=${v%%:*}; b=${label%%-*}; echo "-- $label profile:" >> $OUT/summary.txt
  COLGREP_NO_SERVER=1 COLGREP_PROFILE=1 COLGREP_DATA_DIR=/tmp/ist/data-user-$label-r$R /tmp/isbin/colgrep-$b search "cache key value" $C --model $M -k 10 2>&1 >/dev/null | grep -E "search|total wall" >> $OUT/summary.txt
done
cat $OUT/summary.txt
