// The swaps of a partial Fisher–Yates shuffle whose draws are known in advance (KMeans.randomlyChosenFirst32).
// Each swap touches one random slot of an array of tens of megabytes: done one after another, every swap waits
// for a cache miss. With the draws known, the slot a later swap touches is prefetched while this one runs, so
// several misses are in flight at once. The swaps themselves stay in order (a later draw may name a slot an
// earlier swap wrote), so the result is the sequential shuffle's exactly.
#include "CKernels.h"

enum { CK_SHUFFLE_AHEAD = 16 };

void ck_partial_shuffle_u32(uint32_t *order, const uint32_t *draws, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i + CK_SHUFFLE_AHEAD < n) __builtin_prefetch(order + draws[i + CK_SHUFFLE_AHEAD], 1, 0);
        const uint32_t j = draws[i];
        const uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}
