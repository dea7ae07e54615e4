// Public API of the tree-sitter core unpacked by scripts/setup.sh.
#if __has_include("../../../.deps/tree-sitter/lib/include/tree_sitter/api.h")
#include "../../../.deps/tree-sitter/lib/include/tree_sitter/api.h"
#else
#error "tree-sitter headers are missing: run scripts/setup.sh first"
#endif
