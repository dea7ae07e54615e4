#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup (idempotent), build, then every test.
# GPU tests skip, and say so, where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee /tmp/colgrep-test.log
# The CUDA kernels with no GPU: every module type-checked as device code by the toolchain's clang, then the
# tensor-core GEMMs, attention, layer norm and k-means kernels run on their CPU emulators against double precision
# (scripts/kernel-emulator; ~2.5 min on 2 cores).
for check in check_syntax.sh run_gemm.sh run_attention.sh run_layer_norm.sh run.sh; do
  if ! bash "scripts/kernel-emulator/$check" > /tmp/colgrep-kernel-emulator.log 2>&1; then
    grep -E "FAIL|error" /tmp/colgrep-kernel-emulator.log | head -20
    echo "kernel emulator check failed: scripts/kernel-emulator/$check (log: /tmp/colgrep-kernel-emulator.log)"
    exit 1
  fi
  echo "kernel emulator check passed: scripts/kernel-emulator/$check"
done
# The NEON bodies of the search kernels, cross-compiled and run under qemu, where the tools are installed
# (CI has none; `bash scripts/neon/check.sh` installs them from Debian).
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  bash scripts/neon/check.sh
else
  echo "NEON kernel check skipped: no aarch64 cross compiler or qemu-aarch64 (bash scripts/neon/check.sh installs them)"
fi
