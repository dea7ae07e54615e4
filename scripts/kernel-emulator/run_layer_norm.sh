#!/usr/bin/env bash
# Runs the bf16 layer-norm kernels (Sources/TensorCUDA/KernelSource.swift, core module) on the CPU, no GPU needed:
# one row per warp and four rows per warp, against double precision and against each other bit for bit.
# Usage: bash scripts/kernel-emulator/run_layer_norm.sh   (g++ with C++20; a few seconds)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/scripts/kernel-emulator/extract_core_source.py" "$ROOT" "$WORK"
cp "$ROOT/scripts/kernel-emulator/layer_norm_emulator.cpp" "$ROOT/scripts/kernel-emulator/warp_emulation.h" "$WORK/"
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w "$WORK/layer_norm_emulator.cpp" -o "$WORK/emu"
"$WORK/emu"
