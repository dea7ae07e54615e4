#!/bin/bash
# Start-up A/B on the GPU machine (issue #7: process start -> first batch encoded, warm kernel cache <= 300 ms).
# Stage (here): a folder under .devrun/ with before.xz and after.xz (xz of two stripped static release binaries,
# `bash scripts/build-release.sh`), scripts/bench/gpu_encoder.py and this script as run.sh; run it there with
# `bash .devrun/<folder>/run.sh` (device tool, carry the folder). Each binary gets its own warm kernel cache; rounds
# interleave plain, --overlap and --overlap with CUDA_MODULE_LOADING=EAGER. Writes $OUT/startup6.txt (per-run
# timeline, per-shape cuBLASLt warm-up with its planning share, medians) and $OUT/raw.jsonl.
set -u
cd "$(dirname "$0")"; D=$PWD
for b in before after; do python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/$b.xz'),open('/tmp/cg-$b','wb'))"; chmod +x /tmp/cg-$b; done
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
nvidia-smi --query-gpu=name,driver_version,persistence_mode --format=csv > $OUT/env.txt 2>&1
[ -f /tmp/ettin/config.json ] || python3 gpu_encoder.py make-model /tmp/ettin 2>/dev/null
python3 -c "import json;json.dump([[101]+list(range(2000,2180))+[102]]*32,open('/tmp/one.json','w'))"
run() {  # binary label flags [env assignment]
  env ${4:-X_=1} XDG_CACHE_HOME=/tmp/xdg-$1 /tmp/cg-$1 debug gpu-embed --model /tmp/ettin --ids /tmp/one.json --out /tmp/o-$1.f32 $3 > /tmp/st.json 2>>$OUT/timeline.txt
  echo "$1 $2 rc=$? $(cat /tmp/st.json)" >> $OUT/raw.jsonl
  python3 -c "import json;r=json.load(open('/tmp/st.json'));print('$1 $2', round(r.get('process_start_to_first_batch_ms',0)), 'ms |', '; '.join('%s %d-%d' % (x['step'][:40], x['start_ms'], x['end_ms']) for x in r['steps']), '| cuda:', '; '.join('%s %.0f' % (x['step'][:90], x['ms']) for x in r.get('cuda_startup',[])))" >> $OUT/startup6.txt 2>&1 || echo "$1 $2 failed" >> $OUT/startup6.txt
}
for b in before after; do run $b empty ""; done
for round in 1 2 3 4 5; do
  for b in before after; do run $b warm ""; run $b warm-overlap --overlap; done
  run after warm-overlap-eager --overlap CUDA_MODULE_LOADING=EAGER
done
grep -h '"matmul_warmup"' $OUT/raw.jsonl | python3 -c "
import sys, json
for line in sys.stdin:
    b, mode, rc, js = line.split(' ', 3)
    r = json.loads(js)
    if r.get('matmul_warmup'): print(b, mode, [(w['rows'], w['out'], w['in'], w['thread'], round(w['ms'], 1), round(w.get('planning_ms', -1), 1)) for w in r['matmul_warmup']])
" >> $OUT/startup6.txt
python3 - <<'PY' >> $OUT/startup6.txt
import json, statistics
rows = {}
for line in open(__import__('os').environ['OUT'] + '/raw.jsonl'):
    b, mode, rc, js = line.split(' ', 3)
    try: r = json.loads(js)
    except Exception: continue
    rows.setdefault((b, mode), []).append(r.get('process_start_to_first_batch_ms', 0))
for k, v in sorted(rows.items()): print(k, 'median', statistics.median(v), 'all', v)
PY
cat $OUT/startup6.txt
