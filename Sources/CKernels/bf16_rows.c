// fp32 rows to bf16 rows on the host, zero-padded: what the GPU's k-means module does to uploaded rows
// (km_convert_rows), done while they are copied into pinned memory instead, so half the bytes cross PCIe and
// the staging copy writes half as much (streamRows' bf16 format). Same rounding as the kernels' float_to_bf16
// (to nearest even, NaN kept a quiet NaN), bit for bit.
#include "CKernels.h"
#include <string.h>

static inline uint16_t ck_float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void ck_rows_to_bf16(const float *src, size_t rows, size_t dim, size_t padded, uint16_t *dst) {
    for (size_t r = 0; r < rows; r++) {
        const float *in = src + r * dim;
        uint16_t *out = dst + r * padded;
        for (size_t c = 0; c < dim; c++) out[c] = ck_float_to_bf16(in[c]);
        for (size_t c = dim; c < padded; c++) out[c] = 0;
    }
}
