#!/bin/bash
# Staging (session 10 used .devrun/route10/): this script, colgrep-main.xz and colgrep-route.xz (stripped static release binaries, xz) with COMMIT_MAIN / COMMIT_ROUTE, lib/ (libopenblas.so.0.xz,
# libgfortran.so.5, libquadmath.so.0), grammars/ (manifest.json + libtree_sitter_python.so), tokenizer.json and
# synthetic_edge_model.py, as in index_stages_device.sh. Figures: docs/PERFORMANCE.md, Acceleration routing, session 10.
# The route binary must be 39887ff: COLGREP_POOL_THREADS (the pool-width knob) was removed after this run (83b5ec4).
# Session 10, route helper, issue #9 / #6: why the store lane runs at 71-74 % of its own speed inside a cold
# index next to GPUs, and whether the fix (store writers on threads of their own; worker pools narrowed by the
# store's writer threads while the index streams, CoreBudget) brings it to >= 90 %.
# (1) CPU topology (SMT siblings), CPU model and clock, SQLite library.
# (2) bench index-stages of the transformers corpus (29,850 units, Ettin-17M shape), --devices DEV, main's binary
#     (COMMIT_MAIN) and the route binary (COMMIT_ROUTE) alternating; route with COLGREP_POOL_THREADS = default
#     rule / all cores (only the own writer threads) / narrower; main and route with glibc malloc tunables.
# Run: BUDGET=280 DEV=0 bash .devrun/route10/run.sh   (results: $OUT/summary.txt, $OUT/stages.tgz)
set -u
START=$(date +%s); BUDGET=${BUDGET:-280}; DEV=${DEV:-0}
D=$(cd "$(dirname "$0")" && pwd)
S=$OUT/summary.txt
{ echo "# route10 $(date -u +%FT%TZ) main $(cat $D/COMMIT_MAIN) route $(cat $D/COMMIT_ROUTE) devices $DEV"; echo "cores $(nproc)"
  nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c; uptime
  lscpu | grep -E "^CPU\(s\)|Thread|Core|Socket|Model name|MHz|NUMA node|L2|L3"
  echo "distinct thread_siblings_list: $(cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list 2>/dev/null | sort -u | wc -l) of $(ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l) cpus; cpu0: $(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null); core_cpus cpu0: $(cat /sys/devices/system/cpu/cpu0/topology/core_cpus_list 2>/dev/null)"
  echo "smt control: $(cat /sys/devices/system/cpu/smt/control 2>/dev/null) active $(cat /sys/devices/system/cpu/smt/active 2>/dev/null)"
  echo "scaling governor: $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null || echo none)"
  echo "sqlite: $(ls -l /lib/x86_64-linux-gnu/libsqlite3.so.0* /usr/lib/x86_64-linux-gnu/libsqlite3.so.0* 2>/dev/null | awk '{print $NF}' | tr '\n' ' ')"
  echo "schedstat: $(cat /proc/self/schedstat 2>/dev/null)"; } > $S
W=/tmp/r10r; rm -rf $W; mkdir -p $W/lib $W/c/large $W/logs
python3 -c "import lzma,shutil,glob,os;[shutil.copyfileobj(lzma.open('$D/colgrep-'+b+'.xz'),open('$W/colgrep-'+b,'wb')) for b in ('main','route')];[shutil.copyfileobj(lzma.open(f),open('$W/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
cp $D/lib/*.so.* $W/lib/; chmod +x $W/colgrep-*
export LD_LIBRARY_PATH=$W/lib:${LD_LIBRARY_PATH:-} NCCL_NVLS_ENABLE=0 COLGREP_GRAMMARS_DIR=$D/grammars XDG_CACHE_HOME=$W/cache TMPDIR=$W
L=$W/logs
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
python3 $D/synthetic_edge_model.py $W/ettin $D/tokenizer.json > /dev/null
SITE=$(python3 -c 'import transformers,os;print(os.path.dirname(os.path.dirname(transformers.__file__)))')
for m in $(ls $SITE/transformers/models | sort); do [[ "$m" > nomic_bert ]] && break; cp -r $SITE/transformers/models/$m $W/c/large/; done
echo "corpus: $(find $W/c/large -type f -name '*.py' | wc -l) .py files" >> $S
$W/colgrep-route warm-cache --model $W/ettin --devices all > $L/warm-cache.txt 2>&1
echo "setup done at $(( $(date +%s) - START )) s" >> $S
TIMEFORMAT='%R %U %S'
MALLOC='GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864'
stages() { # binary label [env...]
  local l=$(( $(left) - 8 )); if [ $l -lt 20 ]; then echo "$1 $2: skipped (device budget)" >> $S; return; fi
  local b=$1 label=$2; shift 2
  local t; t=$( { time timeout $l env COLGREP_X=0 "$@" $W/colgrep-$b bench index-stages $W/c/large --model $W/ettin --force-gpu --devices $DEV --json > $L/stages-$b-$label.json 2> $L/stages-$b-$label.txt ; } 2>&1 )
  echo "== $b $label $*: rc=$? (process wall/user/sys $t) at $(( $(date +%s) - START )) s" >> $S
  grep -E "^store|^encode|^pool|^tokenize|^embedding|^store rows|bound|cold init|worker pools|^  store" $L/stages-$b-$label.txt >> $S
}
for r in 1 2; do
  stages main r$r
  stages route r$r
  stages route all$r COLGREP_POOL_THREADS=0
  stages route half$r COLGREP_POOL_THREADS=$(( $(nproc) / 2 ))
done
stages main malloc $MALLOC
stages route malloc $MALLOC
stages route quarter COLGREP_POOL_THREADS=$(( $(nproc) / 4 ))
stages main r3
stages route r3
stages route all3 COLGREP_POOL_THREADS=0
(cd $L && tar czf $OUT/stages.tgz .)
uptime >> $S; echo "end at $(( $(date +%s) - START )) s" >> $S
grep -E "^==|^store  |bound /|cold init|worker pools|busiest thread cpu|waiting for a core|system cpu|latest part" $S
