#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup (idempotent), build, then every test.
# GPU tests skip, and say so, where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee /tmp/colgrep-test.log
