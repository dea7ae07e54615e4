// AVX-512 bodies of the assignment kernels (assign.c dispatches to them when the CPU has AVX-512 F/BW/VL/DQ).
// One register holds sixteen rows (one per lane), so a multiply-add does twice the AVX2 body's work.
// Codes must not depend on the CPU an index was built on, so every lane repeats, for its row, exactly what the
// AVX2 body computes for that row: float scores are fused multiply-adds one dimension at a time from 0, then
// + bias (assign_best_avx2's order), compared and kept with the same strict/tie rules; int16 dot products are
// exact integers (dim · L² < 2³¹, so no partial sum overflows in any order), hence `vpmaddwd` + `vpaddd` and
// AVX512-VNNI's `vpdpwssd` give the AVX2 sums, then the same single fused multiply-add with scale and bias.
#include "CKernels.h"
#include "assign_internal.h"
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define PANEL 16
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/// Sixteen rows (transposed into `xt`, one per lane) scored against columns j…j+7 of `packed`: fused multiply-adds
/// one dimension at a time from 0, the AVX2 body's order (bias not added). Shared by the best-1 and top-8 bodies.
static inline __attribute__((always_inline)) AVX512 void cka_score8(const float *packed, const float *xt, long dim, long j,
                                                                     __m512 *o0, __m512 *o1, __m512 *o2, __m512 *o3,
                                                                     __m512 *o4, __m512 *o5, __m512 *o6, __m512 *o7) {
    const float *base = packed + (j / PANEL) * dim * PANEL + (j % PANEL);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (long d = 0; d < dim; d++) {
        __m512 xv = _mm512_loadu_ps(xt + d * 16);
        const float *c = base + d * PANEL;
        a0 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[0]), a0);
        a1 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[1]), a1);
        a2 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[2]), a2);
        a3 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[3]), a3);
        a4 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[4]), a4);
        a5 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[5]), a5);
        a6 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[6]), a6);
        a7 = _mm512_fmadd_ps(xv, _mm512_set1_ps(c[7]), a7);
    }
    *o0 = a0; *o1 = a1; *o2 = a2; *o3 = a3; *o4 = a4; *o5 = a5; *o6 = a6; *o7 = a7;
}

/// The best column of each row (ck_assign_best): sixteen rows per register, eight columns per step; per lane the
/// running best and its column as in assign_best_avx2 (a later column wins only with a strictly larger score).
AVX512 void ck_assign_best_avx512(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                                  const float *bias, long k, int32_t *out_index, float *out_score) {
    float stack[32 * 256];
    float *xt = dim <= 256 ? stack : malloc((size_t)dim * 32 * sizeof(float));
    float *scratch = xt + dim * 16;
    long kk = (k + 7) / 8 * 8;  // padding columns (bias −∞) never win; panels hold k rounded up to 16
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        for (int r = 0; r < 16; r++) {
            long at = i + r < count ? i + r : count - 1;
            p[r] = x + (rows ? (long)rows[at] : at) * dim;
        }
        ck_assign_transpose16(p, dim, xt, scratch);
        __m512 best = _mm512_set1_ps(-INFINITY);
        __m512i at = _mm512_setzero_si512();
        for (long j = 0; j < kk; j += 8) {
            __m512 a0, a1, a2, a3, a4, a5, a6, a7;
            cka_score8(packed, xt, dim, j, &a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7);
#define CKA_TAKE(a, t)                                                                  \
    do {                                                                                \
        __m512 s_ = _mm512_add_ps(a, _mm512_set1_ps(bias[j + t]));                      \
        __mmask16 m_ = _mm512_cmp_ps_mask(s_, best, _CMP_GT_OQ);                        \
        best = _mm512_mask_blend_ps(m_, best, s_);                                      \
        at = _mm512_mask_blend_epi32(m_, at, _mm512_set1_epi32((int)(j + t)));          \
    } while (0)
            CKA_TAKE(a0, 0); CKA_TAKE(a1, 1); CKA_TAKE(a2, 2); CKA_TAKE(a3, 3);
            CKA_TAKE(a4, 4); CKA_TAKE(a5, 5); CKA_TAKE(a6, 6); CKA_TAKE(a7, 7);
#undef CKA_TAKE
        }
        int32_t indices[16];
        float values[16];
        _mm512_storeu_si512(indices, at);
        _mm512_storeu_ps(values, best);
        for (int r = 0; r < 16 && i + r < count; r++) {
            out_index[i + r] = indices[r];
            if (out_score) out_score[i + r] = values[r];
        }
    }
    if (xt != stack) free(xt);
}

/// The best 8 columns of each row (ck_assign_top with top = 8, the group step of coarse-to-fine assignment).
/// Rank t of all sixteen rows' lists is one register (scores) plus one (columns), so a column is inserted into all
/// sixteen lists at once without a branch. The list is sorted (best first), so the ranks whose score the new one
/// strictly beats are a suffix from its place on (the place = the number of scores ≥ it, where assign_top8_avx2
/// puts it: equal scores keep the earlier column first); every rank in the suffix takes its left neighbour, the
/// first takes the new column. The AVX2 body's per-row insertions cost a data-dependent loop; here each column
/// costs 8 compares and 32 blends for all sixteen rows.
AVX512 void ck_assign_top8_avx512(const float *x, long dim, long count, const float *packed, const float *bias, long k,
                                  int32_t *out) {
    float stack[32 * 256];
    float *xt = dim <= 256 ? stack : malloc((size_t)dim * 32 * sizeof(float));
    float *scratch = xt + dim * 16;
    long kk = (k + 7) / 8 * 8;
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        for (int r = 0; r < 16; r++) p[r] = x + (i + r < count ? i + r : count - 1) * dim;
        ck_assign_transpose16(p, dim, xt, scratch);
        // Empty lists as the AVX2 body starts them: scores −∞, columns 0…7.
        __m512 l0 = _mm512_set1_ps(-INFINITY), l1 = l0, l2 = l0, l3 = l0, l4 = l0, l5 = l0, l6 = l0, l7 = l0;
        __m512i n0 = _mm512_set1_epi32(0), n1 = _mm512_set1_epi32(1), n2 = _mm512_set1_epi32(2), n3 = _mm512_set1_epi32(3),
                n4 = _mm512_set1_epi32(4), n5 = _mm512_set1_epi32(5), n6 = _mm512_set1_epi32(6), n7 = _mm512_set1_epi32(7);
        for (long j = 0; j < kk; j += 8) {
            __m512 a0, a1, a2, a3, a4, a5, a6, a7;
            cka_score8(packed, xt, dim, j, &a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7);
            // m_t: lanes whose rank-t score the new one strictly beats (a suffix of ranks per lane; NaN beats none).
#define CKA_INSERT(a, t)                                                                                           \
    do {                                                                                                           \
        __m512 s_ = _mm512_add_ps(a, _mm512_set1_ps(bias[j + t]));                                                 \
        __m512i c_ = _mm512_set1_epi32((int)(j + t));                                                              \
        __mmask16 m0_ = _mm512_cmp_ps_mask(s_, l0, _CMP_GT_OQ), m1_ = _mm512_cmp_ps_mask(s_, l1, _CMP_GT_OQ),     \
                  m2_ = _mm512_cmp_ps_mask(s_, l2, _CMP_GT_OQ), m3_ = _mm512_cmp_ps_mask(s_, l3, _CMP_GT_OQ),     \
                  m4_ = _mm512_cmp_ps_mask(s_, l4, _CMP_GT_OQ), m5_ = _mm512_cmp_ps_mask(s_, l5, _CMP_GT_OQ),     \
                  m6_ = _mm512_cmp_ps_mask(s_, l6, _CMP_GT_OQ), m7_ = _mm512_cmp_ps_mask(s_, l7, _CMP_GT_OQ);     \
        l7 = _mm512_mask_blend_ps(m7_, l7, _mm512_mask_blend_ps(m6_, s_, l6));                                     \
        n7 = _mm512_mask_blend_epi32(m7_, n7, _mm512_mask_blend_epi32(m6_, c_, n6));                               \
        l6 = _mm512_mask_blend_ps(m6_, l6, _mm512_mask_blend_ps(m5_, s_, l5));                                     \
        n6 = _mm512_mask_blend_epi32(m6_, n6, _mm512_mask_blend_epi32(m5_, c_, n5));                               \
        l5 = _mm512_mask_blend_ps(m5_, l5, _mm512_mask_blend_ps(m4_, s_, l4));                                     \
        n5 = _mm512_mask_blend_epi32(m5_, n5, _mm512_mask_blend_epi32(m4_, c_, n4));                               \
        l4 = _mm512_mask_blend_ps(m4_, l4, _mm512_mask_blend_ps(m3_, s_, l3));                                     \
        n4 = _mm512_mask_blend_epi32(m4_, n4, _mm512_mask_blend_epi32(m3_, c_, n3));                               \
        l3 = _mm512_mask_blend_ps(m3_, l3, _mm512_mask_blend_ps(m2_, s_, l2));                                     \
        n3 = _mm512_mask_blend_epi32(m3_, n3, _mm512_mask_blend_epi32(m2_, c_, n2));                               \
        l2 = _mm512_mask_blend_ps(m2_, l2, _mm512_mask_blend_ps(m1_, s_, l1));                                     \
        n2 = _mm512_mask_blend_epi32(m2_, n2, _mm512_mask_blend_epi32(m1_, c_, n1));                               \
        l1 = _mm512_mask_blend_ps(m1_, l1, _mm512_mask_blend_ps(m0_, s_, l0));                                     \
        n1 = _mm512_mask_blend_epi32(m1_, n1, _mm512_mask_blend_epi32(m0_, c_, n0));                               \
        l0 = _mm512_mask_blend_ps(m0_, l0, s_);                                                                    \
        n0 = _mm512_mask_blend_epi32(m0_, n0, c_);                                                                 \
    } while (0)
            CKA_INSERT(a0, 0); CKA_INSERT(a1, 1); CKA_INSERT(a2, 2); CKA_INSERT(a3, 3);
            CKA_INSERT(a4, 4); CKA_INSERT(a5, 5); CKA_INSERT(a6, 6); CKA_INSERT(a7, 7);
#undef CKA_INSERT
        }
        int32_t ranks[8][16];
        _mm512_storeu_si512(ranks[0], n0);
        _mm512_storeu_si512(ranks[1], n1);
        _mm512_storeu_si512(ranks[2], n2);
        _mm512_storeu_si512(ranks[3], n3);
        _mm512_storeu_si512(ranks[4], n4);
        _mm512_storeu_si512(ranks[5], n5);
        _mm512_storeu_si512(ranks[6], n6);
        _mm512_storeu_si512(ranks[7], n7);
        for (int r = 0; r < 16 && i + r < count; r++)
            for (int t = 0; t < 8; t++) out[(i + r) * 8 + t] = ranks[t][r];
    }
    if (xt != stack) free(xt);
}

/// PLAID residual codes (ck_residual_encode) for 2 and 4 bits: sixteen dimensions per step, each value's bucket (the
/// number of cutoffs strictly below it) by a branch-free binary search over the sorted cutoffs held in one register
/// (`vpermps` looks up cutoff b + step − 1; 4 steps for 15 cutoffs instead of 15 compares): the count the AVX2 body
/// and the scalar body take, since "cutoff < v" is monotone over sorted cutoffs (a NaN is below none: bucket 0 in all).
AVX512 void ck_residual_encode_avx512(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                                      const float *cutoffs, long nbits, uint8_t *out) {
    long ncut = (1L << nbits) - 1, bytes = dim * nbits / 8;
    float table[16];
    for (long i = 0; i < 16; i++) table[i] = i < ncut ? cutoffs[i] : INFINITY;
    const __m512 cut = _mm512_loadu_ps(table);
    uint8_t buckets[4096];
    const long ahead = 6, lines = dim <= 256 ? (dim * (long)sizeof(float) + 63) / 64 : 0;
    for (long t = 0; t < count; t++) {
        if (t + ahead < count) {
            const char *row = (const char *)(centroids + (long)codes[t + ahead] * dim);
            for (long l = 0; l < lines; l++) _mm_prefetch(row + l * 64, _MM_HINT_T0);
        }
        const float *xr = x + t * dim, *c = centroids + (long)codes[t] * dim;
        for (long d0 = 0; d0 < dim; d0 += 4096) {
            long span = dim - d0 < 4096 ? dim - d0 : 4096;
            long d = 0;
            for (; d + 16 <= span; d += 16) {
                __m512 v = _mm512_sub_ps(_mm512_loadu_ps(xr + d0 + d), _mm512_loadu_ps(c + d0 + d));
                __m512i b = _mm512_setzero_si512();
                for (long step = 1L << (nbits - 1); step > 0; step >>= 1) {
                    __m512 probe = _mm512_permutexvar_ps(_mm512_add_epi32(b, _mm512_set1_epi32((int)step - 1)), cut);
                    b = _mm512_mask_add_epi32(b, _mm512_cmp_ps_mask(probe, v, _CMP_LT_OQ), b, _mm512_set1_epi32((int)step));
                }
                _mm_storeu_si128((__m128i *)(buckets + d), _mm512_cvtepi32_epi8(b));
            }
            for (; d < span; d++) {
                float v = xr[d0 + d] - c[d0 + d];
                unsigned b = 0;
                for (long i = 0; i < ncut; i++) b += cutoffs[i] < v;
                buckets[d] = (uint8_t)b;
            }
            ck_assign_pack_buckets(buckets, span, nbits, out + t * bytes + d0 * nbits / 8);
        }
    }
}

/// ck_assign_quantize_rows16 for dim a multiple of 16: the AVX2 body's steps on sixteen dimensions at a time — the
/// row's largest |x| (a maximum, so any order gives the same value), the same scalar scale and inverse, then per value
/// round to nearest even, clamp to ±bound, narrow — so the same int16 values and scales.
AVX512 void ck_assign_quantize_rows16_avx512(const float *x, long dim, long count, float bound, int16_t *q, float *scale) {
    const __m512 high = _mm512_set1_ps(bound), low = _mm512_set1_ps(-bound);
    for (long i = 0; i < count; i++) {
        const float *xr = x + i * dim;
        __m512 m = _mm512_setzero_ps();
        for (long d = 0; d < dim; d += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xr + d)));
        float top = _mm512_reduce_max_ps(m);
        float s = top > 0 && isfinite(top) ? top / bound : 1.0f;
        __m512 inverse = _mm512_set1_ps(1.0f / s);
        for (long d = 0; d < dim; d += 16) {
            __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + d), inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v = _mm512_min_ps(high, _mm512_max_ps(low, v));
            _mm256_storeu_si256((__m256i *)(void *)(q + i * dim + d), _mm512_cvtsepi32_epi16(_mm512_cvtps_epi32(v)));
        }
        scale[i] = s;
    }
}

/// The int16 first pass (ck_assign_best2_i16): sixteen rows per register (two dimensions per 32-bit lane),
/// eight columns per step. `MADD(acc, c, x)` adds the pair products of c and x to acc.
#define CKA_BEST2_I16_BODY(MADD)                                                                                     \
    long pairs = dim / 2;                                                                                            \
    float stack[32 * 256];                                                                                           \
    float *xt = pairs <= 256 ? stack : malloc((size_t)pairs * 32 * sizeof(float));                                   \
    float *scratch = xt + pairs * 16;                                                                                \
    /* Columns k…k4−1 are padding (bias −∞, never kept): a 4-column last step skips the rest of an 8-column one. */ \
    long k4 = (k + 3) / 4 * 4;                                                                                       \
    for (long i = 0; i < count; i += 16) {                                                                           \
        const float *p[16];                                                                                          \
        float rs[16];                                                                                                \
        for (int r = 0; r < 16; r++) {                                                                               \
            long at_ = i + r < count ? i + r : count - 1, row = rows ? rows[at_] : at_;                              \
            p[r] = (const float *)(const void *)(q + row * dim);                                                     \
            rs[r] = qscale[row] * cscale;                                                                            \
        }                                                                                                            \
        /* 32-bit moves only: two dimensions' int16 bits travel as one float's bits. */                              \
        ck_assign_transpose16(p, pairs, xt, scratch);                                                                \
        __m512 scale = _mm512_loadu_ps(rs);                                                                          \
        __m512 best = _mm512_set1_ps(-INFINITY), next = best;                                                        \
        __m512i at = _mm512_set1_epi32(-1), nat = at;                                                                \
        long j = 0;                                                                                                  \
        for (; j + 8 <= k4; j += 8) {                                                                                \
            const int16_t *base = packed + (j / PANEL) * pairs * PANEL * 2 + (j % PANEL) * 2;                        \
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;      \
            for (long d = 0; d < pairs; d++) {                                                                       \
                __m512i xv = _mm512_loadu_si512(xt + d * 16);                                                        \
                const int32_t *c = (const int32_t *)(const void *)(base + d * PANEL * 2);                            \
                a0 = MADD(a0, _mm512_set1_epi32(c[0]), xv);                                                          \
                a1 = MADD(a1, _mm512_set1_epi32(c[1]), xv);                                                          \
                a2 = MADD(a2, _mm512_set1_epi32(c[2]), xv);                                                          \
                a3 = MADD(a3, _mm512_set1_epi32(c[3]), xv);                                                          \
                a4 = MADD(a4, _mm512_set1_epi32(c[4]), xv);                                                          \
                a5 = MADD(a5, _mm512_set1_epi32(c[5]), xv);                                                          \
                a6 = MADD(a6, _mm512_set1_epi32(c[6]), xv);                                                          \
                a7 = MADD(a7, _mm512_set1_epi32(c[7]), xv);                                                          \
            }                                                                                                        \
            CKA_TAKE2(a0, 0); CKA_TAKE2(a1, 1); CKA_TAKE2(a2, 2); CKA_TAKE2(a3, 3);                                  \
            CKA_TAKE2(a4, 4); CKA_TAKE2(a5, 5); CKA_TAKE2(a6, 6); CKA_TAKE2(a7, 7);                                  \
        }                                                                                                            \
        if (j < k4) {                                                                                                \
            const int16_t *base = packed + (j / PANEL) * pairs * PANEL * 2 + (j % PANEL) * 2;                        \
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;                                          \
            for (long d = 0; d < pairs; d++) {                                                                       \
                __m512i xv = _mm512_loadu_si512(xt + d * 16);                                                        \
                const int32_t *c = (const int32_t *)(const void *)(base + d * PANEL * 2);                            \
                a0 = MADD(a0, _mm512_set1_epi32(c[0]), xv);                                                          \
                a1 = MADD(a1, _mm512_set1_epi32(c[1]), xv);                                                          \
                a2 = MADD(a2, _mm512_set1_epi32(c[2]), xv);                                                          \
                a3 = MADD(a3, _mm512_set1_epi32(c[3]), xv);                                                          \
            }                                                                                                        \
            CKA_TAKE2(a0, 0); CKA_TAKE2(a1, 1); CKA_TAKE2(a2, 2); CKA_TAKE2(a3, 3);                                  \
        }                                                                                                            \
        int32_t first[16], second[16];                                                                               \
        float v1[16], v2[16];                                                                                        \
        _mm512_storeu_si512(first, at);                                                                              \
        _mm512_storeu_si512(second, nat);                                                                            \
        _mm512_storeu_ps(v1, best);                                                                                  \
        _mm512_storeu_ps(v2, next);                                                                                  \
        for (int r = 0; r < 16 && i + r < count; r++) {                                                             \
            long row = rows ? rows[i + r] : i + r;                                                                   \
            ck_assign_merge_best2(best_score + 2 * row, best_index + 2 * row, v1[r],                                 \
                                  first[r] < 0 ? -1 : members ? members[first[r]] : first[r], v2[r],                 \
                                  second[r] < 0 ? -1 : members ? members[second[r]] : second[r]);                    \
        }                                                                                                            \
    }                                                                                                                \
    if (xt != stack) free(xt);

/// Best two per lane, as assign_best2_i16_avx2's CKA_TAKE2: a score above the best moves the best down; one above
/// the second replaces it (strictly: equal scores keep the earlier column).
#define CKA_TAKE2(a, t)                                                                                              \
    do {                                                                                                             \
        __m512 s_ = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), scale, _mm512_set1_ps(bias[j + t]));                      \
        __m512i c_ = _mm512_set1_epi32((int)(j + t));                                                                \
        __mmask16 m1_ = _mm512_cmp_ps_mask(s_, best, _CMP_GT_OQ), m2_ = _mm512_cmp_ps_mask(s_, next, _CMP_GT_OQ);    \
        next = _mm512_mask_blend_ps(m2_, next, _mm512_mask_blend_ps(m1_, s_, best));                                 \
        nat = _mm512_mask_blend_epi32(m2_, nat, _mm512_mask_blend_epi32(m1_, c_, at));                               \
        best = _mm512_mask_blend_ps(m1_, best, s_);                                                                  \
        at = _mm512_mask_blend_epi32(m1_, at, c_);                                                                   \
    } while (0)

#define CKA_MADD_BW(acc, c, x) _mm512_add_epi32(acc, _mm512_madd_epi16(c, x))
#define CKA_MADD_VNNI(acc, c, x) _mm512_dpwssd_epi32(acc, c, x)

AVX512 void ck_assign_best2_i16_avx512(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                       const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                       int32_t *best_index, float *best_score) {
    CKA_BEST2_I16_BODY(CKA_MADD_BW)
}

AVX512VNNI void ck_assign_best2_i16_vnni(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                         const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                         int32_t *best_index, float *best_score) {
    CKA_BEST2_I16_BODY(CKA_MADD_VNNI)
}

#undef CKA_TAKE2
#undef CKA_MADD_BW
#undef CKA_MADD_VNNI
#undef CKA_BEST2_I16_BODY
#endif
