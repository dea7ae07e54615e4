// The tree-sitter core (PyPI sdist tree-sitter==0.26.1, tree_sitter/core/lib) is unpacked by
// scripts/setup.sh into .deps/tree-sitter; this file compiles its single-file amalgamation.
#if __has_include("../../.deps/tree-sitter/lib/src/lib.c")
#include "../../.deps/tree-sitter/lib/src/lib.c"
#else
#error "tree-sitter core source is missing: run scripts/setup.sh first"
#endif
