#!/usr/bin/env bash
# Runs the tensor-core attention kernel (Sources/TensorCUDA/KernelSource.swift, attention_mma) on the CPU,
# no GPU needed: ldmatrix and the warp-level MMA emulated with the PTX ISA's fragment layouts. Packed
# sequences of 1, 5, 64, 65, 130 and 200 tokens (partial tiles, short sequences, one key tile and several),
# global and 128-token window, with and without RoPE, head dims 64 and 32, plain and pipelined (CG_ATT_PIPE),
# one or two 16-row tiles per warp (CG_ATT_MT: 64- or 128-row query tiles), with and without the branch-free
# path for interior key tiles (CG_ATT_BRANCHFREE), against double precision.
# Usage: bash scripts/kernel-emulator/run_attention.sh   (g++ with C++20; ~2 min)
source "$(dirname "$0")/emulator_setup.sh" extract_attention_source.py attention_emulator.cpp
status=0
# Fields: head dim, pipelined, row tiles per warp, branch-free, asynchronous copies (0; 1 landing at the wait; 2 at issue).
for variant in "64 0 1 0 0" "32 0 1 1 0" "64 1 1 1 0" "32 1 1 1 0" "64 0 2 1 0" "32 0 2 0 0" "64 1 2 0 0" "32 1 2 1 0" \
               "64 0 1 0 1" "64 0 1 0 2" "32 0 1 1 1" "64 0 2 0 1" "64 0 2 1 2" "32 0 2 0 1"; do
  set -- $variant
  early=""; [ $5 = 2 ] && early="-DEMU_ASYNC_EARLY"
  g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 -DCG_HEAD_DIM=$1 -DCG_ATT_PIPE=$2 -DCG_ATT_MT=$3 -DCG_ATT_BRANCHFREE=$4 -DCG_ATT_ASYNC=$(( $5 > 0 )) $early "$WORK/attention_emulator.cpp" -o "$WORK/emu"
  echo "pipelined=$2 row tiles per warp=$3 branch-free interior tiles=$4 asynchronous copies=$5"
  for cfg in "0 0" "0 1" "128 0" "128 1"; do
    "$WORK/emu" $cfg 1 5 64 65 130 200 || status=1
  done
  "$WORK/emu" 128 1 300 17 || status=1
  # 128-row tiles: a sequence ending inside a warp's second row tile, and one of 129 (one row in the next tile).
  "$WORK/emu" 0 1 150 129 40 || status=1
done
exit $status
