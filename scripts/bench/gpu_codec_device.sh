#!/bin/bash
# Issue #7, session 25: the codec's assignment and residual packing on the GPU (`ResidualQuantizing`,
# `km_residual_pack`), on a GPU machine. Stage beside this script (e.g. .devrun/s25/): colgrep.xz (stripped static
# release binary, xz), lib/ (libopenblas.so.0.xz, libgfortran.so.5.xz, libquadmath.so.0.xz, libsqlite3.so.0.xz,
# libxxhash.so.0.xz), and for the index stage grammars/, tokenizer.json, synthetic_edge_model.py and
# index_stages_device.sh. Stages (STAGES, default all): selftest (`debug gpu-selftest`, its assignAndQuantize
# checks listed), codec (`bench gpu-codec`: host / GPU assign + host pack / GPU assign and pack, alternating, at
# 48-d and 128-d), index (`bench index-stages` of the large corpus on GPU 0, device packing against
# COLGREP_GPU_RESIDUALS=0, alternating). Results under $OUT.
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/codec-out}; mkdir -p $OUT /tmp/isbin/lib
TAG=${TAG:-}  # appended to the codec stage's file names (several binaries into one $OUT)
# BINARY: another staged binary than colgrep.xz (e.g. colgrep-before.xz, for an A/B in one call).
python3 -c "import lzma,shutil,glob,os;shutil.copyfileobj(lzma.open('$D/${BINARY:-colgrep.xz}'),open('/tmp/isbin/colgrep','wb'));[shutil.copyfileobj(lzma.open(f),open('/tmp/isbin/lib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
chmod +x /tmp/isbin/colgrep; B=/tmp/isbin/colgrep
export LD_LIBRARY_PATH=/tmp/isbin/lib:${LD_LIBRARY_PATH:-} XDG_CACHE_HOME=/tmp/xdg-codec
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/env.txt; echo "$(nproc) cores" | tee -a $OUT/env.txt
for stage in ${STAGES:-selftest codec index}; do
  echo "== $stage $(date +%T)"
  case $stage in
  selftest)
    timeout 240 $B debug gpu-selftest > $OUT/selftest.txt 2>&1; echo "rc=$? PASS $(grep -c PASS $OUT/selftest.txt)"
    grep FAIL $OUT/selftest.txt; grep assignAndQuantize $OUT/selftest.txt | cut -c1-150 ;;
  codec)
    for cfg in ${CODEC_CONFIGS:-"48,10000000,32768,4" "128,4000000,32768,4" "48,4000000,16384,2"}; do
      IFS=, read dim n k nbits <<< "$cfg"
      timeout 300 $B bench gpu-codec --dim $dim --n $n --k $k --nbits $nbits --rounds ${ROUNDS:-2} > $OUT/codec-$dim-$n-$nbits$TAG.json 2> $OUT/codec-$dim-$n-$nbits$TAG.err
      echo "codec $cfg rc=$?"
      python3 - $OUT/codec-$dim-$n-$nbits$TAG.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("  k %d, train %.3f s; GPU-pack vs host-pack differing: codes %d, bytes %d, norms %d; codes equal to the CPU path's %.4f"
      % (r["k"], r["train_s"], r["gpu_pack_vs_host_pack_codes_differing"], r["bytes_differing"], r["norms_differing"], r["codes_equal_to_cpu_path"]))
for run in r["runs"]: print("  %-26s %.3f s wall, %.2f s process CPU" % (run["way"], run["s"], run["process_cpu_s"]))
PY
    done ;;
  index)
    # DEVICES: the --devices lists to run (default "0"); CORPUS=huge: every .py of transformers and torch.
    BUDGET=${INDEX_BUDGET:-280} VARIANTS="device:COLGREP_X=1 host:COLGREP_GPU_RESIDUALS=0" ROUNDS=${INDEX_ROUNDS:-2} OUT=/tmp/index-out \
      bash $D/index_stages_device.sh > $OUT/index.txt 2>&1
    cp /tmp/index-out/summary.txt $OUT/index-summary.txt; cp /tmp/index-out/stages.tgz $OUT/ 2>/dev/null
    grep -E "^== |^(encode|k-means|codec|store |bound|cold init|lanes alone)" /tmp/index-out/summary.txt | cut -c1-170
    for f in /tmp/index-out/stages-*.txt; do echo "$(basename $f): $(grep -E "codec append: encode: (assign|quantize)" $f | tr -s ' ' | cut -c1-60 | paste -sd' ' -)"; done ;;
  esac
done
