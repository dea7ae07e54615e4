# Sourced by the run*.sh scripts: `source "$(dirname "$0")/emulator_setup.sh" <extract script> <emulator .cpp>`.
# Sets ROOT (the repository) and WORK (a temporary folder removed on exit), writes the kernel module's CUDA C
# there with the extract script, and copies the emulator and the emulation headers beside it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 "$ROOT/scripts/kernel-emulator/$1" "$ROOT" "$WORK"
cp "$ROOT/scripts/kernel-emulator/$2" "$ROOT"/scripts/kernel-emulator/*.h "$WORK/"
