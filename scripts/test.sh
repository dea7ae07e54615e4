#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup (idempotent), build, then every test.
# GPU tests skip, and say so, where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee /tmp/colgrep-test.log
# The NEON bodies of the search kernels, cross-compiled and run under qemu, where the tools are installed
# (CI has none; `bash scripts/neon/check.sh` installs them from Debian).
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  bash scripts/neon/check.sh
else
  echo "NEON kernel check skipped: no aarch64 cross compiler or qemu-aarch64 (bash scripts/neon/check.sh installs them)"
fi
