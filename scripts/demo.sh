#!/usr/bin/env bash
# The main job: build colgrep in release mode, index this repository's own Sources/ (or the folder
# given as $1) with the offline fallback model, and run a few searches, printing the results.
# The index goes to a throwaway data folder unless COLGREP_DATA_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-release.sh
BIN=$PWD/.build/release/colgrep
TARGET=${1:-Sources}
export COLGREP_DATA_DIR=${COLGREP_DATA_DIR:-${TMPDIR:-/tmp}/colgrep-demo-data}
# A demo leaves nothing running behind it: no resident query server for piped output (see README).
export COLGREP_NO_SERVER=${COLGREP_NO_SERVER:-1}
"$BIN" --version

echo "== colgrep init $TARGET"
time "$BIN" init -y "$TARGET"

run() {
  echo
  echo "== colgrep $*"
  "$BIN" "$@"
}
run "where is the index lock taken before updating" "$TARGET"
run -k 5 "fuse semantic and keyword scores" "$TARGET"
run -e "func (search|encode)" -k 3 "query encoding" "$TARGET"
run -n 6 -k 2 "parse a safetensors header" "$TARGET"
