#!/usr/bin/env bash
# Checks the search kernels' NEON bodies on a machine without ARM hardware: cross-compiles them with
# check_maxsim_neon.c for 64-bit ARM and runs the result under qemu-aarch64 (user mode), once for baseline Armv8
# (what a generic aarch64 build compiles) and once with the dot-product extension (Apple's arm64 targets have it).
# Installs what it needs from Debian when it can (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user).
# scripts/test.sh runs it where those tools are installed (CI has none).
#   bash scripts/neon/check.sh            # exit status 0: every shape equal to the scalar body
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get install -y -q gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
K=Sources/CKernels
for march in armv8-a armv8.2-a+dotprod; do
  echo "-march=$march:"
  aarch64-linux-gnu-gcc -O2 -std=c11 -march=$march -ffp-contract=off -Wno-unknown-pragmas -I$K/include -I$K \
    scripts/neon/check_maxsim_neon.c $K/maxsim.c $K/maxsim_neon.c $K/kernels.c $K/residual8.c $K/assign.c -lm -o "$OUT/check" -static
  qemu-aarch64 -cpu max "$OUT/check"
done
