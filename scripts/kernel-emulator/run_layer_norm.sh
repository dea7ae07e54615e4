#!/usr/bin/env bash
# Runs the bf16 layer-norm kernels (Sources/TensorCUDA/KernelSource.swift, core module) on the CPU, no GPU needed:
# one row per warp and four rows per warp, against double precision and against each other bit for bit.
# Usage: bash scripts/kernel-emulator/run_layer_norm.sh   (g++ with C++20; a few seconds)
source "$(dirname "$0")/emulator_setup.sh" extract_core_source.py layer_norm_emulator.cpp
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w "$WORK/layer_norm_emulator.cpp" -o "$WORK/emu"
"$WORK/emu"
