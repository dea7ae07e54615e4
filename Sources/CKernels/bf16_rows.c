// fp32 rows to bf16 rows on the host, zero-padded: what the GPU's k-means module does to uploaded rows
// (km_convert_rows), done while they are copied into pinned memory instead, so half the bytes cross PCIe and
// the staging copy writes half as much (streamRows' bf16 format). Same rounding as the kernels' float_to_bf16
// (to nearest even, NaN kept a quiet NaN), bit for bit. Branch-free so the loop vectorizes, with an AVX2 body
// where the CPU has it.
#include "CKernels.h"

static inline uint16_t ck_bits_to_bf16(uint32_t u) {
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)0x7fc0 : (uint16_t)rounded;
}

#define CK_ROWS_TO_BF16_BODY                                                      \
    for (size_t r = 0; r < rows; r++) {                                           \
        const uint32_t *in = (const uint32_t *)(const void *)(src + r * dim);     \
        uint16_t *out = dst + r * padded;                                         \
        for (size_t c = 0; c < dim; c++) out[c] = ck_bits_to_bf16(in[c]);         \
        for (size_t c = dim; c < padded; c++) out[c] = 0;                         \
    }

static void ck_rows_to_bf16_portable(const float *src, size_t rows, size_t dim, size_t padded, uint16_t *dst) {
    CK_ROWS_TO_BF16_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void ck_rows_to_bf16_avx2(const float *src, size_t rows, size_t dim, size_t padded,
                                                                  uint16_t *dst) {
    CK_ROWS_TO_BF16_BODY
}
#endif

void ck_rows_to_bf16(const float *src, size_t rows, size_t dim, size_t padded, uint16_t *dst) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        ck_rows_to_bf16_avx2(src, rows, dim, padded, dst);
        return;
    }
#endif
    ck_rows_to_bf16_portable(src, rows, dim, padded, dst);
}
