// Rows of a large matrix gathered by index into a dense one (KMeans.subsample: the training sample, 1M rows of
// 10M at random). Each row is a cache miss or three in a multi-gigabyte array; the rows a few indices ahead are
// prefetched while this one is copied, so several misses are in flight per thread instead of one.
#include "CKernels.h"
#include <string.h>

enum { CK_GATHER_AHEAD = 8 };

void ck_gather_rows_f32(const float *src, size_t dim, const int64_t *rows, size_t n, float *dst) {
    const size_t bytes = dim * sizeof(float);
    for (size_t i = 0; i < n; i++) {
        if (i + CK_GATHER_AHEAD < n) {
            const char *ahead = (const char *)(src + (size_t)rows[i + CK_GATHER_AHEAD] * dim);
            for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b, 0, 0);
        }
        memcpy(dst + i * dim, src + (size_t)rows[i] * dim, bytes);
    }
}
