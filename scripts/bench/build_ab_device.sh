#!/usr/bin/env bash
# Index build from precomputed vectors (issue #5's "≥ 1M vectors/s on 2 threads"), several binaries and
# environment settings alternating round by round on the same cores, so the host's drift between rounds hits
# every variant alike. Run on the device machine from a folder holding colgrep-<binary>.xz (stripped, static).
#
#   VARIANTS="main:main new:new new-p4:new:COLGREP_LLOYD_PROBES=4" ROUNDS=8 CORES=2,3 bash build_ab_device.sh
#
# VARIANTS: label:binary[:VAR=value,VAR=value]. Writes $OUT/build-ab.tgz (every run's JSON) and
# $OUT/build-ab-summary.txt (median wall, M vectors/s, CPU, stage CPU and the codes' quality per variant, and the
# geometric mean of each variant's wall over the first variant's, paired by round).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/build-ab-out}
ROUNDS=${ROUNDS:-8}
CORES=${CORES:-2,3}
VARIANTS=${VARIANTS:-"main:main new:new"}
ARGS=${ARGS:-"--documents 100000 --dim 48 --median-length 10 --updates 2 --json"}
WORK=$(mktemp -d)
mkdir -p "$OUT" "$WORK/runs"
# The device image has no xz: Python's lzma unpacks the binaries and lib/*.xz (OpenBLAS and its Fortran runtime).
mkdir -p "$WORK/lib"
python3 -c "import lzma,shutil,glob,os,sys
for f in glob.glob(sys.argv[1]+'/colgrep-*.xz'): shutil.copyfileobj(lzma.open(f),open(sys.argv[2]+'/'+os.path.basename(f)[:-3],'wb'))
for f in glob.glob(sys.argv[1]+'/lib/*.xz'): shutil.copyfileobj(lzma.open(f),open(sys.argv[2]+'/lib/'+os.path.basename(f)[:-3],'wb'))" "$HERE" "$WORK"
chmod +x "$WORK"/colgrep-*
export LD_LIBRARY_PATH=$WORK/lib:${LD_LIBRARY_PATH:-}
for variant in $VARIANTS; do
    binary=$(echo "$variant" | cut -d: -f2)
    [ -x "$WORK/colgrep-$binary" ] || { echo "no colgrep-$binary.xz beside this script"; exit 1; }
done
{ echo "host: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"; echo "cores: $CORES, rounds: $ROUNDS"; } > "$OUT/build-ab-summary.txt"
"$WORK/colgrep-$(echo "${VARIANTS%% *}" | cut -d: -f2)" debug cpu-kernels > "$OUT/cpu-kernels.txt" 2>&1 || true
tail -2 "$OUT/cpu-kernels.txt" >> "$OUT/build-ab-summary.txt"
for round in $(seq 1 "$ROUNDS"); do
    for variant in $VARIANTS; do
        label=$(echo "$variant" | cut -d: -f1); binary=$(echo "$variant" | cut -d: -f2); settings=$(echo "$variant" | cut -s -d: -f3)
        env $(echo "$settings" | tr ',' ' ') taskset -c "$CORES" "$WORK/colgrep-$binary" bench build $ARGS \
            > "$WORK/runs/$label-$round.json" 2> "$WORK/runs/$label-$round.err"
        python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], round(d['build_s'],3), round(d['build_cpu_s'],3))" \
            "$WORK/runs/$label-$round.json" "$label" "$round" || echo "$label $round failed: $(tail -1 "$WORK/runs/$label-$round.err")"
    done
done
tar -czf "$OUT/build-ab.tgz" -C "$WORK" runs
python3 - "$WORK/runs" "$VARIANTS" >> "$OUT/build-ab-summary.txt" <<'EOF'
import json, math, os, statistics, sys
folder, variants = sys.argv[1], [v.split(":")[0] for v in sys.argv[2].split()]
runs = {}
for name in os.listdir(folder):
    if name.endswith(".json"):
        label, round_ = name[:-5].rsplit("-", 1)
        try: runs.setdefault(label, {})[int(round_)] = json.load(open(os.path.join(folder, name)))
        except Exception: pass
first = variants[0]
for label in variants:
    r = runs.get(label, {})
    if not r: print(label, "no runs"); continue
    walls = [r[k]["build_s"] for k in sorted(r)]
    stage = lambda s: statistics.median(d["build_stages_cpu_s"].get(s, 0) for d in r.values())
    a = next(iter(r.values()))
    paired = [r[k]["build_s"] / runs[first][k]["build_s"] for k in r if k in runs.get(first, {})]
    ratio = math.exp(sum(map(math.log, paired)) / len(paired)) if paired else float("nan")
    vectors = a["vectors"]
    print(f"{label}: walls {' '.join(f'{w:.3f}' for w in walls)} | median {statistics.median(walls):.3f} s "
          f"({vectors / statistics.median(walls) / 1e6:.3f}M/s), CPU {statistics.median(d['build_cpu_s'] for d in r.values()):.2f} s, "
          f"k-means CPU {stage('k-means'):.3f}, encode CPU {stage('encode (assign + quantize)'):.3f} | "
          f"agreement {a['assignment']['exact_agreement']:.5f}, mean cosine {a['assignment']['mean_cosine']:.6f}, "
          f"empty {a['centroid_balance']['empty']} | ÷ {first} {ratio:.3f} | update p50 {statistics.median(d['update_add_10_units_ms_p50'] for d in r.values()):.2f} ms")
EOF
cat "$OUT/build-ab-summary.txt"
