#!/usr/bin/env bash
# Checks the exact stage's NEON body on a machine without ARM hardware: cross-compiles the search kernels with
# check_maxsim_neon.c for 64-bit ARM and runs the result under qemu-aarch64 (user mode). Installs what it needs
# from Debian when it can (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user). Not part of the test command
# (CI has no cross compiler); run it after changing Sources/CKernels/maxsim*.c.
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
aarch64-linux-gnu-gcc -O2 -std=c11 -ffp-contract=off -Wno-unknown-pragmas -I$K/include -I$K scripts/neon/check_maxsim_neon.c $K/maxsim.c $K/maxsim_neon.c \
  $K/kernels.c $K/residual8.c $K/assign.c -lm -o "$OUT/check" -static
qemu-aarch64 "$OUT/check"
