#!/usr/bin/env bash
# The end-to-end CLI table of issue #6 (docs/PERFORMANCE.md, "CLI end to end (issue #6)"): per repository,
# cold index time (with the COLGREP_PROFILE per-stage profile kept in the log folder), warm one-shot
# query p50 of the built binary (default, i.e. with the freshness check, and with --no-update) next to
# ripgrep's p50 for the same queries in the same run, and the update after touching one file (wall time,
# and the part of it that is not the file's encoding).
#
# Usage: scripts/bench/cli_table.sh [options] NAME=FOLDER...
#   --binary PATH     colgrep binary (default .build/release/colgrep; build it with
#                     `bash scripts/build-release.sh`)
#   --runs N          timed runs per query (default 5; the first, warming run is not counted)
#   --threads N       encoder threads (COLGREP_THREADS is not read by colgrep: this pins the process
#                     with taskset to N cores; default: all cores)
#   --keep-index      reuse the index of a previous run of this script (skips the cold build and reports
#                     its time as "prebuilt") — for repositories too large to encode on a small CPU
#   --out DIR         work and log folder (default /tmp/colgrep-cli-bench)
# Example:
#   scripts/bench/cli_table.sh small=Sources medium=$HOME/.cache/colgrep-eval/nvim-lspconfig
# Each FOLDER is copied into DIR first (the update test edits a file), so the originals are never touched.
# Needs: ripgrep (installed with apt-get when missing), the fallback model (scripts/setup.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BINARY=$ROOT/.build/release/colgrep
RUNS=5
THREADS=""
KEEP=0
OUT=/tmp/colgrep-cli-bench
REPOS=()
while [ $# -gt 0 ]; do
  case $1 in
    --binary) BINARY=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --keep-index) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *=*) REPOS+=("$1"); shift ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#REPOS[@]} -gt 0 ] || { echo "give at least one NAME=FOLDER (see --help)" >&2; exit 2; }
[ -x "$BINARY" ] || { echo "no colgrep binary at $BINARY: bash scripts/build-release.sh" >&2; exit 1; }
if ! command -v rg >/dev/null; then
  echo "installing ripgrep (apt-get)" >&2
  (apt-get install -y ripgrep >/dev/null 2>&1 || sudo apt-get install -y ripgrep >/dev/null 2>&1) \
    || echo "cannot install ripgrep: its column stays empty" >&2
fi
export COLGREP_FALLBACK_MODEL=${COLGREP_FALLBACK_MODEL:-$ROOT/.deps/models/all-MiniLM-L6-v2}
export COLGREP_GRAMMARS_DIR=${COLGREP_GRAMMARS_DIR:-$ROOT/.deps/grammars/linux-x86_64}
export XDG_CACHE_HOME=$OUT/xdg-cache
mkdir -p "$OUT/logs" "$XDG_CACHE_HOME"
PIN=()
[ -n "$THREADS" ] && PIN=(taskset -c "0-$((THREADS - 1))")

# Natural-language queries with the identifiers ripgrep gets for the same question (rg cannot search
# by meaning: it gets the words, case-insensitive, as alternatives — what a user would grep for).
QUERIES=("error handling when a file cannot be read" "parse command line arguments" "retry with backoff"
         "compute a hash of the content" "sort results by score")
RG_PATTERNS=("error|cannot read" "parse.*arg" "retry|backoff" "hash" "sort.*score")

now_ms() { date +%s%3N; }
TIMEFORMAT='%R %U %S'
p50() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print a[int((NR + 1) / 2)]}'; }

printf '| repository | files | units | cold index | tokens/s (end to end / encoder) | colgrep query p50 | colgrep --no-update p50 | rg query p50 | update after touch (total / not encoding) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for spec in "${REPOS[@]}"; do
  name=${spec%%=*}; src=${spec#*=}
  work=$OUT/$name; data=$OUT/data-$name
  export COLGREP_DATA_DIR=$data
  log=$OUT/logs/$name
  if [ $KEEP -eq 0 ] || [ ! -d "$work" ]; then
    rm -rf "$work" "$data"; mkdir -p "$work"
    cp -r "$src/." "$work/"
    begin=$(now_ms)
    COLGREP_PROFILE=1 "${PIN[@]}" "$BINARY" init -y "$work" > "$log.init.out" 2> "$log.init.err"
    cold="$(awk -v ms=$(( $(now_ms) - begin )) 'BEGIN {printf "%.1f s", ms / 1000}')"
  else
    cold="prebuilt"
    [ -f "$log.init.err" ] || : > "$log.init.err"   # built some other way: no cold-build profile
  fi
  files=$(python3 -c "import json,glob;print(sum(len(json.load(open(f)).get('files',{})) for f in glob.glob('$data/indices/*/state.json')))")
  units=$(python3 -c "import json,glob;print(sum(json.load(open(f)).get('unit_count',0) for f in glob.glob('$data/indices/*/state.json')))")
  # End-to-end tokens/s (tokens over the whole run's wall time) against the encoder's own rate in the
  # same run (tokens over its busy time): the share of the run that is not hidden behind encoding.
  tps=$(python3 - "$log.init.err" <<'PY'
import re, sys
tokens = busy = wall = 0.0
for line in open(sys.argv[1]):
    value = lambda: float(re.search(r"([0-9.]+) (ms|s)\b", line).group(1)) / (1000 if " ms" in line.split("calls")[0] else 1)
    if re.match(r"\s*encode\[", line):
        busy += value(); tokens += float(re.search(r"tokens=(\d+)", line).group(1))
    elif re.match(r"\s*total wall", line):
        wall = value()
print(f"{tokens / wall:.0f} e2e / {tokens / busy:.0f} encoder = {100 * busy / wall:.0f} %" if busy and wall else "-")
PY
)
  : > "$log.query.times"; : > "$log.noupdate.times"; : > "$log.rg.times"
  for i in "${!QUERIES[@]}"; do
    q=${QUERIES[$i]}; pat=${RG_PATTERNS[$i]}
    (cd "$work" && "${PIN[@]}" "$BINARY" -k 10 "$q" > /dev/null 2>&1)   # warm the page cache
    for _ in $(seq "$RUNS"); do
      # bash's `time`: wall, user and system seconds of the one-shot process (CPU time is the figure
      # that survives a loaded machine; wall is what a user waits).
      { time (cd "$work" && "${PIN[@]}" "$BINARY" -k 10 "$q" > /dev/null 2>> "$log.query.err") ; } 2>> "$log.query.times"
      { time (cd "$work" && "${PIN[@]}" "$BINARY" --no-update -k 10 "$q" > /dev/null 2>> "$log.query.err") ; } 2>> "$log.noupdate.times"
      command -v rg >/dev/null && { time (cd "$work" && "${PIN[@]}" rg -i -n -e "$pat" . > /dev/null || true) ; } 2>> "$log.rg.times"
    done
  done
  qp50="$(awk '{print $1 * 1000}' "$log.query.times" | p50) ms (cpu $(awk '{print ($2 + $3) * 1000}' "$log.query.times" | p50) ms)"
  np50="$(awk '{print $1 * 1000}' "$log.noupdate.times" | p50) ms (cpu $(awk '{print ($2 + $3) * 1000}' "$log.noupdate.times" | p50) ms)"
  rp50="$(awk '{print $1 * 1000}' "$log.rg.times" | p50) ms (cpu $(awk '{print ($2 + $3) * 1000}' "$log.rg.times" | p50) ms)"
  [ -s "$log.rg.times" ] || rp50="-"
  # Update after touching one file: a mid-sized source file gets one more comment line.
  target=$(cd "$work" && find . -type f \( -name '*.py' -o -name '*.swift' -o -name '*.rs' -o -name '*.go' -o -name '*.lua' -o -name '*.java' -o -name '*.c' -o -name '*.ts' \) -size +2k -size -8k | sort | sed -n 1p)   # sed reads to the end: no SIGPIPE under pipefail
  update="-"
  if [ -n "$target" ]; then
    case $target in *.py) c='#' ;; *.lua) c='--' ;; *) c='//' ;; esac
    echo "$c touched by cli_table.sh" >> "$work/$target"
    b=$(now_ms)
    COLGREP_PROFILE=1 "${PIN[@]}" "$BINARY" init "$work" > /dev/null 2> "$log.update.err"
    total=$(( $(now_ms) - b ))
    enc=$(python3 - "$log.update.err" <<'PY'
import re, sys
ms = 0.0
for line in open(sys.argv[1]):
    m = re.match(r"\s*(cpu )?(encode|tokenize)\b.*?([0-9.]+) (ms|s)\b", line)
    if m: ms += float(m.group(3)) * (1000 if m.group(4) == "s" else 1)
print(round(ms))
PY
)
    update="$total ms / $(( total - enc )) ms ($target)"
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${files:-?}" "$units" "$cold" "${tps:--}" "$qp50" "$np50" "$rp50" "$update"
done
echo
echo "logs (per-stage profiles: *.init.err, *.update.err): $OUT/logs"
