#!/usr/bin/env bash
# The main job: build colgrep in release mode, then run it on this repository's own sources.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product colgrep 2>&1 | grep -E "error|warning|Compiling colgrep|Build complete" || true
BIN=.build/release/colgrep
"$BIN" --version
