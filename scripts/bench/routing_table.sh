#!/bin/bash
# Acceleration routing table (docs/PERFORMANCE.md): cold `colgrep init` wall time per corpus for
# CPU only, GPU only with an empty kernel cache, GPU only with a warm cache, and auto, plus profiles.
# Runs on a machine with an NVIDIA GPU. Stage it in an ignored folder (e.g. .devrun/gpu) as for
# gpu_device_run.sh (colgrep.xz, lib/ with libopenblas.so.0.xz and its companions), plus grammars/
# (manifest.json + libtree_sitter_python.so), tokenizer.json (any BERT tokenizer.json, e.g.
# .deps/models/all-MiniLM-L6-v2/tokenizer.json), this script and synthetic_edge_model.py; then:
# bash .devrun/gpu/routing_table.sh (results under $OUT). CORPORA (default "tiny medium large") picks the
# corpora of the mode table; GPU_COUNTS (default "1 2 4 8", only on a machine with several GPUs) the
# multi-GPU rows. The corpora are that machine's Python
# standard library and the transformers package: tiny = 3 modules, medium = asyncio + json + email,
# large = transformers/models up to nomic_bert (about 1,600 files, 34k units).
set -u
START=$(date +%s)
BUDGET=${BUDGET:-540}
D=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/rtbin/lib
python3 -c "import lzma,shutil,glob,os;shutil.copyfileobj(lzma.open('$D/colgrep.xz'),open('/tmp/rtbin/colgrep','wb'));[shutil.copyfileobj(lzma.open(f),open('/tmp/rtbin/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"  # every lib/*.xz unpacked
chmod +x /tmp/rtbin/colgrep; cp $D/lib/*.so.* /tmp/rtbin/lib/ 2>/dev/null; B=/tmp/rtbin/colgrep
export LD_LIBRARY_PATH=/tmp/rtbin/lib:${LD_LIBRARY_PATH:-}
export COLGREP_GRAMMARS_DIR=$D/grammars NCCL_NVLS_ENABLE=0
W=/tmp/rt; rm -rf $W; mkdir -p $W/c/tiny $W/c/medium $W/c/large
python3 $D/synthetic_edge_model.py $W/model $D/tokenizer.json
M=$W/model
STD=$(python3 -c 'import sysconfig;print(sysconfig.get_paths()["stdlib"])')
SITE=$(python3 -c 'import transformers,os;print(os.path.dirname(os.path.dirname(transformers.__file__)))')
cp $STD/colorsys.py $STD/bisect.py $STD/keyword.py $W/c/tiny/
cp -r $STD/asyncio $STD/json $STD/email $W/c/medium/
for m in $(ls $SITE/transformers/models | sort); do [[ "$m" > nomic_bert ]] && break; cp -r $SITE/transformers/models/$m $W/c/large/; done
echo "cores: $(nproc); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
export XDG_CACHE_HOME=$W/cache COLGREP_PROFILE=1
for c in tiny medium large; do
  echo "== $c: $(COLGREP_DATA_DIR=$W/dry $B init $W/c/$c --model $M -y --dry-run 2>/dev/null | tail -2 | tr '\n' ' ')"
done
echo "== warm-cache (empty caches)"; $B warm-cache --model $M 2>&1 | tee $OUT/warm-cache.txt
echo "== warm-cache again"; $B warm-cache --model $M 2>&1 | tail -1
run() { # corpus label flags...
  local c=$1 label=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ $left -lt 15 ]; then printf "%s\t%s\tskipped (device budget)\n" $c $label | tee -a $OUT/table.tsv; return; fi
  rm -rf $W/data
  local t0=$(date +%s.%N)
  COLGREP_DATA_DIR=$W/data timeout $left $B init $W/c/$c --model $M -y "$@" > $W/$c-$label.out 2> $W/$c-$label.err
  local rc=$? t1=$(date +%s.%N)
  printf "%s\t%s\t%.2f s\trc=%d\t%s\n" $c $label $(python3 -c "print($t1-$t0)") $rc "$(grep -m1 '^  routing:' $W/$c-$label.err | cut -c3-90)" | tee -a $OUT/table.tsv
  [ $rc -ne 0 ] && tail -3 $W/$c-$label.err
}
for c in ${CORPORA-tiny medium large}; do
  rm -rf $XDG_CACHE_HOME/colgrep/kernels; run $c gpu-cold --force-gpu
  run $c gpu-warm --force-gpu
  run $c auto
  run $c cpu --force-cpu
done
# Several GPUs (issue #9): the large corpus, GPU only with a warm cache, on the first 1, 2, 4, 8 GPUs.
GPUS=$(nvidia-smi -L | wc -l)
for n in ${GPU_COUNTS-1 2 4 8}; do
  [ $GPUS -lt 2 ] || [ $n -gt $GPUS ] && break
  run large gpus-$n --force-gpu --devices $(seq -s, 0 $((n - 1)))
  cp $W/large-gpus-$n.err $OUT/profile-large-gpus-$n.txt 2>/dev/null
done
cp $W/large-auto.err $OUT/profile-large-auto.txt 2>/dev/null
cp $W/large-gpu-warm.err $OUT/profile-large-gpu-warm.txt 2>/dev/null
cp $W/large-cpu.err $OUT/profile-large-cpu.txt 2>/dev/null
cp $W/medium-auto.err $OUT/profile-medium-auto.txt 2>/dev/null
echo; cat $OUT/table.tsv
