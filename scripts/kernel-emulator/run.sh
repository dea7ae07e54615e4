#!/usr/bin/env bash
# Runs the k-means CUDA kernels (Sources/TensorCUDA/KMeansKernelSource.swift) on the CPU, no GPU needed:
# one std::thread per CUDA thread, barriers for __syncthreads, warp shuffles and the warp-level MMA
# (which replaces the inline-PTX spot with the m16n8k16 fragment layout of the PTX ISA). Checks the
# tensor-core and portable assignment kernels against a double-precision argmax, the Lloyd update, the sample gather
# (km_gather_rows: exact copies), the residual codec's packing (km_residual_pack: every bit width, byte for byte), and the
# coarse-to-fine kernels (km_c2f_*) against the same grouped search in double precision; then the warpgroup-MMA kernel
# (km_assign_wgmma) with wgmma and cp.async emulated, and a deliberately broken variant of it that must fail. Every assignment must equal
# the reference exactly; a configuration with any difference exits non-zero and stops the script.
# Usage: bash scripts/kernel-emulator/run.sh   (g++ with C++20; ~1 min)
source "$(dirname "$0")/emulator_setup.sh" extract_kmeans_source.py kmeans_emulator.cpp
# bf16 padded-dim warps-M centroid-buffers | d n k [ties]
for cfg in "1 48 8 2 48 301 203" "1 128 8 2 128 600 300" "1 144 8 2 130 301 203" "1 384 4 1 384 200 150" "1 128 4 1 128 301 203" "1 16 8 2 16 301 203" "0 48 4 1 48 301 203" "1 48 8 2 48 301 203 ties" "1 48 8 1 48 301 203 ties" "1 128 8 2 128 300 300 ties" "0 48 4 1 48 301 203 ties" "1 48 8 2 48 2000 2100 c2f" "1 144 8 2 130 1500 1400 c2f" "1 128 4 1 128 1200 1500 c2f" "1 64 4 1 61 700 900 c2f" "1 128 4 1 128 700 2100 c2fmany"; do
  set -- $cfg
  g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=$1 -DCG_KM_DP=$2 -DCG_KM_WM=$3 -DCG_KM_NB=$4 "$WORK/kmeans_emulator.cpp" -o "$WORK/emu"
  "$WORK/emu" $5 $6 $7 ${8:-}
done
# The warpgroup-MMA kernel (km_assign_wgmma, kmeans_wgmma_emulator.cpp): 1 to 8 centroid tiles (the ring of four stages
# wrapping, odd and even counts: the sweep ending on either accumulator set), partial vector tiles, K off the tile
# (padding rows at −∞), exact ties, 16 to 128 dimensions (48: 96-byte rows in 128-byte swizzled rows, 3 k-steps; 128: two
# 64-wide chunks); copies landing at issue as well as at the wait. Wider rows go to km_assign_mma (not built here).
# padded-dim warpgroups | d n k [ties]
cp "$ROOT/scripts/kernel-emulator/kmeans_wgmma_emulator.cpp" "$WORK/"
for cfg in "48 2 48 301 600" "48 2 48 100 128" "48 2 48 150 256" "48 2 48 301 203 ties" "128 2 128 200 1000" "128 2 128 301 700 ties" \
           "64 2 64 130 300" "16 2 16 100 260" "64 3 64 200 384"; do
  set -- $cfg
  g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 -DCG_KW_DP=$1 -DCG_KW_WG=$2 "$WORK/kmeans_wgmma_emulator.cpp" -o "$WORK/emu_wg"
  "$WORK/emu_wg" $3 $4 $5 ${6:-}
done
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 -DCG_KW_DP=128 -DCG_KW_WG=2 -DEMU_ASYNC_EARLY "$WORK/kmeans_wgmma_emulator.cpp" -o "$WORK/emu_wg"
"$WORK/emu_wg" 128 200 1000
# Must fail: tile j + 4 sent for into the stage of tile j while tile j's MMAs may still read it (copies landing at issue).
g++ -std=c++20 -O1 -pthread -fno-strict-aliasing -w -DCG_BF16=1 -DCG_KW_DP=128 -DCG_KW_WG=2 -DCG_KW_AHEAD=4 -DEMU_ASYNC_EARLY "$WORK/kmeans_wgmma_emulator.cpp" -o "$WORK/emu_wg"
if "$WORK/emu_wg" 128 200 1000 > "$WORK/broken.txt"; then echo "FAIL: a stage refilled one tile early was not caught"; exit 1; fi
echo "PASS (expected to fail) $(tail -1 "$WORK/broken.txt")"
