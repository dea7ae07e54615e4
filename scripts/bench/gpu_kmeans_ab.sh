#!/bin/bash
# Device run for issue #7's k-means goal: `colgrep bench gpu-kmeans` (10M vectors, K = 32,768) with two
# binaries in the same call, alternating: colgrep-main.xz (main's release binary) and colgrep.xz (this
# branch's), each stripped, static and xz-compressed beside this script with lib/ (libopenblas.so.0.xz,
# libgfortran.so.5, libquadmath.so.0). Stages (STAGES): env, selftest (this binary's `debug gpu-selftest`),
# km48 (ROUNDS × main, new at --dim 48), km128 (main, new at --dim 128), km48-off (this binary with
# COLGREP_GPU_COARSE=0: exhaustive GPU search, as main), km48-chunked (this binary with COLGREP_GPU_RESIDENT=0: vectors
# streamed up for the sample and again for the assignment, session 9's path), km48-dev / km128-dev (this binary with
# COLGREP_GPU_SAMPLE=device: the sample gathered on the device after the whole copy), km-trace (this binary with COLGREP_KM_TRACE=1: each grouped
# Lloyd iteration's steps, device synchronized between them, into trace.txt). Results under $OUT: selftest.txt,
# km.tar.gz (every bench's JSON and stderr), trace.txt, summary.txt (the table printed last).
# Staged as .devrun/cuda10/run.sh; run: STAGES="env selftest km48 km128" ROUNDS=2 bash .devrun/cuda10/run.sh
set -u
cd "$(dirname "$0")"; D=$PWD
mkdir -p /tmp/cglib /tmp/km
python3 -c "import lzma,shutil,glob,os;[shutil.copyfileobj(lzma.open(f),open('/tmp/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/colgrep*.xz')];[shutil.copyfileobj(lzma.open(f),open('/tmp/cglib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"
chmod +x /tmp/colgrep /tmp/colgrep-main; cp $D/lib/*.so.* /tmp/cglib/ 2>/dev/null
export LD_LIBRARY_PATH=/tmp/cglib:${LD_LIBRARY_PATH:-}
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
STAGES=${STAGES:-"env selftest km48 km128"}
ROUNDS=${ROUNDS:-2}
log() { echo "== $* $(date +%T)"; }
bench() {  # binary label (main, new, or new-off: this binary with COLGREP_GPU_COARSE=0), dim, round
  local bin=/tmp/colgrep e="X_=1"; [ $1 = main ] && bin=/tmp/colgrep-main; [ $1 = new-off ] && e="COLGREP_GPU_COARSE=0"; [ $1 = new-trace ] && e="COLGREP_KM_TRACE=1"; [ $1 = new-chunked ] && e="COLGREP_GPU_RESIDENT=0"; [ $1 = new-dev ] && e="COLGREP_GPU_SAMPLE=device"
  log "gpu-kmeans $1 dim=$2 round $3"
  env $e XDG_CACHE_HOME=/tmp/xdg-$1 timeout 100 $bin bench gpu-kmeans --n 10000000 --dim $2 --k 32768 --gpu-runs 3 > /tmp/km/km$2-$1-$3.json 2> /tmp/km/km$2-$1-$3.err
  echo "rc=$?"; grep -i "fail\|error" /tmp/km/km$2-$1-$3.err | head -3
}
report() {  # the table and the archive, rewritten after every stage (a run cut short keeps what it measured)
python3 - <<'PY' > $OUT/summary.txt
import json, glob, os
print("file | gpu first / later s | train s | assign s | cpu scaled s | speed-up | dist ratio | assigned ratio | gpu=exact | cpu=exact | proc cpu s | steps (first run)")
for f in sorted(glob.glob('/tmp/km/*.json')):
    try: j = json.load(open(f))
    except Exception as e: print(os.path.basename(f), "unreadable", e); continue
    r = j["gpu_runs_total_s"]
    print(f'{os.path.basename(f)} | {r[0]:.3f} / {" ".join(f"{x:.3f}" for x in r[1:])} | {j["gpu_train_s"]:.3f} | {j["gpu_assign_s"]:.3f} | '
          f'{j["cpu_total_scaled_s"]:.2f} | {j["speedup_total"]:.1f}x | {j["cost_ratio_gpu_over_cpu"]:.4f} | {j.get("assigned_cost_ratio_gpu_over_cpu", float("nan")):.4f} | '
          f'{j.get("gpu_codes_equal_exact", float("nan")):.4f} | {j.get("cpu_codes_equal_exact", float("nan")):.4f} | {j["gpu_runs_process_cpu_s"][0]:.2f} | {"; ".join(j["gpu_runs_steps_s"][0])} | later: {"; ".join(j["gpu_runs_steps_s"][-1])}')
PY
tar czf $OUT/km.tar.gz -C /tmp km
}
for s in $STAGES; do case $s in
env) nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nproc ;;
selftest)
  log selftest; XDG_CACHE_HOME=/tmp/xdg-new timeout 200 /tmp/colgrep debug gpu-selftest > $OUT/selftest.txt 2>&1; echo "rc=$?"
  grep -c PASS $OUT/selftest.txt; grep FAIL $OUT/selftest.txt; grep -i "coarse-to-fine\|resident" $OUT/selftest.txt; tail -2 $OUT/selftest.txt ;;
km48) for r in $(seq 1 $ROUNDS); do bench main 48 $r; bench new 48 $r; done ;;
km128) bench main 128 1; bench new 128 1 ;;
km48-off) bench new-off 48 1 ;;
km48-chunked) bench new-chunked 48 1 ;;
km48-dev) bench new-dev 48 1 ;;
km128-dev) bench new-dev 128 1 ;;
km-trace) bench new-trace 48 1; bench new-trace 128 1; grep -h km-trace /tmp/km/*new-trace*.err | head -150 > $OUT/trace.txt ;;
esac; report; done
cat $OUT/summary.txt
