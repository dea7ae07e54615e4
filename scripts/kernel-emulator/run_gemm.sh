#!/usr/bin/env bash
# Runs the tensor-core GEMM (Sources/TensorCUDA/GemmKernelSource.swift, gemm_mma) on the CPU, no GPU needed:
# ldmatrix and the warp-level MMA emulated with the PTX ISA's fragment layouts. Shapes with partial row,
# column and K tiles, odd column counts (the unpaired store path), one K step and several, every epilogue
# (bias, exact and tanh GELU, residual), every fused prologue (layer norm with and without bias, GeGLU), with
# 64- and 128-column tiles, against double precision.
# Then the row-resident kernel (gemm_resident) and the warpgroup-MMA kernel (gemm_wgmma) the same way.
# Usage: bash scripts/kernel-emulator/run_gemm.sh   (g++ with C++20; ~2 min)
source "$(dirname "$0")/emulator_setup.sh" extract_gemm_source.py gemm_emulator.cpp
cp "$ROOT/scripts/kernel-emulator/resident_gemm_emulator.cpp" "$ROOT/scripts/kernel-emulator/warpgroup_gemm_emulator.cpp" "$WORK/"
status=0
for bn in 64 128; do
  g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 -DGM_BN=$bn "$WORK/gemm_emulator.cpp" -o "$WORK/emu"
  # n m k bias residual kind prologue
  for cfg in "128 64 32 0 0 0 0" "130 72 40 1 0 0 0" "7 65 8 1 1 0 0" "200 96 104 1 0 1 0" "129 130 64 1 0 2 0" "64 33 96 0 1 1 0" "300 64 256 1 1 0 0" \
             "130 72 264 1 0 0 1" "70 48 96 0 1 0 2" "131 200 40 1 0 0 3" "40 64 96 1 1 0 3"; do
    "$WORK/emu" $cfg || status=1
  done
done
# The row-resident kernel (gemm_resident, K = 256): one weight chunk and several (the three-buffer rotation wraps),
# partial row tiles, bias, the layer-norm prologue with and without its bias, the GeGLU epilogue.
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 "$WORK/resident_gemm_emulator.cpp" -o "$WORK/emu_resident"
# n m bias norm geglu
for cfg in "128 64 0 0 0" "130 256 1 0 0" "7 128 0 1 0" "200 320 1 2 0" "129 768 0 1 1" "40 64 1 1 1" "260 192 1 0 1"; do
  "$WORK/emu_resident" $cfg || status=1
done
# The warpgroup-MMA kernel (gemm_wgmma): one K step and several (the three stages wrap at 4 and more), partial row
# tiles, several column tiles, bias or none, no activation, the exact and the tanh GELU, the GeGLU epilogue. The emulated
# MMAs read shared memory when waited for, so a stage refilled too early fails.
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 "$WORK/warpgroup_gemm_emulator.cpp" -o "$WORK/emu_warpgroup"
# n m k bias kind geglu
for cfg in "128 128 64 0 0 0" "130 256 128 1 1 0" "300 128 384 1 1 0" "77 256 256 1 2 0" "200 256 256 0 0 1" "129 512 320 1 0 1"; do
  "$WORK/emu_warpgroup" $cfg || status=1
done
exit $status
