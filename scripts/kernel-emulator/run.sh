#!/usr/bin/env bash
# Runs the k-means CUDA kernels (Sources/TensorCUDA/KMeansKernelSource.swift) on the CPU, no GPU needed:
# one std::thread per CUDA thread, barriers for __syncthreads, warp shuffles and the warp-level MMA
# (which replaces the inline-PTX spot with the m16n8k16 fragment layout of the PTX ISA). Checks the
# tensor-core and portable assignment kernels against a double-precision argmax, the Lloyd update, the sample gather
# (km_gather_rows: exact copies), the residual codec's packing (km_residual_pack: every bit width, byte for byte), and the
# coarse-to-fine kernels (km_c2f_*) against the same grouped search in double precision. Every assignment must equal
# the reference exactly; a configuration with any difference exits non-zero and stops the script.
# Usage: bash scripts/kernel-emulator/run.sh   (g++ with C++20; ~1 min)
source "$(dirname "$0")/emulator_setup.sh" extract_kmeans_source.py kmeans_emulator.cpp
# bf16 padded-dim warps-M centroid-buffers | d n k [ties]
for cfg in "1 48 8 2 48 301 203" "1 128 8 2 128 600 300" "1 144 8 2 130 301 203" "1 384 4 1 384 200 150" "1 128 4 1 128 301 203" "1 16 8 2 16 301 203" "0 48 4 1 48 301 203" "1 48 8 2 48 301 203 ties" "1 48 8 1 48 301 203 ties" "1 128 8 2 128 300 300 ties" "0 48 4 1 48 301 203 ties" "1 48 8 2 48 2000 2100 c2f" "1 144 8 2 130 1500 1400 c2f"; do
  set -- $cfg
  g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=$1 -DCG_KM_DP=$2 -DCG_KM_WM=$3 -DCG_KM_NB=$4 "$WORK/kmeans_emulator.cpp" -o "$WORK/emu"
  "$WORK/emu" $5 $6 $7 ${8:-}
done
