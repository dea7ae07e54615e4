// xxHash (Debian: libxxhash-dev): XXH3_64bits for file hashes and index directory names.
#include <xxhash.h>
