#!/bin/bash
# Device run for the CUDA backend: self-test, parity, start-up, benchmark, assignment. Writes to $OUT.
# How it was run (the figures in docs/PERFORMANCE.md): build here with
#   swift build -c release --static-swift-stdlib --product colgrep && strip .build/release/colgrep
# then copy into <repo>/.devrun/cuda/: colgrep.xz (xz of the binary), lib/ (libopenblas.so.0.xz,
# libgfortran.so.5, libquadmath.so.0 from this machine), minilm/ (all-MiniLM-L6-v2 as fp16 safetensors,
# vocabulary cut to 10,000 rows to fit the 64 MiB transfer), gpu_encoder.py and this script as run.sh;
# on the GPU machine: STAGES="env selftest parity startup bench bench-ours bench-minilm assign" bash .devrun/cuda/run.sh
# Without minilm/ (to keep the transfer small) a random-weight model of all-MiniLM-L6-v2's shape (BERT, 384 hidden,
# 6 layers, 12 heads, 10,000-token vocabulary, no head) is made on the machine: same throughput, parity still
# against transformers with the same weights. Stages added in session 5: minilm-arrays (MiniLM throughput with the
# earlier per-batch host arrays, beside bench-minilm's reused pinned blocks), lanes-arena (the scheduler comparison
# with glibc's malloc arenas limited to one: tells the allocator's share of the one-lane gap), kmeans (bench
# gpu-kmeans, 10M vectors, 48-d and 128-d). Session 6 (cuda6): kmeans-48, kmeans-128, kmeans-wm4, assign-kernels
# (fused nearest-centroid kernels, device-resident Lloyd, chunked pinned upload). Session 7 (cuda7): ab (before/after
# encoder throughput in the same run: colgrep-before.xz, an earlier release binary staged beside colgrep.xz, and this
# one, alternating, Ettin and MiniLM shapes, no peers, with each one's device profile; AB="before after after-pipe"
# adds this binary with COLGREP_ATTENTION_PIPELINE=1, ROUNDS the repetitions); km-ab (the fused assignment
# kernel alone, 2M vectors on the device, K = 32,768: before vs after, and after with one vs two centroid buffers).
# Session 8 (cuda8): startup-ab (process start -> first batch, before vs after binary interleaved, plain and
# --overlap, plus the after binary with COLGREP_GEMM=cublaslt (waits for cuBLASLt as before), COLGREP_CUBLASLT_EARLY=1
# (cuBLASLt loaded beside cuInit) and CUDA_DEVICE_MAX_CONNECTIONS=2; medians, and the first batch's vectors of the
# two binaries compared); parity also runs `cuda bf16` with COLGREP_GEMM=own and =cublaslt (every GEMM on one engine);
# AB may name after-own (this binary with COLGREP_GEMM=own: our GEMM's throughput against cuBLASLt's).
# Session 11 (cuda11): variant suffixes -w16 / -w32 (COLGREP_ATTENTION_WARP_ROWS: 64- or 128-row query tiles),
# -plain (COLGREP_ATTENTION_PIPELINE=0), -mbN (COLGREP_ATTENTION_MIN_BLOCKS=N), -bf1 / -bf0 (COLGREP_ATTENTION_BRANCHFREE); stage selftest-variants runs the
# self-test once per SVARIANTS_ST label (each with its own kernel cache).
# Session 12 (g7): -tuneN (COLGREP_CUBLASLT_TUNE=N: cuBLASLt's algorithm chosen by timing the heuristic's first N),
# -gw16/-gw32/-lw16/-lw32 and -gbf0/-gbf1/-lbf0/-lbf1 (query-tile rows / branch-free path for global or sliding-window
# layers alone), -async / -gasync / -lasync (COLGREP_ATTENTION_ASYNC: cp.async key/value double buffer, both kinds of
# layer or one); -notune / -noasync / -ln1 (the session's defaults turned off: timed cuBLASLt choice, asynchronous
# copies for head dim 32, four-rows-per-warp layer norm); stage ncu (Nsight Compute speed-of-light table of one ~65k-token batch per model, attention in detail).
set -u
cd "$(dirname "$0")"; D=$PWD
export PYTHONUNBUFFERED=1
mkdir -p /tmp/cglib
python3 -c "import lzma,shutil,glob,os;shutil.copyfileobj(lzma.open('$D/colgrep.xz'),open('/tmp/colgrep','wb'));[shutil.copyfileobj(lzma.open(f),open('/tmp/cglib/'+os.path.basename(f)[:-3],'wb')) for f in glob.glob('$D/lib/*.xz')]"  # every lib/*.xz unpacked
chmod +x /tmp/colgrep; cp $D/lib/*.so.* /tmp/cglib/ 2>/dev/null
export LD_LIBRARY_PATH=/tmp/cglib:${LD_LIBRARY_PATH:-}
STAGES=${STAGES:-"env selftest parity startup bench bench-ours bench-minilm"}
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
echo "COLGREP_CUDA_LIBRARY_PATH=$dirs"
export XDG_CACHE_HOME=/tmp/xdg-warm
C="stdbuf -oL /tmp/colgrep"
log() { echo "== $* $(date +%T)"; }
# Environment of a variant label (ab, startup-ab): -own our GEMM everywhere, -cublaslt cuBLASLt everywhere, -fuse
# layer norm / GeGLU in our GEMM's loads, -connN CUDA_DEVICE_MAX_CONNECTIONS=N, -pageable weights uploaded from
# pageable memory, -early cuBLASLt loaded beside cuInit, -pipe the pipelined attention kernel, -rmlp / -rall the
# row-resident GEMM for the MLP input / for every GEMM of a layer norm (COLGREP_RESIDENT_GEMM), -nowg the exact GELU
# and GeGLU in passes of their own after cuBLASLt instead of the warpgroup-MMA GEMM's epilogue (COLGREP_WGMMA=0), -erff
# that epilogue's GELU through erff (COLGREP_WGMMA_ERF=erff), -noembed the embedding stage as gather, add and layer
# norm passes (COLGREP_FUSED_EMBED=0).
# Fixed suffixes (label substring -> setting), tried in this order; the numbered ones (-connN, -mbN, -tuneN) below.
VARIANT_SUFFIXES="-own:COLGREP_GEMM=own -cublaslt:COLGREP_GEMM=cublaslt -fuse:COLGREP_FUSE=1
  -pageable:COLGREP_UPLOAD=pageable -early:COLGREP_CUBLASLT_EARLY=1 -pipe:COLGREP_ATTENTION_PIPELINE=1
  -plain:COLGREP_ATTENTION_PIPELINE=0 -w16:COLGREP_ATTENTION_WARP_ROWS=16 -w32:COLGREP_ATTENTION_WARP_ROWS=32
  -bf1:COLGREP_ATTENTION_BRANCHFREE=1 -bf0:COLGREP_ATTENTION_BRANCHFREE=0 -notune:COLGREP_CUBLASLT_TUNE=1
  -noasync:COLGREP_ATTENTION_ASYNC=0 -ln1:COLGREP_LAYER_NORM_NARROW=0 -async:COLGREP_ATTENTION_ASYNC=1
  -gasync:COLGREP_ATTENTION_GLOBAL_ASYNC=1 -lasync:COLGREP_ATTENTION_LOCAL_ASYNC=1
  -gw16:COLGREP_ATTENTION_GLOBAL_WARP_ROWS=16 -gw32:COLGREP_ATTENTION_GLOBAL_WARP_ROWS=32
  -lw16:COLGREP_ATTENTION_LOCAL_WARP_ROWS=16 -lw32:COLGREP_ATTENTION_LOCAL_WARP_ROWS=32
  -gbf1:COLGREP_ATTENTION_GLOBAL_BRANCHFREE=1 -gbf0:COLGREP_ATTENTION_GLOBAL_BRANCHFREE=0
  -lbf1:COLGREP_ATTENTION_LOCAL_BRANCHFREE=1 -lbf0:COLGREP_ATTENTION_LOCAL_BRANCHFREE=0
  -rmlp:COLGREP_RESIDENT_GEMM=mlp -rall:COLGREP_RESIDENT_GEMM=all -nowg:COLGREP_WGMMA=0 -erff:COLGREP_WGMMA_ERF=erff
  -noembed:COLGREP_FUSED_EMBED=0"
variant_env() {
  local e="X_=1" pair
  for pair in $VARIANT_SUFFIXES; do
    case $1 in *"${pair%%:*}"*) e="$e ${pair#*:}";; esac
  done
  case $1 in *-conn[0-9]*) e="$e CUDA_DEVICE_MAX_CONNECTIONS=$(echo $1 | sed 's/.*-conn\([0-9]*\).*/\1/')";; esac
  case $1 in *-mb[0-9]*) e="$e COLGREP_ATTENTION_MIN_BLOCKS=$(echo $1 | sed 's/.*-mb\([0-9]*\).*/\1/')";; esac
  case $1 in *-tune[0-9]*) e="$e COLGREP_CUBLASLT_TUNE=$(echo $1 | sed 's/.*-tune\([0-9]*\).*/\1/')";; esac
  echo $e
}
ettin() { [ -f /tmp/ettin/config.json ] || python3 gpu_encoder.py make-model /tmp/ettin 2>/dev/null; }
lengths() { [ -f /tmp/lengths.json ] || python3 gpu_encoder.py lengths /tmp/lengths.json --docs 20000; }
# One ~65k-token batch of the workload's first lengths (random ids): the batch the ncu stages profile.
ncu_ids() {
  python3 -c "
import json, random
random.seed(3); L = json.load(open('/tmp/lengths.json')); out = []; n = 0
for x in L:
    if n + x > 65536: break
    out.append([random.randrange(2000, 9000) for _ in range(x)]); n += x
json.dump(out, open('/tmp/ncu-ids.json', 'w')); print('ncu batch', len(out), 'sequences', n, 'tokens')"
}
# The sections of a one-kernel ncu report (occupancy, stalls, memory, scheduler).
NCU_DETAIL="--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section SchedulerStats"
M=$D/minilm
if [ ! -f $M/model.safetensors ]; then M=/tmp/minilm; fi
minilm() {
  [ $M = /tmp/minilm ] && [ ! -f /tmp/minilm/config.json ] && python3 - <<'PY' 2>>$OUT/minilm-make.log
import json, os, torch
from transformers import BertConfig, BertModel
torch.manual_seed(1)
c = BertConfig(vocab_size=10000, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
               hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
m = BertModel(c, add_pooling_layer=False).eval()
with torch.no_grad():
    for p in m.parameters():
        if p.dim() == 2: p.normal_(0, 0.05)
m.save_pretrained("/tmp/minilm", safe_serialization=True)
json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}], open("/tmp/minilm/modules.json", "w"))
PY
  true
}
for s in $STAGES; do case $s in
env)
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee $OUT/env.txt ;;
selftest)
  log selftest; timeout 300 $C debug gpu-selftest > $OUT/selftest.txt 2>&1; echo "rc=$?"; grep -c PASS $OUT/selftest.txt; grep FAIL $OUT/selftest.txt; tail -3 $OUT/selftest.txt ;;
selftest-pipe)
  log selftest-pipe  # the self-test's attention checks with the pipelined attention kernel
  COLGREP_ATTENTION_PIPELINE=1 XDG_CACHE_HOME=/tmp/xdg-pipe timeout 180 $C debug gpu-selftest > $OUT/selftest-pipe.txt 2>&1; echo "rc=$?"; grep -c PASS $OUT/selftest-pipe.txt; grep FAIL $OUT/selftest-pipe.txt; grep "attention.*tensor-core" $OUT/selftest-pipe.txt | head -16 ;;
selftest-variants)
  for v in ${SVARIANTS_ST:-after-pipe after-plain after-w16}; do
    log selftest $v; env $(variant_env $v) XDG_CACHE_HOME=/tmp/xdg-st-$v timeout 180 $C debug gpu-selftest > $OUT/selftest-$v.txt 2>&1
    echo "$v rc=$? PASS $(grep -c PASS $OUT/selftest-$v.txt) FAIL $(grep -c FAIL $OUT/selftest-$v.txt)"; grep FAIL $OUT/selftest-$v.txt | head -5
  done ;;
parity)
  log parity
  ettin; minilm; python3 gpu_encoder.py parity-ids /tmp/pids.json
  for m in /tmp/ettin $M; do
    python3 gpu_encoder.py reference $m /tmp/pids.json /tmp/ref.f32 2>/dev/null
    python3 gpu_encoder.py reference $m /tmp/pids.json /tmp/refbf.f32 bf16 2>/dev/null
    echo "$m torch-bf16 $(python3 gpu_encoder.py compare /tmp/refbf.f32 /tmp/ref.f32 /tmp/pids.json)" | tee -a $OUT/parity.txt
    for run in "cuda fp32" "cuda bf16" "cuda bf16 own" "cuda bf16 cublaslt" "cuda bf16 resident" "cpu fp32"; do set -- $run
      g=${3:-}; r=off; [ "$g" = resident ] && { g=; r=all; }  # resident: COLGREP_RESIDENT_GEMM=all
      COLGREP_GEMM=$g COLGREP_RESIDENT_GEMM=$r timeout 120 $C debug gpu-embed --model $m --ids /tmp/pids.json --out /tmp/o-$1-$2${3:-}.f32 --device $1 --precision $2 > /tmp/embed.json || echo "embed failed"
      echo "$m $1 $2 ${3:-automatic} $(python3 gpu_encoder.py compare /tmp/o-$1-$2${3:-}.f32 /tmp/ref.f32 /tmp/pids.json)" | tee -a $OUT/parity.txt
      python3 -c "import json;print('  block path vs array path, max |diff|:', json.load(open('/tmp/embed.json')).get('block_vs_array_max_abs_difference'))" 2>/dev/null | tee -a $OUT/parity.txt
    done
    echo "$m gpu-fp32-vs-cpu $(python3 gpu_encoder.py compare /tmp/o-cuda-fp32.f32 /tmp/o-cpu-fp32.f32 /tmp/pids.json)" | tee -a $OUT/parity.txt
    echo "$m gpu-bf16-vs-cpu $(python3 gpu_encoder.py compare /tmp/o-cuda-bf16.f32 /tmp/o-cpu-fp32.f32 /tmp/pids.json)" | tee -a $OUT/parity.txt
  done ;;
startup)
  log startup; ettin; rm -rf /tmp/xdg-startup  # the first run starts from an empty kernel cache
  python3 -c "import json;json.dump([[101]+list(range(2000,2180))+[102]]*32,open('/tmp/one.json','w'))"
  # warm-overlap: --overlap (GPU opened on a second thread while the GEMM shapes are recorded; cuBLASLt warmed
  # for them during the weight upload), alternating with plain warm runs.
  for label in empty warm warm-overlap warm warm-overlap; do
    flag=""; [ $label = warm-overlap ] && flag="--overlap"
    s=$(date +%s.%N); XDG_CACHE_HOME=/tmp/xdg-startup $C debug gpu-embed --model /tmp/ettin --ids /tmp/one.json --out /tmp/o-$label.f32 $flag > /tmp/st.json 2>>$OUT/startup-timeline.txt; rc=$?; e=$(date +%s.%N)
    echo "cache=$label rc=$rc wall_ms=$(python3 -c "print(round(($e-$s)*1000))") $(cat /tmp/st.json)" >> $OUT/startup.txt
    python3 -c "import json;r=json.load(open('/tmp/st.json'));print('$label', 'first batch at', round(r.get('process_start_to_first_batch_ms',0)), 'ms;', '; '.join('%s %d-%d' % (x['step'][:34], x['start_ms'], x['end_ms']) for x in r['steps']))" 2>/dev/null || echo "$label: rc=$rc, no report"
  done
  python3 gpu_encoder.py compare /tmp/o-warm-overlap.f32 /tmp/o-warm.f32 /tmp/one.json 2>/dev/null | sed 's/^/overlap vs plain vectors: /' ;;
startup-ab)
  log startup-ab  # before vs after, interleaved; each binary (and variant) with its own warm kernel cache
  [ -f $D/colgrep-before.xz ] && [ ! -x /tmp/colgrep-before ] && python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/colgrep-before.xz'),open('/tmp/colgrep-before','wb'))" && chmod +x /tmp/colgrep-before
  ettin; python3 -c "import json;json.dump([[101]+list(range(2000,2180))+[102]]*32,open('/tmp/one.json','w'))"
  sa() {  # label binary flags (the label's suffixes name the variant: variant_env)
    local t0=$(date +%s%N)
    env $(variant_env $1) XDG_CACHE_HOME=/tmp/xdg-sa-$2 $( [ $2 = before ] && echo /tmp/colgrep-before || echo /tmp/colgrep ) debug gpu-embed --model /tmp/ettin --ids /tmp/one.json --out /tmp/sa-$1.f32 $3 > /tmp/sa.json 2>>$OUT/startup-ab-timeline.txt
    local rc=$? t1=$(date +%s%N)
    echo "$1 rc=$rc wall_ms=$(( (t1 - t0) / 1000000 )) $(cat /tmp/sa.json)" >> $OUT/startup-ab.jsonl
  }
  sa before-empty before ""; sa after-empty after ""
  for round in $(seq ${SROUNDS:-5}); do
    sa before-warm before ""; sa after-warm after ""
    for v in ${SVARIANTS:-before-overlap after-overlap after-overlap-cublaslt after-overlap-early after-overlap-conn2}; do
      case $v in before*) sa $v before --overlap;; *) sa $v after --overlap;; esac
    done
  done
  python3 - <<'PY' 2>&1 | tee $OUT/startup-ab.txt
import json, os, statistics
rows, walls, mains, last = {}, {}, {}, {}
for line in open(os.environ['OUT'] + '/startup-ab.jsonl'):
    label, rc, wall, js = line.split(' ', 3)
    try: r = json.loads(js)
    except Exception: print(label, rc, 'no report'); continue
    rows.setdefault(label, []).append(round(r.get('process_start_to_first_batch_ms', 0)))
    walls.setdefault(label, []).append(int(wall.split('=')[1]))
    mains.setdefault(label, []).append(round(r.get('process_start_to_main_ms', -1)))
    last[label] = r
for k, v in rows.items(): print('%-24s first batch median %4d ms  all %s | whole process wall median %d | start->main %s' % (k, statistics.median(v), v, statistics.median(walls[k]), mains[k]))
for k in ('after-overlap', 'after-warm', 'before-overlap', 'after-overlap-pageable', 'after-overlap-conn2'):
    r = last.get(k)
    if not r: continue
    print('--', k, 'upload host %.1f ms (pinned alloc %.1f)' % (r.get('weights_upload_host_ms', -1), r.get('weights_upload_pinned_allocation_ms', -1)), 'own GEMMs in first batch', r.get('first_batch_own_gemms'))
    for x in r['steps']: print('   %4d-%4d %s' % (x['start_ms'], x['end_ms'], x['step'][:110]))
    for x in r.get('cuda_startup', []): print('   cuda %6.1f ms %s' % (x['ms'], x['step'][:150]))
PY
  python3 gpu_encoder.py compare /tmp/sa-after-overlap.f32 /tmp/sa-before-overlap.f32 /tmp/one.json 2>&1 | sed 's/^/first batch, after (own GEMM) vs before (cuBLASLt): /' | tee -a $OUT/startup-ab.txt ;;
bench)
  log bench; ettin; lengths
  timeout 300 $C bench encoder-gpu --model /tmp/ettin --lengths /tmp/lengths.json --streams ${STREAMS:-3} --scheduler-lanes "${LANES-1,3}" --peers gpu_encoder.py --json > $OUT/bench.json 2>$OUT/bench.err; echo "rc=$?"; cat $OUT/bench.err
  python3 -c "import json;r=json.load(open('$OUT/bench.json'));print({k:v for k,v in r.items() if k not in ('profile',)});[print(p) for p in r['profile'][:14]]" ;;
diag)
  log diag
  ettin; minilm
  python3 -c "import json;json.dump([[101]+list(range(2000,2000+n))+[102] for n in (5,70,130,300)],open('/tmp/small.json','w'))"
  for m in /tmp/ettin $M; do for p in bf16 fp32; do
    echo "-- $m $p"; timeout 120 compute-sanitizer --tool memcheck --print-limit 4 /tmp/colgrep debug gpu-embed --model $m --ids /tmp/small.json --out /tmp/s.f32 --precision $p 2>&1 | tail -25
  done; done ;;
lanes)
  log lanes  # issue #9: the N-device path with N = 1 against direct calls, alternating passes, no peers
  ettin; lengths
  timeout 150 $C bench encoder-gpu --model /tmp/ettin --lengths /tmp/lengths.json --streams 3 --scheduler-lanes 1,3 --python "" --json > $OUT/lanes.json; echo "rc=$?"
  python3 -c "import json;r=json.load(open('$OUT/lanes.json'));print('ours', round(r['ours_tok_s']), r.get('scheduler'))" ;;
lanes-arena)
  log lanes-arena  # the same comparison with one malloc arena: the share of the gap that is per-thread arena growth
  ettin; lengths
  GLIBC_TUNABLES=glibc.malloc.arena_max=1 timeout 150 $C bench encoder-gpu --model /tmp/ettin --lengths /tmp/lengths.json --streams 1 --scheduler-lanes 1 --python "" --json > $OUT/lanes-arena.json; echo "rc=$?"
  python3 -c "import json;r=json.load(open('$OUT/lanes-arena.json'));print('arena_max=1', r.get('scheduler'))" ;;
ab)
  log ab  # variants alternating, no peers: before (colgrep-before.xz), after (colgrep.xz), after-pipe (its pipelined attention)
  [ -f $D/colgrep-before.xz ] && [ ! -x /tmp/colgrep-before ] && python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/colgrep-before.xz'),open('/tmp/colgrep-before','wb'))" && chmod +x /tmp/colgrep-before
  ettin; minilm; lengths
  for round in $(seq ${ROUNDS:-2}); do for v in ${AB:-before after}; do for m in /tmp/ettin $M; do
    exe=/tmp/colgrep; case $v in before*) exe=/tmp/colgrep-before;; esac
    [ -x $exe ] || continue
    env $(variant_env $v) XDG_CACHE_HOME=/tmp/xdg-$v timeout 60 $exe bench encoder-gpu --model $m --lengths /tmp/lengths.json --streams ${STREAMS:-3} --python "" --json > /tmp/ab.json 2>>$OUT/bench.err
    python3 -c "import json;r=json.load(open('/tmp/ab.json'));print('$round $v', '$m'.split('/')[-1], 'tok/s', round(r['ours_tok_s']), [round(x) for x in r['ours_all_tok_s']], 'device ms/pass', round(r['profile_device_ms_per_pass'],1), ' | '.join('%s %.1f' % (p['op'], p['ms']) for p in r['profile'][:9]));[print('   tuned', x) for x in r.get('cublaslt_tuning', [])]" 2>&1 | tee -a $OUT/ab.txt
  done; done; done ;;
ncu-resident)
  log ncu-resident  # Nsight Compute on the row-resident GEMM (both shapes: layer norm → QKV, layer norm → MLP input → GeGLU), per RVARIANTS label
  # (NCU_KERNEL=gemm_wgmma NCU_MODEL=minilm: the warpgroup-MMA GEMM of MiniLM's MLP input instead)
  ettin; minilm; lengths
  ncu_ids
  NK=${NCU_KERNEL:-gemm_resident}; NM=/tmp/ettin; [ "${NCU_MODEL:-}" = minilm ] && NM=$M
  for v in ${RVARIANTS:-after-rall}; do
    env $(variant_env $v) XDG_CACHE_HOME=/tmp/xdg-ncur-$v timeout ${NCU_T:-150} ncu --clock-control none $NCU_DETAIL -k regex:$NK --launch-count 2 /tmp/colgrep debug gpu-embed --model $NM --ids /tmp/ncu-ids.json --out /tmp/ncu.f32 > $OUT/ncu-resident-$v.txt 2>&1; echo "ncu resident $v rc=$?"
    # Why warps wait: every stall reason's average cycles per issued instruction, one launch.
    env $(variant_env $v) XDG_CACHE_HOME=/tmp/xdg-ncur-$v timeout ${NCU_T:-150} ncu --clock-control none --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" -k regex:$NK --launch-count 1 /tmp/colgrep debug gpu-embed --model $NM --ids /tmp/ncu-ids.json --out /tmp/ncu.f32 2>&1 | grep -E "stalled" | awk '$NF+0 > 0.05' | sort -k3 -g -r | tee $OUT/ncu-resident-stalls-$v.txt
    grep -iE "$NK|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Stall|Warp Cycles Per Issued|Issue Slots Busy|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L1/TEX Hit|L2 Hit|Shared Memory|Dynamic Shared|One or More Eligible|No Eligible|Bank" $OUT/ncu-resident-$v.txt | head -70
  done ;;
ncu)
  log ncu  # Nsight Compute, clocks left alone: speed of light of every kernel of one ~65k-token batch, attention in detail
  ettin; minilm; lengths
  ncu_ids
  K='regex:attention|layer_norm|geglu|gemm|nvjet|xmma|cutlass|epilogue|gather|l2_normalize|convert_act|sm90'
  for m in /tmp/ettin $M; do b=$(basename $m)
    COLGREP_GEMM=cublaslt XDG_CACHE_HOME=/tmp/xdg-ncu timeout ${NCU_T:-150} ncu --clock-control none --section SpeedOfLight --csv -k "$K" --launch-count ${NCU_N:-90} /tmp/colgrep debug gpu-embed --model $m --ids /tmp/ncu-ids.json --out /tmp/ncu.f32 > $OUT/ncu-sol-$b.csv 2> $OUT/ncu-sol-$b.err; echo "ncu sol $b rc=$?"
    python3 - $OUT/ncu-sol-$b.csv <<'PY'
import csv, sys, collections
# The program's own output (gpu-embed's JSON) comes before ncu's table: start at the table's header.
lines = open(sys.argv[1]).read().split('\n')
start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
if start is None: print('no ncu rows'); sys.exit()
rows = list(csv.reader(lines[start:]))
h = rows[0]; ix = {k: i for i, k in enumerate(h)}
per = collections.OrderedDict()
for r in rows[1:]:
    if len(r) < 15 or not r[0].isdigit(): continue
    k = r[ix['ID']]; d = per.setdefault(k, {'name': r[ix['Kernel Name']][:60], 'grid': r[ix['Grid Size']], 'block': r[ix['Block Size']]})
    d[r[ix['Metric Name']]] = (r[ix['Metric Value']], r[ix['Metric Unit']])
agg = collections.OrderedDict()
for d in per.values():
    key = (d['name'], d['grid'] if 'attention' not in d['name'] else '', d['block'])
    a = agg.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0])
    dur = float(d.get('Duration', ('0', ''))[0].replace(',', '')); unit = d.get('Duration', ('', 'ns'))[1]
    dur *= {'ns': 1e-3, 'us': 1, 'usecond': 1, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(unit, 1)
    a[0] += 1; a[1] += dur
    a[2] += float(d.get('Compute (SM) Throughput', ('0',))[0].replace(',', '')); a[3] += float(d.get('Memory Throughput', ('0',))[0].replace(',', ''))
    a[4] += float(d.get('DRAM Throughput', ('0',))[0].replace(',', ''))
for (n, g, b), a in sorted(agg.items(), key=lambda x: -x[1][1]):
    print('%-60s grid %-14s block %-12s x%-3d %8.1f us  SM %4.1f%%  mem %4.1f%%  dram %4.1f%%' % (n, g, b, a[0], a[1], a[2] / a[0], a[3] / a[0], a[4] / a[0]))
PY
    COLGREP_GEMM=cublaslt XDG_CACHE_HOME=/tmp/xdg-ncu timeout 100 ncu --clock-control none $NCU_DETAIL -k regex:attention_mma --launch-count 2 /tmp/colgrep debug gpu-embed --model $m --ids /tmp/ncu-ids.json --out /tmp/ncu.f32 > $OUT/ncu-att-$b.txt 2>&1; echo "ncu attention $b rc=$?"
    grep -iE "stalled|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Stall|Warp Cycles Per Issued|Issue Slots Busy|Compute \(SM\) Throughput|Memory Throughput|L1/TEX Hit|L2 Hit|Shared Memory Configuration|Dynamic Shared|Static Shared|One or More Eligible|No Eligible" $OUT/ncu-att-$b.txt | head -60
  done ;;
km-ab)
  log km-ab  # assignment kernel alone (vectors on the device): before vs after binary, after with COLGREP_KM_NB=1 and 2
  [ -f $D/colgrep-before.xz ] && [ ! -x /tmp/colgrep-before ] && python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/colgrep-before.xz'),open('/tmp/colgrep-before','wb'))" && chmod +x /tmp/colgrep-before
  for d in 48 128; do for v in ${KMAB:-before after-nb1 after-nb2}; do
    exe=/tmp/colgrep; [ $v = before ] && exe=/tmp/colgrep-before; nb=""; case $v in after-nb1) nb=1;; after-nb2) nb=2;; esac
    [ -x $exe ] || continue
    COLGREP_KM_NB=$nb XDG_CACHE_HOME=/tmp/xdg-$v timeout 60 $exe bench gpu-assign --n 2000000 --dim $d --k 32768 --cpu-sample 2000 > /tmp/a.json 2>&1
    python3 -c "import json;r=json.load(open('/tmp/a.json'));print('d=$d $v', r['nearest_kernel'], 'runs', [round(x,4) for x in r['gpu_assign_runs_s']], 'agree', r['code_agreement'])" 2>&1 | tee -a $OUT/km-ab.txt || tail -3 /tmp/a.json
  done; done ;;
bench-ours)
  log bench-ours; ettin; lengths
  for cfg in "1 65536" "3 65536" "4 65536" "3 32768"; do set -- $cfg
    timeout 100 $C bench encoder-gpu --model /tmp/ettin --lengths /tmp/lengths.json --streams $1 --budget $2 --python "" --json > /tmp/b.json
    python3 -c "import json;r=json.load(open('/tmp/b.json'));print('streams',r['streams'],'budget',r['budget'],'tok/s',round(r['ours_tok_s']),'device ms/pass',round(r['profile_device_ms_per_pass'],1))" | tee -a $OUT/bench-ours.txt
  done ;;
minilm-arrays)
  log minilm-arrays  # the earlier result path (one fresh host array per batch), no peers
  minilm; lengths
  timeout 120 $C bench encoder-gpu --model $M --lengths /tmp/lengths.json --streams ${STREAMS:-3} --results arrays --python "" --json > $OUT/minilm-arrays.json 2>>$OUT/bench.err; echo "rc=$?"
  python3 -c "import json;r=json.load(open('$OUT/minilm-arrays.json'));print({k:v for k,v in r.items() if k not in ('profile',)});[print(p) for p in r['profile'][:6]]" ;;
bench-minilm)
  log bench-minilm; minilm; lengths
  timeout 200 $C bench encoder-gpu --model $M --lengths /tmp/lengths.json --streams ${STREAMS:-3} --peers gpu_encoder.py --json > $OUT/bench-minilm.json 2>>$OUT/bench.err
  python3 -c "import json;r=json.load(open('$OUT/bench-minilm.json'));print({k:v for k,v in r.items() if k not in ('profile',)});[print(p) for p in r['profile'][:10]]" ;;
assign)
  log assign
  for d in 48 128; do timeout 300 $C bench gpu-assign --n 10000000 --dim $d --k 32768 --cpu-sample 50000 2>&1 | tee -a $OUT/assign.json; done ;;
sched-cpu)
  log sched-cpu  # CPU only: EncodeScheduler (1 lane) vs direct calls with a stand-in device, on this host's allocator
  timeout 60 $C bench scheduler-overhead --repeats 5 | tee $OUT/sched-cpu.json ;;
kmeans-48)
  log kmeans-48
  timeout 150 $C bench gpu-kmeans --n 10000000 --dim 48 --k 32768 2>&1 | tee -a $OUT/kmeans.json ;;
kmeans-128)
  log kmeans-128
  timeout 150 $C bench gpu-kmeans --n 10000000 --dim 128 --k 32768 2>&1 | tee -a $OUT/kmeans.json ;;
kmeans-wm4)
  log kmeans-wm4  # the tensor-core kernel with 128-vector tiles (4 warps along M) instead of 256
  for d in 48 128; do COLGREP_KM_WM=4 timeout 150 $C bench gpu-kmeans --n 10000000 --dim $d --k 32768 --gpu-runs 3 --cpu-assign-sample 100000 2>&1 | tee -a $OUT/kmeans-wm4.json; done ;;
assign-kernels)
  log assign-kernels  # assignment alone, vectors already on the device: fused kernel (tensor-core, plain) vs GEMM + argmax
  for d in 48 128; do for kern in ${KERNELS:-automatic plain gemm}; do
    COLGREP_NEAREST_KERNEL=$kern timeout 100 $C bench gpu-assign --n 2000000 --dim $d --k 32768 --cpu-sample 2000 > /tmp/a.json 2>&1
    python3 -c "import json;r=json.load(open('/tmp/a.json'));print('d=$d', r['nearest_kernel'], 'runs', [round(x,4) for x in r['gpu_assign_runs_s']], 'agree', r['code_agreement'])" 2>&1 | tee -a $OUT/assign-kernels.txt || tail -3 /tmp/a.json
  done; done ;;
kmeans)
  log kmeans  # k-means + assignment of 10M vectors (k = 32,768): GPU vs the CPU path, same vectors
  for d in 48 128; do timeout 150 $C bench gpu-kmeans --n 10000000 --dim $d --k 32768 2>&1 | tee -a $OUT/kmeans.json; done ;;
esac; done
echo "== done"
