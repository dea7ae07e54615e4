#!/bin/bash
# Cold-index pipeline on a GPU machine (issues #6 and #9): `colgrep bench index-stages` on the large corpus
# of routing_table.sh (the device's transformers/models up to nomic_bert, ~1,450 files, ~30k units) with the
# Ettin-17M-shaped random model, once on GPU 0 only and once on every GPU. Each run measures every CPU stage
# alone, then a cold `init` in the same process, and prints each stage's in-pipeline busy time against its
# own, the bounding lane and bound / init wall (goal >= 0.9).
#
# Stage (on the build machine) a folder with the layout routing_table.sh uses, e.g. .devrun/route5/:
#   colgrep.xz (stripped static release binary, xz), lib/ (libopenblas.so.0.xz, libgfortran.so.5.xz,
#   libquadmath.so.0.xz), grammars/ (manifest.json + libtree_sitter_python.so), tokenizer.json (a BERT
#   tokenizer.json, e.g. .deps/models/all-MiniLM-L6-v2/tokenizer.json), synthetic_edge_model.py and this
#   script; then run `bash .devrun/route5/index_stages_device.sh` (results under $OUT: stages-*.json,
#   stages-*.txt: the table and the profile; summary.txt). BUDGET (default 420 s) stops before the device limit.
#   VARIANTS / DEVICES / ROUNDS (below) run same-binary A/B of environment knobs instead of the two default runs.
set -u
START=$(date +%s)
BUDGET=${BUDGET:-420}
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/index-stages-out}
mkdir -p $OUT /tmp/isbin/lib
# Binaries: colgrep.xz, or with BINARIES="main new" colgrep-main.xz and colgrep-new.xz (same-call A/B; each
# variant below then runs with every binary in turn, labelled by it).
python3 -c "import lzma,shutil,glob,os;[shutil.copyfileobj(lzma.open(f),open('/tmp/isbin/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/colgrep*.xz')];[shutil.copyfileobj(lzma.open(f),open('/tmp/isbin/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
chmod +x /tmp/isbin/colgrep*; B=/tmp/isbin/colgrep
export LD_LIBRARY_PATH=/tmp/isbin/lib:${LD_LIBRARY_PATH:-}
export COLGREP_GRAMMARS_DIR=$D/grammars NCCL_NVLS_ENABLE=0
W=/tmp/ist; rm -rf $W; mkdir -p $W/c/large
python3 $D/synthetic_edge_model.py $W/model $D/tokenizer.json > /dev/null
M=$W/model
SITE=$(python3 -c 'import transformers,os;print(os.path.dirname(os.path.dirname(transformers.__file__)))')
for m in $(ls $SITE/transformers/models | sort); do [[ "$m" > nomic_bert ]] && break; cp -r $SITE/transformers/models/$m $W/c/large/; done
# HUGE=1 also builds $W/c/huge: every .py of the installed transformers and torch packages (session 19: 4,822 files,
# 100 MB, 113k units); CORPUS=huge then measures it instead of large.
if [ "${HUGE:-0}" = 1 ] || [ "${CORPUS:-large}" = huge ]; then
  mkdir -p $W/c/huge
  (cd $SITE && find transformers torch -name '*.py' -print0 | xargs -0 cp --parents -t $W/c/huge)
fi
C=$W/c/${CORPUS:-large}
export XDG_CACHE_HOME=$W/cache TMPDIR=$W
GPUS=$(nvidia-smi -L 2>/dev/null | wc -l)
{ echo "cores: $(nproc); gpus: $GPUS; $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  echo "corpus: $C, $(find $C -type f -name '*.py' | wc -l) .py files"
  lscpu | grep -E "^(Model name|Thread|Core|Socket|NUMA node\(s\))"; } | tee $OUT/summary.txt
# Kernels compiled and the cost model calibrated once, outside the measured runs.
for b in ${BINARIES:-}; do /tmp/isbin/colgrep-$b warm-cache --model $M > $OUT/warm-cache-$b.txt 2>&1; done
[ -z "${BINARIES:-}" ] && $B warm-cache --model $M > $OUT/warm-cache.txt 2>&1
# One logical CPU of each physical core (the first of its SMT siblings), for CPUS=one-per-core.
ONE_PER_CORE=$(cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list 2>/dev/null | sed 's/[,-].*//' | sort -un | paste -sd, -)
bench() { # label devices [VAR=value ...]; CPUS=list (or one-per-core) runs it under taskset -c list
  local label=$1 devices=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ $left -lt 30 ]; then echo "$label: skipped (device budget)" | tee -a $OUT/summary.txt; return; fi
  local pin=() vars=()
  for v in "$@"; do
    case $v in CPUS=one-per-core) pin=(taskset -c $ONE_PER_CORE);; CPUS=*) pin=(taskset -c ${v#CPUS=});; *) vars+=("$v");; esac
  done
  set -- "${vars[@]}"
  # stdout: one JSON object; stderr: the same as a table, then the cold init's COLGREP_PROFILE report.
  timeout $left env "$@" ${pin[@]+"${pin[@]}"} $B bench index-stages $C --model $M --force-gpu --devices $devices --json > $OUT/stages-$label.json 2> $OUT/stages-$label.txt
  echo "== $label (--devices $devices $*): rc=$? at $(( $(date +%s) - START )) s" >> $OUT/summary.txt
  cat $OUT/stages-$label.txt >> $OUT/summary.txt
}
if [ -z "${VARIANTS:-}" ]; then
  bench 1gpu 0
  [ $GPUS -ge 2 ] && bench all-gpus all
else
  # VARIANTS="base s8:COLGREP_KEYWORD_SHARDS=8 pin:CPUS=one-per-core": each
  # variant (label[:VAR=value,...]) on each of DEVICES (default "0"), alternating, ROUNDS times (default 2),
  # so that a host's drift spreads over every variant alike.
  for r in $(seq 1 ${ROUNDS:-2}); do
    for devices in ${DEVICES:-0}; do
      for v in $VARIANTS; do
        label=${v%%:*}; vars=""; [ "$v" != "$label" ] && vars=${v#*:}
        if [ -z "${BINARIES:-}" ]; then
          bench $label-d${devices//,/_}-r$r $devices COLGREP_X=0 ${vars//,/ }
        else
          for b in $BINARIES; do
            B=/tmp/isbin/colgrep-$b bench $b-$label-d${devices//,/_}-r$r $devices COLGREP_X=0 ${vars//,/ }
          done
        fi
      done
    done
  done
fi
(cd $OUT && tar czf stages.tgz stages-*)
cat $OUT/summary.txt
