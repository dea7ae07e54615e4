// The NEON body of the exact stage's token loop (maxsim.c's pass B on 64-bit ARM). The query regrouped by
// group_query holds, for a group of four dimensions, eight query tokens × their four int8 values in 32 bytes; one
// 16-byte row (four tokens) times the document token's four levels, broadcast, is two `smull` into int16 products
// (|63 · 127| each, so a pair sum fits int16), `addp` of pairs, then `sadalp` adds each token's two pair sums into
// its int32 lane — exact integers, so the AVX2 body's dot products. The float epilogue repeats the scalar body's
// operations in its order, and keeps a score only when it is strictly larger (a compare and a select: `fmax` would
// turn −0 into +0 where the scalar body keeps the best it had), so scores are bit-identical to the scalar body's.
// 4-bit levels are decoded sixteen bytes at a time (`tbl` on the codec's table, `zip` of the nibbles). Where the
// compiler targets the dot-product extension, one `sdot` replaces the three instructions of a row (the same sums).
#include "maxsim_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

/// acc[i] += Σ_d q[4i + d] · u[4i + d] for the four query tokens i of one 16-byte row: one `sdot` where the target
/// has the dot-product extension (Apple's arm64 targets, or -march=armv8.2-a+dotprod), else baseline NEON.
static inline int32x4_t dot4(int32x4_t acc, int8x16_t q, int8x16_t u) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, q, u);
#else
    int16x8_t low = vmull_s8(vget_low_s8(q), vget_low_s8(u));
    int16x8_t high = vmull_s8(vget_high_s8(q), vget_high_s8(u));
    return vpadalq_s16(acc, vpaddq_s16(low, high));
#endif
}

/// Scores of query tokens qb … qb + 3 folded into best.
static inline void fold4(const float *row, const float *offset, const float *scale, float *best, long qb, int32x4_t dots,
                         float32x4_t inv) {
    float32x4_t t1 = vaddq_f32(vld1q_f32(row + qb), vld1q_f32(offset + qb));
    float32x4_t t2 = vmulq_f32(vld1q_f32(scale + qb), vcvtq_f32_s32(dots));
    float32x4_t sc = vmulq_f32(vaddq_f32(t1, t2), inv);
    float32x4_t old = vld1q_f32(best + qb);
    vst1q_f32(best + qb, vbslq_f32(vcgtq_f32(sc, old), sc, old));
}

/// NB blocks of eight query tokens from q0, two accumulators a block.
#define NEON_BLOCKS(NB)                                                                                          \
    do {                                                                                                         \
        int32x4_t acc[2 * (NB)];                                                                                 \
        for (int a = 0; a < 2 * (NB); a++) acc[a] = vdupq_n_s32(0);                                              \
        for (long g = 0; g < groups; g++) {                                                                      \
            uint32_t w;                                                                                          \
            memcpy(&w, u + 4 * g, 4);                                                                            \
            int8x16_t levels4 = vreinterpretq_s8_u32(vdupq_n_u32(w));                                            \
            const int8_t *r = qg + (g * nqb + q0 / 8) * 32;                                                      \
            for (int a = 0; a < 2 * (NB); a++) acc[a] = dot4(acc[a], vld1q_s8(r + 16 * a), levels4);             \
        }                                                                                                        \
        for (int a = 0; a < 2 * (NB); a++) fold4(row, offset, scale, best, q0 + 4 * a, acc[a], inv);             \
    } while (0)

void ck_decode4_neon(const ck_residual_query *Q, const uint8_t *packed, uint8_t *u) {
    uint8x16_t lut = vld1q_u8(Q->lut), low = vdupq_n_u8(0x0F);
    long dim = Q->dim, d = 0;
    // Byte i holds dimension 2i in its low nibble and 2i + 1 in its high one.
    for (; d + 32 <= dim; d += 32) {
        uint8x16_t x = vld1q_u8(packed + d / 2);
        uint8x16_t even = vqtbl1q_u8(lut, vandq_u8(x, low)), odd = vqtbl1q_u8(lut, vshrq_n_u8(x, 4));
        vst1q_u8(u + d, vzip1q_u8(even, odd));
        vst1q_u8(u + d + 16, vzip2q_u8(even, odd));
    }
    if (d < dim) {  // the last 16 dimensions
        uint8x8_t x = vld1_u8(packed + d / 2);
        uint8x8_t even = vqtbl1_u8(lut, vand_u8(x, vdup_n_u8(0x0F))), odd = vqtbl1_u8(lut, vshr_n_u8(x, 4));
        vst1_u8(u + d, vzip1_u8(even, odd));
        vst1_u8(u + d + 8, vzip2_u8(even, odd));
        d += 16;
    }
    for (; d < Q->dim_padded; d++) u[d] = 0;
}

void ck_residual_pass_neon(const ck_residual_query *Q, const int8_t *qg, const uint8_t *levels, long m,
                           const float *inverses, const uint16_t *codes, const uint32_t *doc_of_token, float *best_all) {
    long nqp = Q->nq_padded, dp = Q->dim_padded, nqb = nqp / 8, groups = (Q->dim + 3) / 4;
    const float *offset = Q->offset, *scale = Q->scale;
    for (long l = 0; l < m; l++) {
        const uint8_t *u = levels + l * dp;
        float32x4_t inv = vdupq_n_f32(inverses[l]);
        const float *row = Q->ctable + (long)codes[l] * nqp;
        float *best = best_all + (long)doc_of_token[l] * nqp;
        // Up to four blocks of eight query tokens (eight accumulators) at a time.
        for (long q0 = 0; q0 < nqp; q0 += 32) {
            switch ((nqp - q0) / 8) {
            case 1: NEON_BLOCKS(1); break;
            case 2: NEON_BLOCKS(2); break;
            case 3: NEON_BLOCKS(3); break;
            default: NEON_BLOCKS(4); break;
            }
        }
    }
}
#endif
