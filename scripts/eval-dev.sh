#!/usr/bin/env bash
# Retrieval quality on the dev split (file-level NDCG@10), scored by the shared eval harness.
# Usage: bash scripts/eval-dev.sh MODE [score.py args…]   MODE = hybrid | fts | semantic
#   EVAL_DIR   the eval folder (repos-dev.json, annotations/, score.py); default ../shared/eval or /work/shared/eval
#   EVAL_OUT   where score.py's JSON goes (default /tmp/colgrep-eval-MODE.json)
#   COLGREP_DATA_DIR  index folder for the eval (default /tmp/colgrep-eval-data)
#   COLGREP_EVAL_FLAGS extra query flags (e.g. --code-only)
# The checkouts must exist first (see the eval README: materialize.py). The hybrid run (re)builds
# each repo's index; the semantic run reuses it (its index command is an up-to-date check). The fts
# run builds keyword-only indexes (hidden `init --fts-only`: parsing only, no model) in their own
# data folder ($COLGREP_DATA_DIR-fts), so FTS tuning never waits for encoding.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?usage: eval-dev.sh hybrid|fts|semantic [score.py args]}
shift
EVAL_DIR=${EVAL_DIR:-}
for d in ../shared/eval ../../shared/eval /work/shared/eval; do
  [ -z "$EVAL_DIR" ] && [ -f "$d/score.py" ] && EVAL_DIR=$d
done
[ -n "$EVAL_DIR" ] || { echo "set EVAL_DIR to the eval folder" >&2; exit 2; }
export COLGREP_DATA_DIR=${COLGREP_DATA_DIR:-/tmp/colgrep-eval-data}
BIN=${COLGREP_BIN:-$PWD/.build/release/colgrep}
[ -x "$BIN" ] || bash scripts/build-release.sh
FLAGS=${COLGREP_EVAL_FLAGS:-}
case "$MODE" in
  hybrid)   INDEX="$BIN clear {dir} >/dev/null; $BIN init -y {dir}"; EXTRA="" ;;
  fts)      export COLGREP_DATA_DIR="$COLGREP_DATA_DIR-fts"
            INDEX="$BIN init -y --fts-only {dir}"; EXTRA="--fts-only" ;;
  semantic) INDEX="$BIN init -y {dir}"; EXTRA="--semantic-only" ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
python3 "$EVAL_DIR/score.py" --repos "$EVAL_DIR/repos-dev.json" --annotations "$EVAL_DIR/annotations" \
  --tool cmd --label "colgrep-swift-$MODE" \
  --index-cmd "$INDEX" \
  --query-cmd "$BIN --json $EXTRA $FLAGS -k {k} {query} {dir}" \
  --version-cmd "$BIN --version" --json "${EVAL_OUT:-/tmp/colgrep-eval-$MODE.json}" "$@"
