#!/bin/bash
# Staging (session 10 used .devrun/route10/): this script, colgrep-main.xz and colgrep-route2.xz with COMMIT_MAIN / COMMIT_ROUTE2, and probe (scripts/bench/cpu_probe.c built with `cc -O2 -static`), lib/ (libopenblas.so.0.xz,
# libgfortran.so.5, libquadmath.so.0), grammars/ (manifest.json + libtree_sitter_python.so), tokenizer.json and
# synthetic_edge_model.py, as in index_stages_device.sh. Figures: docs/PERFORMANCE.md, Acceleration routing, session 10.
# Session 10, route helper, second call (issue #9 / #6). route-1 ruled out SMT (none on this VM), the worker
# pools' width (16/11/8/4: same store busy/alone) and malloc tunables; the store's own threads spent 1.2-1.5x
# their alone CPU even with 4-wide pools and no run-queue wait. Two questions left:
# (1) Does the core itself run slower while the pipeline runs (clock / a host hyperthread the guest cannot
#     see)? `probe` (probe.c) times a register-only loop in thread CPU ns per chunk: idle, then during a cold
#     init (bench index-stages --init-only), then idle again.
# (2) Does one transaction per checkpoint batch (COMMIT_ROUTE2: the store writer waits for a batch's last chunk,
#     as the alone measurement writes) bring the store's busy/alone down? main (COMMIT_MAIN) vs route2,
#     bench index-stages, alternating, three rounds.
# Run: BUDGET=200 DEV=0 bash .devrun/route10/run2.sh   (results: $OUT/summary.txt, $OUT/stages.tgz)
set -u
START=$(date +%s); BUDGET=${BUDGET:-200}; DEV=${DEV:-0}
D=$(cd "$(dirname "$0")" && pwd)
S=$OUT/summary.txt
{ echo "# route10 run2 $(date -u +%FT%TZ) main $(cat $D/COMMIT_MAIN) route2 $(cat $D/COMMIT_ROUTE2) devices $DEV"; echo "cores $(nproc)"
  nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c; uptime; lscpu | grep -E "Thread|Model name"; } > $S
W=/tmp/r10s; rm -rf $W; mkdir -p $W/lib $W/c/large $W/logs
python3 -c "import lzma,shutil,glob,os;[shutil.copyfileobj(lzma.open('$D/colgrep-'+b+'.xz'),open('$W/colgrep-'+b,'wb')) for b in ('main','route2')];[shutil.copyfileobj(lzma.open(f),open('$W/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
cp $D/lib/*.so.* $W/lib/; chmod +x $W/colgrep-*; cp $D/probe $W/probe; chmod +x $W/probe
export LD_LIBRARY_PATH=$W/lib:${LD_LIBRARY_PATH:-} NCCL_NVLS_ENABLE=0 COLGREP_GRAMMARS_DIR=$D/grammars XDG_CACHE_HOME=$W/cache TMPDIR=$W
L=$W/logs
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
python3 $D/synthetic_edge_model.py $W/ettin $D/tokenizer.json > /dev/null
SITE=$(python3 -c 'import transformers,os;print(os.path.dirname(os.path.dirname(transformers.__file__)))')
for m in $(ls $SITE/transformers/models | sort); do [[ "$m" > nomic_bert ]] && break; cp -r $SITE/transformers/models/$m $W/c/large/; done
echo "corpus: $(find $W/c/large -type f -name '*.py' | wc -l) .py files" >> $S
$W/colgrep-route2 warm-cache --model $W/ettin --devices all > $L/warm-cache.txt 2>&1
echo "setup done at $(( $(date +%s) - START )) s" >> $S
TIMEFORMAT='%R %U %S'
stages() { # binary label [args...]
  local l=$(( $(left) - 8 )); if [ $l -lt 20 ]; then echo "$1 $2: skipped (device budget)" >> $S; return; fi
  local b=$1 label=$2; shift 2
  local t; t=$( { time timeout $l $W/colgrep-$b bench index-stages $W/c/large --model $W/ettin --force-gpu --devices $DEV --json "$@" > $L/stages-$b-$label.json 2> $L/stages-$b-$label.txt ; } 2>&1 )
  echo "== $b $label $*: rc=$? (process wall/user/sys $t) at $(( $(date +%s) - START )) s" >> $S
  grep -E "^store|^encode|^pool|^tokenize|^embedding|bound|cold init|^  store" $L/stages-$b-$label.txt >> $S
}
probe_stats() { # label log [from to]: chunks, median and p90 of thread-CPU ms per 4M-step chunk
  python3 - "$@" >> $S <<'PY'
import sys
label, log = sys.argv[1], sys.argv[2]
rows = [tuple(map(float, l.split())) for l in open(log) if l.strip()]
if len(sys.argv) > 4: rows = [r for r in rows if float(sys.argv[3]) <= r[0] <= float(sys.argv[4])]
v = sorted(r[1] / 1e6 for r in rows)
if v: print(f"probe {label}: {len(v)} chunks, thread-CPU ms per chunk median {v[len(v)//2]:.3f} p10 {v[len(v)//10]:.3f} p90 {v[9*len(v)//10]:.3f}")
PY
}
# (1) the core's own speed: idle, during a cold init of each binary (probe unpinned, as any thread), idle again
$W/probe 3 > $L/probe-idle1.log; probe_stats idle-before $L/probe-idle1.log
for b in main route2; do
  $W/probe 30 > $L/probe-$b.log & P=$!
  T0=$(python3 -c 'import time;print(time.monotonic())')
  stages $b initonly --init-only
  T1=$(python3 -c 'import time;print(time.monotonic())')
  kill $P 2>/dev/null; wait $P 2>/dev/null
  probe_stats "during $b init-only process" $L/probe-$b.log $T0 $T1
done
$W/probe 3 > $L/probe-idle2.log; probe_stats idle-after $L/probe-idle2.log
# (2) one transaction per batch: main vs route2, alternating
for r in 1 2 3; do stages main r$r; stages route2 r$r; done
(cd $L && tar czf $OUT/stages.tgz .)
uptime >> $S; echo "end at $(( $(date +%s) - START )) s" >> $S
grep -E "^==|^store  |bound /|cold init|^probe" $S
