// Late-interaction scoring kernels of PLAID search: the centroid-only approximate score from a u8
// query × centroid table, and the fused residual MaxSim of an int8 query against packed 1-, 2- or 4-bit
// residuals (no float decompression). Each has a portable scalar body and, on x86-64, an AVX2 body
// chosen at run time; both compute the same integers and the same float operations in the same order,
// so their results are bit-identical (the tests check this).
#include "CKernels.h"
#include "CKernelsAssign.h"
#include "maxsim_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CKM_X86 1
#else
#define CKM_X86 0
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// No fused multiply-add contraction: the scalar and SIMD bodies must round identically.
#pragma STDC FP_CONTRACT OFF

// MARK: - shared scalar pieces

/// Sum of 8 lane accumulators in the fixed order the SIMD body uses too.
static float reduce8(const float l[8]) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

/// 1 / ‖c + r‖ for a unit centroid c and r = a + b·u: ‖c + r‖² = 1 + 2(a·Σc + b·Σc·u) + Σ(a + b·u)².
static float inverse_norm(const ck_residual_query *Q, float sum_c, float sum_cu, int32_t sum_u, int32_t sum_uu) {
    float cr = Q->a * sum_c;
    cr = cr + Q->b * sum_cu;
    float rr = (float)Q->dim * Q->a * Q->a;
    rr = rr + 2.0f * Q->a * Q->b * (float)sum_u;
    rr = rr + Q->b * Q->b * (float)sum_uu;
    float squared = 1.0f + 2.0f * cr;
    squared = squared + rr;
    return squared > 0 ? 1.0f / sqrtf(squared) : 0.0f;
}

/// One query token's score against one document token.
static inline float token_score(float centroid_score, float offset, float scale, int32_t dot, float inverse) {
    float t1 = centroid_score + offset;
    float t2 = scale * (float)dot;
    float t3 = t1 + t2;
    return t3 * inverse;
}

/// Residual levels of one token, `dim` values, zero beyond `dim` up to `padded`.
static void decode_scalar(const ck_residual_query *Q, const uint8_t *packed, uint8_t *u, long padded) {
    long dim = Q->dim;
    int bits = (int)Q->nbits;
    int mask = (1 << bits) - 1;
    for (long d = 0; d < dim; d++) {
        long bit = d * bits;
        u[d] = Q->lut[(packed[bit >> 3] >> (bit & 7)) & mask];
    }
    for (long d = dim; d < padded; d++) u[d] = 0;
}

// MARK: - scalar bodies

void ck_centroid_scores_scalar(const float *centroids, long rows, long dim, const float *query_t, long stride, float *out) {
    for (long c = 0; c < rows; c++) {
        const float *row = centroids + c * dim;
        float *o = out + c * stride;
        for (long j = 0; j < stride; j++) {
            float acc = 0;
            // Fused multiply-adds in d order, as the AVX2 body's vfmadd (one rounding each): the same bits.
            for (long d = 0; d < dim; d++) acc = fmaf(row[d], query_t[d * stride + j], acc);
            o[j] = acc;
        }
    }
}

/// The largest of 0 and the k × nq scores (a maximum is exact, so any order gives the same value).
static float scores_high_scalar(const float *scores, long k, long nq, long stride) {
    float high = 0;
    for (long c = 0; c < k; c++)
        for (long q = 0; q < nq; q++) high = scores[c * stride + q] > high ? scores[c * stride + q] : high;
    return high;
}

static void quantize_rows_scalar(const float *scores, long first, long count, long nq, long stride, float scale, uint8_t *out,
                                 long width) {
    for (long c = first; c < first + count; c++) {
        const float *row = scores + c * stride;
        uint8_t *o = out + c * width;
        for (long q = 0; q < nq; q++) {
            float v = row[q] * scale + 0.5f;
            o[q] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
        for (long q = nq; q < width; q++) o[q] = 0;
    }
}

#if CKM_X86
static float scores_high_avx2(const float *scores, long k, long nq, long stride);
static void quantize_rows_avx2(const float *scores, long first, long count, long nq, long stride, float scale, uint8_t *out,
                               long width);
#endif

void ck_quantize_scores_u8(const float *scores, long k, long nq, long stride, uint8_t *out, long width) {
    float high;
#if CKM_X86
    if (ck_has_avx2()) high = scores_high_avx2(scores, k, nq, stride);
    else
#endif
        high = scores_high_scalar(scores, k, nq, stride);
    ck_quantize_scores_u8_rows(scores, 0, k, nq, stride, high, out, width);
}

void ck_quantize_scores_u8_rows(const float *scores, long first, long count, long nq, long stride, float high, uint8_t *out,
                                long width) {
    float scale = high > 0 ? 255.0f / high : 0.0f;
#if CKM_X86
    if (ck_has_avx2()) {
        quantize_rows_avx2(scores, first, count, nq, stride, scale, out, width);
        return;
    }
#endif
    quantize_rows_scalar(scores, first, count, nq, stride, scale, out, width);
}

uint32_t ck_code_maxsum_u8_scalar(const uint16_t *codes, long count, const uint8_t *table, long width, long used) {
    uint32_t total = 0;
    for (long q = 0; q < used; q++) {
        uint8_t best = 0;
        for (long t = 0; t < count; t++) {
            uint8_t v = table[(long)codes[t] * width + q];
            if (v > best) best = v;
        }
        total += best;
    }
    (void)width;
    return total;
}

static float sum_best(const ck_residual_query *Q, const float *best) {
    float sum = 0;
    for (long q = 0; q < Q->nq; q++) sum += best[q];
    return sum;
}

/// One centroid row of ck_exact_centroids_build: its largest |value|, its lane sums, then the int16 values.
static float exact_row_scale(const float *row, long dim, float *sum) {
    float largest = 0, lanes[8] = {0};
    for (long d = 0; d < dim; d++) {
        float v = fabsf(row[d]);
        largest = v > largest ? v : largest;
        lanes[d & 7] = lanes[d & 7] + row[d];
    }
    *sum = reduce8(lanes);
    return largest;
}

/// Rounded half away from zero by a truncating conversion (lrintf is a library call per value).
static inline int16_t exact_round(float v) { return (int16_t)(v + (v >= 0 ? 0.5f : -0.5f)); }

void ck_exact_centroids_build_scalar(const float *centroids, long k, long dim, long dim_padded, int16_t *c16, float *scale,
                                     float *sum) {
    for (long c = 0; c < k; c++) {
        const float *row = centroids + c * dim;
        float largest = exact_row_scale(row, dim, sum + c);
        scale[c] = largest / (float)CK_EXACT_CENTROID_RANGE;
        float inverse = largest > 0 ? (float)CK_EXACT_CENTROID_RANGE / largest : 0;
        int16_t *out = c16 + c * dim_padded;
        for (long d = 0; d < dim; d++) out[d] = exact_round(row[d] * inverse);
        for (long d = dim; d < dim_padded; d++) out[d] = 0;
    }
}

/// 1 / ‖c + r‖ of one document token from its decoded levels u and its centroid's int16 row.
static float token_inverse_scalar(const ck_residual_query *Q, const ck_exact_centroids *C, long code, const uint8_t *u) {
    const int16_t *c = C->c16 + code * Q->dim_padded;
    int32_t su = 0, suu = 0, scu = 0;
    for (long d = 0; d < Q->dim; d++) {
        su += u[d];
        suu += (int32_t)u[d] * u[d];
        scu += (int32_t)c[d] * u[d];
    }
    return inverse_norm(Q, C->sum[code], C->scale[code] * (float)scu, su, suu);
}


// MARK: - shared by the SIMD token loops (AVX2, AVX512-VNNI, NEON)

/// Tokens per pass: pass A decodes their levels and norms, pass B scores them.
#define PASS_TOKENS 32

/// The query regrouped for the token loop: for each group of 4 dimensions g and block j of 8 query
/// tokens, 32 bytes = 8 tokens × their 4 int8 values, so one multiply-add against the document token's 4
/// levels (broadcast) yields partial dot products of several query tokens at once and no horizontal sums
/// are needed. Caller frees.
static int8_t *group_query(const ck_residual_query *Q) {
    long nqb = Q->nq_padded / 8, groups = (Q->dim + 3) / 4, dp = Q->dim_padded;
    int8_t *g = malloc((size_t)(nqb * groups * 32));
    if (!g) return NULL;
    for (long gi = 0; gi < groups; gi++)
        for (long j = 0; j < nqb; j++)
            for (long l = 0; l < 8; l++)
                for (long b = 0; b < 4; b++) g[((gi * nqb + j) * 8 + l) * 4 + b] = Q->q[(j * 8 + l) * dp + 4 * gi + b];
    return g;
}

// MARK: - AVX2 bodies

#if CKM_X86
#define AVX2 __attribute__((target("avx2,fma")))

/// Two centroids × 32 query tokens per step: per dimension two broadcasts, four query loads, eight
/// fused multiply-adds (sequential over d in every lane, as the scalar body's fmaf). Half the operations of
/// separate multiplies and adds, but at 128-d the kernel mostly waits for the 4 MB of centroids it streams
/// per query (measured 2.43 → 2.33 ms CPU per query, within noise).
AVX2 static void centroid_scores_avx2(const float *centroids, long rows, long dim, const float *query_t, long stride, float *out) {
    long c = 0;
    for (; c + 2 <= rows; c += 2) {
        const float *r0 = centroids + c * dim, *r1 = r0 + dim;
        long j = 0;
        for (; j + 32 <= stride; j += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (long d = 0; d < dim; d++) {
                const float *q = query_t + d * stride + j;
                __m256 q0 = _mm256_loadu_ps(q), q1 = _mm256_loadu_ps(q + 8), q2 = _mm256_loadu_ps(q + 16), q3 = _mm256_loadu_ps(q + 24);
                __m256 x = _mm256_set1_ps(r0[d]), y = _mm256_set1_ps(r1[d]);
                a0 = _mm256_fmadd_ps(x, q0, a0);
                a1 = _mm256_fmadd_ps(x, q1, a1);
                a2 = _mm256_fmadd_ps(x, q2, a2);
                a3 = _mm256_fmadd_ps(x, q3, a3);
                b0 = _mm256_fmadd_ps(y, q0, b0);
                b1 = _mm256_fmadd_ps(y, q1, b1);
                b2 = _mm256_fmadd_ps(y, q2, b2);
                b3 = _mm256_fmadd_ps(y, q3, b3);
            }
            float *o0 = out + c * stride + j, *o1 = o0 + stride;
            _mm256_storeu_ps(o0, a0); _mm256_storeu_ps(o0 + 8, a1); _mm256_storeu_ps(o0 + 16, a2); _mm256_storeu_ps(o0 + 24, a3);
            _mm256_storeu_ps(o1, b0); _mm256_storeu_ps(o1 + 8, b1); _mm256_storeu_ps(o1 + 16, b2); _mm256_storeu_ps(o1 + 24, b3);
        }
        for (; j + 8 <= stride; j += 8) {
            __m256 a = _mm256_setzero_ps(), b = a;
            for (long d = 0; d < dim; d++) {
                __m256 q = _mm256_loadu_ps(query_t + d * stride + j);
                a = _mm256_fmadd_ps(_mm256_set1_ps(r0[d]), q, a);
                b = _mm256_fmadd_ps(_mm256_set1_ps(r1[d]), q, b);
            }
            _mm256_storeu_ps(out + c * stride + j, a);
            _mm256_storeu_ps(out + (c + 1) * stride + j, b);
        }
    }
    if (c < rows) ck_centroid_scores_scalar(centroids + c * dim, rows - c, dim, query_t, stride, out + c * stride);
}

/// scores_high_scalar 8 query tokens per compare (max_ps(s, high) = s > high ? s : high, as the scalar).
AVX2 static float scores_high_avx2(const float *scores, long k, long nq, long stride) {
    __m256 high8 = _mm256_setzero_ps();
    float high = 0;
    for (long c = 0; c < k; c++) {
        const float *row = scores + c * stride;
        long q = 0;
        for (; q + 8 <= nq; q += 8) high8 = _mm256_max_ps(_mm256_loadu_ps(row + q), high8);
        for (; q < nq; q++) high = row[q] > high ? row[q] : high;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, high8);
    for (int i = 0; i < 8; i++) high = lanes[i] > high ? lanes[i] : high;
    return high;
}

/// quantize_rows_scalar 8 scores per step: the same multiply, add, clamp and truncation (the scalar body
/// took 0.24 ms of a 48-d query's CPU at K = 8,192: a quarter million scores one at a time).
AVX2 static void quantize_rows_avx2(const float *scores, long first, long count, long nq, long stride, float scale, uint8_t *out,
                                    long width) {
    const __m256 s = _mm256_set1_ps(scale), half = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
    for (long c = first; c < first + count; c++) {
        const float *row = scores + c * stride;
        uint8_t *o = out + c * width;
        long q = 0;
        for (; q + 8 <= nq; q += 8) {
            __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(row + q), s), half);
            __m256i i = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top));
            __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
            _mm_storel_epi64((__m128i *)(o + q), _mm_packus_epi16(words, words));
        }
        for (; q < nq; q++) {
            float v = row[q] * scale + 0.5f;
            o[q] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
        for (; q < width; q++) o[q] = 0;
    }
}

/// Eight table rows per step into four running maxima (the rows sit in L2: independent loads keep
/// several in flight; an in-loop prefetch of rows ahead cost more than it saved).
AVX2 static uint32_t code_maxsum_u8_avx2(const uint16_t *codes, long count, const uint8_t *table, long width) {
    uint32_t total = 0;
    for (long w = 0; w < width; w += 32) {
        const uint8_t *base = table + w;
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(base + (long)codes[0] * width));
        __m256i m1 = m0, m2 = m0, m3 = m0;
        long t = 1;
        for (; t + 8 <= count; t += 8) {
            m0 = _mm256_max_epu8(m0, _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(base + (long)codes[t] * width)),
                                                     _mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 1] * width))));
            m1 = _mm256_max_epu8(m1, _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 2] * width)),
                                                     _mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 3] * width))));
            m2 = _mm256_max_epu8(m2, _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 4] * width)),
                                                     _mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 5] * width))));
            m3 = _mm256_max_epu8(m3, _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 6] * width)),
                                                     _mm256_loadu_si256((const __m256i *)(base + (long)codes[t + 7] * width))));
        }
        for (; t < count; t++) m0 = _mm256_max_epu8(m0, _mm256_loadu_si256((const __m256i *)(base + (long)codes[t] * width)));
        __m256i s = _mm256_sad_epu8(_mm256_max_epu8(_mm256_max_epu8(m0, m1), _mm256_max_epu8(m2, m3)), _mm256_setzero_si256());
        total += (uint32_t)(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2)
                            + _mm256_extract_epi64(s, 3));
    }
    return total;
}

/// Residual levels of one token into `u` (zero-padded to dim_padded), 32 dimensions per SIMD step
/// for 4- and 1-bit codes, the scalar decoder for the rest.
AVX2 static void decode_avx2(const ck_residual_query *Q, const uint8_t *packed, uint8_t *u) {
    long dim = Q->dim, dp = Q->dim_padded;
    long d = 0;
    if (Q->nbits == 4) {
        __m128i lut = _mm_loadu_si128((const __m128i *)Q->lut);
        __m128i low = _mm_set1_epi8(0x0F);
        for (; d + 32 <= dim; d += 32) {
            __m128i x = _mm_loadu_si128((const __m128i *)(packed + d / 2));
            __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(x, low));
            __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(x, 4), low));
            _mm_storeu_si128((__m128i *)(u + d), _mm_unpacklo_epi8(lo, hi));
            _mm_storeu_si128((__m128i *)(u + d + 16), _mm_unpackhi_epi8(lo, hi));
        }
    } else if (Q->nbits == 1) {
        const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128,
                                             1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128);
        __m256i zero_level = _mm256_set1_epi8((char)Q->lut[0]);
        __m256i one_level = _mm256_set1_epi8((char)Q->lut[1]);
        for (; d + 32 <= dim; d += 32) {
            int32_t word;
            memcpy(&word, packed + d / 8, 4);
            __m256i x = _mm256_shuffle_epi8(_mm256_set1_epi32(word), spread);
            __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(x, bit), bit);
            _mm256_storeu_si256((__m256i *)(u + d), _mm256_blendv_epi8(zero_level, one_level, set));
        }
    }
    // A 16-dimension tail (48-d models) in one step; padding decodes to level lut[0], which must be 0.
    if (d + 16 == dim && Q->lut[0] == 0) {
        if (Q->nbits == 4) {
            __m128i lut = _mm_loadu_si128((const __m128i *)Q->lut);
            __m128i low = _mm_set1_epi8(0x0F);
            __m128i x = _mm_loadl_epi64((const __m128i *)(packed + d / 2));
            __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(x, low));
            __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(x, 4), low));
            _mm_storeu_si128((__m128i *)(u + d), _mm_unpacklo_epi8(lo, hi));
            d += 16;
        } else if (Q->nbits == 1) {
            uint16_t half;
            memcpy(&half, packed + d / 8, 2);
            __m128i x = _mm_shuffle_epi8(_mm_set1_epi16((short)half),
                                         _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
            __m128i bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128);
            __m128i set = _mm_cmpeq_epi8(_mm_and_si128(x, bit), bit);
            _mm_storeu_si128((__m128i *)(u + d), _mm_and_si128(set, _mm_set1_epi8((char)Q->lut[1])));
            d += 16;
        }
    }
    int bits = (int)Q->nbits;
    int mask = (1 << bits) - 1;
    for (; d < dim; d++) {
        long b = d * bits;
        u[d] = Q->lut[(packed[b >> 3] >> (b & 7)) & mask];
    }
    for (; d < dp; d++) u[d] = 0;
}

/// Dot products of NB blocks of 8 query tokens (from block j0) with the token's levels `u`, then
/// their scores folded into best. Levels ≤ 63: a maddubs lane is ≤ 2·63·127, two of them fit in int16.
#define BLOCK_LOOP(NB)                                                                                       \
    do {                                                                                                     \
        __m256i acc[NB];                                                                                     \
        for (int jj = 0; jj < (NB); jj++) acc[jj] = _mm256_setzero_si256();                                  \
        long g = 0;                                                                                          \
        for (; g + 2 <= groups; g += 2) {                                                                    \
            int32_t w0, w1;                                                                                  \
            memcpy(&w0, u + 4 * g, 4);                                                                       \
            memcpy(&w1, u + 4 * g + 4, 4);                                                                   \
            __m256i b0 = _mm256_set1_epi32(w0), b1 = _mm256_set1_epi32(w1);                                  \
            const int8_t *r0 = qg + (g * nqb + j0) * 32, *r1 = qg + ((g + 1) * nqb + j0) * 32;              \
            for (int jj = 0; jj < (NB); jj++) {                                                              \
                __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(b0, _mm256_loadu_si256((const __m256i *)(r0 + 32 * jj))), \
                                             _mm256_maddubs_epi16(b1, _mm256_loadu_si256((const __m256i *)(r1 + 32 * jj)))); \
                acc[jj] = _mm256_add_epi32(acc[jj], _mm256_madd_epi16(p, ones16));                          \
            }                                                                                                \
        }                                                                                                    \
        if (g < groups) {                                                                                    \
            int32_t w0;                                                                                      \
            memcpy(&w0, u + 4 * g, 4);                                                                       \
            __m256i b0 = _mm256_set1_epi32(w0);                                                              \
            const int8_t *r0 = qg + (g * nqb + j0) * 32;                                                     \
            for (int jj = 0; jj < (NB); jj++)                                                                \
                acc[jj] = _mm256_add_epi32(acc[jj], _mm256_madd_epi16(                                       \
                    _mm256_maddubs_epi16(b0, _mm256_loadu_si256((const __m256i *)(r0 + 32 * jj))), ones16)); \
        }                                                                                                    \
        for (int jj = 0; jj < (NB); jj++) {                                                                  \
            long qb = (j0 + jj) * 8;                                                                         \
            __m256 dot = _mm256_cvtepi32_ps(acc[jj]);                                                        \
            __m256 t1 = _mm256_add_ps(_mm256_loadu_ps(row + qb), _mm256_loadu_ps(Q->offset + qb));          \
            __m256 t2 = _mm256_mul_ps(_mm256_loadu_ps(Q->scale + qb), dot);                                  \
            __m256 sc = _mm256_mul_ps(_mm256_add_ps(t1, t2), inv);                                           \
            /* max_ps(s, best) = s > best ? s : best, as the scalar body. */                                 \
            _mm256_storeu_ps(best + qb, _mm256_max_ps(sc, _mm256_loadu_ps(best + qb)));                      \
        }                                                                                                    \
    } while (0)

/// Tokens ahead whose centroid row, table row and residuals are fetched.
#define TOKENS_AHEAD 8

static inline void prefetch_lines(const void *p, long bytes) {
    for (long o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/// 4-bit levels of 32 dimensions (16 packed bytes) in one register (no store and reload: a 32-byte
/// load of two 16-byte stores cannot be forwarded and stalls).
AVX2 static inline __m256i decode4_32(__m128i lut, const uint8_t *p) {
    __m128i low = _mm_set1_epi8(0x0F);
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(x, low));
    __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(x, 4), low));
    return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}

/// 4-bit levels of the last 16 dimensions (8 packed bytes), the padding lanes zero.
AVX2 static inline __m256i decode4_16(__m128i lut, const uint8_t *p) {
    __m128i low = _mm_set1_epi8(0x0F);
    __m128i x = _mm_loadl_epi64((const __m128i *)p);
    __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(x, low));
    __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(x, 4), low));
    return _mm256_zextsi128_si256(_mm_unpacklo_epi8(lo, hi));
}

/// Lane i = the sum of the 8 int32 lanes of v[i].
AVX2 static inline __m256i sum_lanes8(const __m256i v[8]) {
    __m256i ab = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i cd = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
}

/// inverse_norm for 8 tokens, the same float operations in the same order (so the same bits).
AVX2 static inline __m256 inverse_norm8(const ck_residual_query *Q, __m256 sum_c, __m256 sum_cu, __m256i sum_u, __m256i sum_uu) {
    __m256 cr = _mm256_mul_ps(_mm256_set1_ps(Q->a), sum_c);
    cr = _mm256_add_ps(cr, _mm256_mul_ps(_mm256_set1_ps(Q->b), sum_cu));
    float rr0 = (float)Q->dim * Q->a * Q->a, ab2 = 2.0f * Q->a * Q->b, bb = Q->b * Q->b;
    __m256 rr = _mm256_add_ps(_mm256_set1_ps(rr0), _mm256_mul_ps(_mm256_set1_ps(ab2), _mm256_cvtepi32_ps(sum_u)));
    rr = _mm256_add_ps(rr, _mm256_mul_ps(_mm256_set1_ps(bb), _mm256_cvtepi32_ps(sum_uu)));
    __m256 squared = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(_mm256_set1_ps(2.0f), cr));
    squared = _mm256_add_ps(squared, rr);
    __m256 inverse = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(squared));
    return _mm256_and_ps(inverse, _mm256_cmp_ps(squared, _mm256_setzero_ps(), _CMP_GT_OQ));
}

/// Levels of one token into `u` (dim_padded bytes, zero padding): 4-bit 48/64/…-d tokens 32 dimensions
/// per register, the others by decode_avx2.
AVX2 static inline void decode_token(const ck_residual_query *Q, int fast4, __m128i lut4, const uint8_t *token, uint8_t *u) {
    if (!fast4) {
        decode_avx2(Q, token, u);
        return;
    }
    long dim = Q->dim, chunks = Q->dim_padded / 32;
    for (long k = 0; k < chunks; k++) {
        __m256i x = 32 * k + 32 <= dim ? decode4_32(lut4, token + 16 * k) : decode4_16(lut4, token + 16 * k);
        _mm256_storeu_si256((__m256i *)(u + 32 * k), x);
    }
}

/// Pass A of up to 8 tokens t … t + m − 1 (m ≤ 8; `count` tokens in all): their levels decoded into
/// levels + l · dim_padded and their 1/‖c + r‖ returned in lanes 0 … m − 1 (integer sums, then the float
/// formula in SIMD: inverse_norm's bits). The int16 centroid row of the token TOKENS_AHEAD on is fetched.
AVX2 static __m256 decode_inverse8(const ck_residual_query *Q, const ck_exact_centroids *C, int fast4, __m128i lut4,
                                   const uint16_t *codes, const uint8_t *packed, long t, long m, long count, uint8_t *levels) {
    long dim = Q->dim, dp = Q->dim_padded, chunks = dp / 32, bytes = dim * Q->nbits / 8;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i su[8], suu[8], scu[8];
    float sum_c[8] __attribute__((aligned(32))), scale_c[8] __attribute__((aligned(32)));
    for (int l = 0; l < 8; l++) {
        su[l] = suu[l] = scu[l] = _mm256_setzero_si256();
        sum_c[l] = scale_c[l] = 0;
        if (l >= m) continue;
        long tt = t + l, ahead = tt + TOKENS_AHEAD;
        // Tokens come in centroid order, but the finalists use a few thousand of the K centroids, so
        // most rows are new and too sparse for the hardware prefetcher.
        if (ahead < count) prefetch_lines(C->c16 + (long)codes[ahead] * dp, dp * (long)sizeof(int16_t));
        long code = codes[tt];
        const uint8_t *token = packed + tt * bytes;
        uint8_t *u = levels + l * dp;
        const int16_t *c = C->c16 + code * dp;
        if (!fast4) decode_avx2(Q, token, u);
        for (long k = 0; k < chunks; k++) {
            __m256i x;
            if (fast4) {
                x = 32 * k + 32 <= dim ? decode4_32(lut4, token + 16 * k) : decode4_16(lut4, token + 16 * k);
                _mm256_storeu_si256((__m256i *)(u + 32 * k), x);
            } else {
                x = _mm256_loadu_si256((const __m256i *)(u + 32 * k));
            }
            su[l] = _mm256_add_epi32(su[l], _mm256_sad_epu8(x, _mm256_setzero_si256()));
            suu[l] = _mm256_add_epi32(suu[l], _mm256_madd_epi16(_mm256_maddubs_epi16(x, x), ones16));
            __m256i c0 = _mm256_loadu_si256((const __m256i *)(c + 32 * k));
            __m256i c1 = _mm256_loadu_si256((const __m256i *)(c + 32 * k + 16));
            scu[l] = _mm256_add_epi32(scu[l], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(x)), c0));
            scu[l] = _mm256_add_epi32(scu[l], _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(x, 1)), c1));
        }
        sum_c[l] = C->sum[code];
        scale_c[l] = C->scale[code];
    }
    __m256 sum_cu = _mm256_mul_ps(_mm256_load_ps(scale_c), _mm256_cvtepi32_ps(sum_lanes8(scu)));
    return inverse_norm8(Q, _mm256_load_ps(sum_c), sum_cu, sum_lanes8(su), sum_lanes8(suu));
}

/// The AVX2 twin of ck_residual_inverse_norms_scalar: pass A of the kernel below, 8 tokens at a time.
AVX2 static void residual_inverse_norms_avx2(const ck_residual_query *Q, const ck_exact_centroids *C, long count,
                                             const uint16_t *codes, const uint8_t *packed, float *out, uint8_t *levels) {
    int fast4 = Q->nbits == 4 && Q->dim % 16 == 0;
    __m128i lut4 = _mm_loadu_si128((const __m128i *)Q->lut);
    float lanes[8] __attribute__((aligned(32)));
    for (long t = 0; t < count; t += 8) {
        long m = count - t < 8 ? count - t : 8;
        _mm256_store_ps(lanes, decode_inverse8(Q, C, fast4, lut4, codes, packed, t, m, count, levels));
        for (long l = 0; l < m; l++) out[t + l] = lanes[l];
    }
}

/// The AVX2 twin of ck_residual_maxsim_sorted_scalar. Tokens in the caller's (centroid) order, in
/// passes of up to PASS_TOKENS: pass A decodes their levels (kept for pass B) and, without stored
/// `inverses`, computes their norms 8 at a time (decode_inverse8); pass B runs the int8 × level dot
/// products against all query tokens and folds the scores into the token's document's row of best.
/// Residuals, centroid rows and table rows are all read in memory order; the best rows, read at random
/// (but few: docs × nq_padded floats), are fetched TOKENS_AHEAD tokens ahead.
/// With `vnni`, pass B is maxsim512.c's (the same scores, bit for bit).
AVX2 static void residual_maxsim_sorted_avx2(const ck_residual_query *Q, const ck_exact_centroids *C, const int8_t *qg,
                                             long docs, long count, const uint16_t *codes, const uint32_t *doc_of_token,
                                             const uint8_t *packed, const float *stored, float *best_all, float *out,
                                             uint8_t *levels, int vnni) {
    long dim = Q->dim, nqp = Q->nq_padded, dp = Q->dim_padded, bytes = dim * Q->nbits / 8;
    long nqb = nqp / 8, groups = (dim + 3) / 4;
    const __m256i ones16 = _mm256_set1_epi16(1);
    int fast4 = Q->nbits == 4 && dim % 16 == 0;
    __m128i lut4 = _mm_loadu_si128((const __m128i *)Q->lut);
    float computed[PASS_TOKENS] __attribute__((aligned(32)));
    for (long i = 0; i < docs * nqp; i += 8) _mm256_storeu_ps(best_all + i, _mm256_set1_ps(-INFINITY));
    for (long t0 = 0; t0 < count; t0 += PASS_TOKENS) {
        long m = count - t0 < PASS_TOKENS ? count - t0 : PASS_TOKENS;
        for (long l = 0; l < m; l++) {
            long t = t0 + l, ahead = t + TOKENS_AHEAD;
            if (ahead < count) prefetch_lines(best_all + (long)doc_of_token[ahead] * nqp, nqp * (long)sizeof(float));
            // This token's table row, read by pass B after the rest of the pass.
            prefetch_lines(Q->ctable + (long)codes[t] * nqp, nqp * (long)sizeof(float));
            if (stored) decode_token(Q, fast4, lut4, packed + t * bytes, levels + l * dp);
        }
        if (!stored)
            for (long b8 = 0; b8 < m; b8 += 8)
                _mm256_store_ps(computed + b8, decode_inverse8(Q, C, fast4, lut4, codes, packed, t0 + b8,
                                                               m - b8 < 8 ? m - b8 : 8, count, levels + b8 * dp));
        const float *inverses = stored ? stored + t0 : computed;
        if (vnni) {
            ck_residual_pass_vnni(Q, qg, levels, m, inverses, codes + t0, doc_of_token + t0, best_all);
            continue;
        }
        for (long l = 0; l < m; l++) {
            const uint8_t *u = levels + l * dp;
            __m256 inv = _mm256_set1_ps(inverses[l]);
            const float *row = Q->ctable + (long)codes[t0 + l] * nqp;
            float *best = best_all + (long)doc_of_token[t0 + l] * nqp;
            for (long j0 = 0; j0 < nqb; j0 += 4) {
                switch (nqb - j0) {
                case 1: BLOCK_LOOP(1); break;
                case 2: BLOCK_LOOP(2); break;
                case 3: BLOCK_LOOP(3); break;
                default: BLOCK_LOOP(4); break;
                }
            }
        }
    }
    for (long doc = 0; doc < docs; doc++) out[doc] = sum_best(Q, best_all + doc * nqp);
}

/// The AVX2 twin of ck_exact_centroids_build_scalar (same lane sums, same products, same rounding).
AVX2 static void exact_centroids_build_avx2(const float *centroids, long k, long dim, long dim_padded, int16_t *c16,
                                            float *scale, float *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    for (long c = 0; c < k; c++) {
        const float *row = centroids + c * dim;
        __m256 lanes = _mm256_setzero_ps(), largest8 = _mm256_setzero_ps();
        long d = 0;
        for (; d + 8 <= dim; d += 8) {
            __m256 v = _mm256_loadu_ps(row + d);
            lanes = _mm256_add_ps(lanes, v);
            largest8 = _mm256_max_ps(largest8, _mm256_andnot_ps(sign, v));
        }
        float l[8], m[8];
        _mm256_storeu_ps(l, lanes);
        _mm256_storeu_ps(m, largest8);
        float largest = 0;
        for (int i = 0; i < 8; i++) largest = m[i] > largest ? m[i] : largest;
        for (; d < dim; d++) {
            float v = fabsf(row[d]);
            largest = v > largest ? v : largest;
            l[d & 7] = l[d & 7] + row[d];
        }
        sum[c] = reduce8(l);
        scale[c] = largest / (float)CK_EXACT_CENTROID_RANGE;
        float inverse = largest > 0 ? (float)CK_EXACT_CENTROID_RANGE / largest : 0;
        __m256 inv = _mm256_set1_ps(inverse);
        int16_t *out = c16 + c * dim_padded;
        d = 0;
        for (; d + 8 <= dim; d += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + d), inv);
            // v + (v >= 0 ? 0.5 : -0.5): 0.5 with v's sign (v = -0 gives -0.5, truncated to 0 as the scalar).
            __m256 r = _mm256_add_ps(v, _mm256_or_ps(half, _mm256_and_ps(sign, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ))));
            __m256i t = _mm256_cvttps_epi32(r);
            __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
            _mm_storeu_si128((__m128i *)(out + d), packed);
        }
        for (; d < dim; d++) out[d] = exact_round(row[d] * inverse);
        for (; d < dim_padded; d++) out[d] = 0;
    }
}
#endif

// MARK: - dispatch

void ck_centroid_scores(const float *centroids, long rows, long dim, const float *query_t, long stride, float *out) {
#if CKM_X86
    if (ck_has_avx2() && stride % 8 == 0) {
        centroid_scores_avx2(centroids, rows, dim, query_t, stride, out);
        return;
    }
#endif
    ck_centroid_scores_scalar(centroids, rows, dim, query_t, stride, out);
}

#if defined(__aarch64__)
/// The NEON twin of code_maxsum_u8_avx2: sixteen query tokens a register, one `umax` per document token, the
/// columns summed across (`uaddlv`); padding columns of the table are zero, as there.
static uint32_t code_maxsum_u8_neon(const uint16_t *codes, long count, const uint8_t *table, long width) {
    uint32_t total = 0;
    for (long w = 0; w < width; w += 16) {
        const uint8_t *base = table + w;
        uint8x16_t m0 = vld1q_u8(base + (long)codes[0] * width), m1 = m0, m2 = m0, m3 = m0;
        long t = 1;
        for (; t + 4 <= count; t += 4) {
            m0 = vmaxq_u8(m0, vld1q_u8(base + (long)codes[t] * width));
            m1 = vmaxq_u8(m1, vld1q_u8(base + (long)codes[t + 1] * width));
            m2 = vmaxq_u8(m2, vld1q_u8(base + (long)codes[t + 2] * width));
            m3 = vmaxq_u8(m3, vld1q_u8(base + (long)codes[t + 3] * width));
        }
        for (; t < count; t++) m0 = vmaxq_u8(m0, vld1q_u8(base + (long)codes[t] * width));
        total += vaddlvq_u8(vmaxq_u8(vmaxq_u8(m0, m1), vmaxq_u8(m2, m3)));
    }
    return total;
}
#endif

uint32_t ck_code_maxsum_u8(const uint16_t *codes, long count, const uint8_t *table, long width, long used) {
    if (count <= 0) return 0;
#if CKM_X86
    if (ck_has_avx2() && width % 32 == 0) return code_maxsum_u8_avx2(codes, count, table, width);
#elif defined(__aarch64__)
    if (width % 16 == 0) return code_maxsum_u8_neon(codes, count, table, width);
#endif
    return ck_code_maxsum_u8_scalar(codes, count, table, width, used);
}

#define CODES_AHEAD 8

void ck_code_maxsum_u8_batch(const uint16_t *const *codes_of_doc, const long *counts, long docs, const uint8_t *table,
                             long width, long used, float *out) {
    for (long i = 0; i < docs; i++) {
        if (i + CODES_AHEAD < docs) {
            const char *next = (const char *)codes_of_doc[i + CODES_AHEAD];
            long bytes = counts[i + CODES_AHEAD] * (long)sizeof(uint16_t);
            for (long o = 0; o < bytes; o += 64) __builtin_prefetch(next + o);
        }
        out[i] = (float)ck_code_maxsum_u8(codes_of_doc[i], counts[i], table, width, used);
    }
}


/// 8-bit residuals (residual8.c; Q is the base of a ck_residual8_query): the tokens' residuals, dim
/// bytes each, handed to ck_residual8_maxsim_batch through pointers. Returns 0 without memory.
static int residual8_sorted(const ck_residual_query *Q, long docs, long count, const uint16_t *codes,
                            const uint32_t *doc_of_token, const uint8_t *packed, const float *inverses, float *best, float *out,
                            int scalar) {
    const uint8_t **pointers = malloc((size_t)(count > 0 ? count : 1) * sizeof *pointers);
    if (!pointers) return 0;
    for (long i = 0; i < count; i++) pointers[i] = packed + i * Q->dim;
    const ck_residual8_query *wide = (const ck_residual8_query *)Q;
    if (scalar) ck_residual8_maxsim_batch_scalar(wide, docs, count, codes, doc_of_token, pointers, inverses, best, out);
    else ck_residual8_maxsim_batch(wide, docs, count, codes, doc_of_token, pointers, inverses, best, out);
    free(pointers);
    return 1;
}

void ck_residual_maxsim_sorted_scalar(const ck_residual_query *Q, const ck_exact_centroids *C, long docs, long count,
                                      const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                                      const float *inverses, float *best_all, float *out) {
    if (Q->nbits == 8) {
        if (!residual8_sorted(Q, docs, count, codes, doc_of_token, packed, inverses, best_all, out, 1))
            for (long i = 0; i < docs; i++) out[i] = NAN;
        return;
    }
    long dim = Q->dim, nqp = Q->nq_padded, dp = Q->dim_padded, bytes = dim * Q->nbits / 8;
    uint8_t *u = malloc((size_t)dp);
    if (!u) {
        for (long i = 0; i < docs; i++) out[i] = NAN;
        return;
    }
    for (long i = 0; i < docs * nqp; i++) best_all[i] = -INFINITY;
    for (long t = 0; t < count; t++) {
        long code = codes[t];
        float *best = best_all + (long)doc_of_token[t] * nqp;
        decode_scalar(Q, packed + t * bytes, u, dp);
        float inverse = inverses ? inverses[t] : token_inverse_scalar(Q, C, code, u);
        const float *row = Q->ctable + code * nqp;
        for (long q = 0; q < nqp; q++) {
            const int8_t *qi = Q->q + q * dp;
            int32_t dot = 0;
            for (long d = 0; d < dim; d++) dot += (int32_t)qi[d] * u[d];
            float s = token_score(row[q], Q->offset[q], Q->scale[q], dot, inverse);
            if (s > best[q]) best[q] = s;
        }
    }
    for (long doc = 0; doc < docs; doc++) out[doc] = sum_best(Q, best_all + doc * nqp);
    free(u);
}

#if defined(__aarch64__)
/// The scalar body's passes with the NEON token loop: pass A decodes a pass's levels (4-bit ones with NEON) and,
/// without stored norms, computes their 1/‖c + r‖ as the scalar body does; pass B is maxsim_neon.c's.
static void residual_maxsim_sorted_neon(const ck_residual_query *Q, const ck_exact_centroids *C, const int8_t *qg, long docs,
                                        long count, const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                                        const float *stored, float *best_all, float *out, uint8_t *levels) {
    long nqp = Q->nq_padded, dp = Q->dim_padded, bytes = Q->dim * Q->nbits / 8;
    int fast4 = Q->nbits == 4 && Q->dim % 16 == 0;
    float computed[PASS_TOKENS];
    for (long i = 0; i < docs * nqp; i++) best_all[i] = -INFINITY;
    for (long t0 = 0; t0 < count; t0 += PASS_TOKENS) {
        long m = count - t0 < PASS_TOKENS ? count - t0 : PASS_TOKENS;
        for (long l = 0; l < m; l++) {
            uint8_t *u = levels + l * dp;
            if (fast4) ck_decode4_neon(Q, packed + (t0 + l) * bytes, u);
            else decode_scalar(Q, packed + (t0 + l) * bytes, u, dp);
            if (!stored) computed[l] = token_inverse_scalar(Q, C, codes[t0 + l], u);
        }
        ck_residual_pass_neon(Q, qg, levels, m, stored ? stored + t0 : computed, codes + t0, doc_of_token + t0, best_all);
    }
    for (long doc = 0; doc < docs; doc++) out[doc] = sum_best(Q, best_all + doc * nqp);
}
#endif

int ck_search_isa_available(int isa) {
#if CKM_X86
    return isa == CK_ISA_SCALAR || (isa <= ck_assign_isa_supported() && isa != CK_ISA_NEON);
#elif defined(__aarch64__)
    return isa == CK_ISA_SCALAR || isa == CK_ISA_NEON;
#else
    return isa == CK_ISA_SCALAR;
#endif
}

static int search_isa_used = -1;

int ck_search_isa(void) {
    if (search_isa_used < 0) {
#if defined(__aarch64__)
        const char *cap = getenv("COLGREP_SEARCH_ISA");
        search_isa_used = cap && strcmp(cap, "scalar") == 0 ? CK_ISA_SCALAR : CK_ISA_NEON;
#else
        search_isa_used = ck_isa_from_environment("COLGREP_SEARCH_ISA");
#endif
    }
    return search_isa_used;
}

int ck_residual_maxsim_sorted_with(int isa, const ck_residual_query *Q, const ck_exact_centroids *C, long docs, long count,
                                   const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                                   const float *inverses, float *best, float *out) {
    if (!ck_search_isa_available(isa)) return 0;
    if (Q->nbits == 8) {
        if (!residual8_sorted(Q, docs, count, codes, doc_of_token, packed, inverses, best, out, isa == CK_ISA_SCALAR))
            for (long i = 0; i < docs; i++) out[i] = NAN;
        return 1;
    }
#if CKM_X86
    if (isa >= CK_ISA_AVX2 && Q->dim_padded % 32 == 0 && Q->nq_padded % 8 == 0) {
        int8_t *qg = group_query(Q);
        uint8_t *levels = aligned_alloc(32, (size_t)(PASS_TOKENS * Q->dim_padded));
        if (qg && levels)
            residual_maxsim_sorted_avx2(Q, C, qg, docs, count, codes, doc_of_token, packed, inverses, best, out, levels,
                                        isa >= CK_ISA_AVX512_VNNI);
        free(qg);
        free(levels);
        if (qg && levels) return 1;
    }
#endif
#if defined(__aarch64__)
    if (isa == CK_ISA_NEON && Q->dim_padded % 32 == 0 && Q->nq_padded % 8 == 0) {
        int8_t *qg = group_query(Q);
        uint8_t *levels = malloc((size_t)(PASS_TOKENS * Q->dim_padded));
        if (qg && levels) residual_maxsim_sorted_neon(Q, C, qg, docs, count, codes, doc_of_token, packed, inverses, best, out, levels);
        free(qg);
        free(levels);
        if (qg && levels) return 1;
    }
#endif
    ck_residual_maxsim_sorted_scalar(Q, C, docs, count, codes, doc_of_token, packed, inverses, best, out);
    return 1;
}

void ck_residual_maxsim_sorted(const ck_residual_query *Q, const ck_exact_centroids *C, long docs, long count,
                               const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                               const float *inverses, float *best, float *out) {
    ck_residual_maxsim_sorted_with(ck_search_isa(), Q, C, docs, count, codes, doc_of_token, packed, inverses, best, out);
}

void ck_residual_inverse_norms_scalar(const ck_residual_query *Q, const ck_exact_centroids *C, long count,
                                      const uint16_t *codes, const uint8_t *packed, float *out) {
    long dp = Q->dim_padded, bytes = Q->dim * Q->nbits / 8;
    uint8_t *u = malloc((size_t)dp);
    for (long t = 0; t < count; t++) {
        if (!u) {
            out[t] = NAN;
            continue;
        }
        decode_scalar(Q, packed + t * bytes, u, dp);
        out[t] = token_inverse_scalar(Q, C, codes[t], u);
    }
    free(u);
}

void ck_residual_inverse_norms(const ck_residual_query *Q, const ck_exact_centroids *C, long count, const uint16_t *codes,
                               const uint8_t *packed, float *out) {
#if CKM_X86
    if (ck_has_avx2() && Q->dim_padded % 32 == 0) {
        uint8_t *levels = aligned_alloc(32, (size_t)(8 * Q->dim_padded));
        if (levels) {
            residual_inverse_norms_avx2(Q, C, count, codes, packed, out, levels);
            free(levels);
            return;
        }
    }
#endif
    ck_residual_inverse_norms_scalar(Q, C, count, codes, packed, out);
}

/// One token's residual bytes. The usual widths are copied inline with a constant size: a variable-length
/// copy loop is turned into a library memcpy call per token by the compiler (4 % of a 48-d search's CPU),
/// and so are plain constant-size memcpy cases of a switch on the width (merged back into one call), hence
/// __builtin_memcpy_inline, which is never a call.
#if defined(__has_builtin) && __has_builtin(__builtin_memcpy_inline)
#define COPY_INLINE(to, from, n) __builtin_memcpy_inline(to, from, n)
#else
#define COPY_INLINE(to, from, n) memcpy(to, from, n)
#endif
static inline void copy_token(uint8_t *restrict to, const uint8_t *restrict from, long bytes) {
    switch (bytes) {
    case 6: COPY_INLINE(to, from, 6); return;
    case 12: COPY_INLINE(to, from, 12); return;
    case 16: COPY_INLINE(to, from, 16); return;
    case 24: COPY_INLINE(to, from, 24); return;
    case 32: COPY_INLINE(to, from, 32); return;
    case 48: COPY_INLINE(to, from, 48); return;
    case 64: COPY_INLINE(to, from, 64); return;
    case 96: COPY_INLINE(to, from, 96); return;
    case 128: COPY_INLINE(to, from, 128); return;
    default: memcpy(to, from, (size_t)bytes); return;
    }
}

/// Documents ahead whose residuals the gather fetches while it copies one. Two (and the codes of the
/// counting pass four ahead) measured the same as one in a harness (128 documents from a cold 270 MB
/// store: 190–280 µs either way at 48-d, within the run-to-run spread).
#define GATHER_DOCS_AHEAD 2

static inline void prefetch_block(const void *p, long bytes) {
    for (long o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o);
}

/// The body of ck_gather_by_centroid (residuals copied into `packed`) and ck_order_by_centroid (each
/// token's residual left in place, its address into `packed_of_token`): one of the two is NULL, the
/// same for every token of a call, so the test is always predicted.
static inline void order_by_centroid(long k, long docs, const uint16_t *const *codes_of_doc, const uint8_t *const *packed_of_doc,
                                     const float *const *norms_of_doc, const long *counts, long bytes, uint32_t *restrict starts,
                                     uint16_t *restrict codes, uint32_t *restrict doc_of_token, uint8_t *restrict packed,
                                     const uint8_t **restrict packed_of_token, float *restrict norms) {
    for (long c = 0; c <= k; c++) starts[c] = 0;
    for (long i = 0; i < docs; i++) {
        if (i + 4 < docs) prefetch_block(codes_of_doc[i + 4], counts[i + 4] * (long)sizeof(uint16_t));
        const uint16_t *doc_codes = codes_of_doc[i];
        for (long t = 0, n = counts[i]; t < n; t++) starts[doc_codes[t] + 1]++;
    }
    for (long c = 0; c < k; c++) starts[c + 1] += starts[c];
    for (long i = 0; i < docs && i < GATHER_DOCS_AHEAD; i++) {
        if (packed) prefetch_block(packed_of_doc[i], counts[i] * bytes);
        if (norms_of_doc) prefetch_block(norms_of_doc[i], counts[i] * (long)sizeof(float));
    }
    for (long i = 0; i < docs; i++) {
        const uint16_t *restrict doc_codes = codes_of_doc[i];
        const uint8_t *restrict doc_packed = packed_of_doc[i];
        long n = counts[i];
        // A later document's residuals (one contiguous block at a random place), when they are copied: a
        // token's worth fetched per token copied here, the rest after, so the whole block is on its way in time.
        long ahead = i + GATHER_DOCS_AHEAD;
        const char *next = packed && ahead < docs ? (const char *)packed_of_doc[ahead] : NULL;
        long next_count = next ? counts[ahead] : 0;
        if (norms_of_doc && ahead < docs) prefetch_block(norms_of_doc[ahead], counts[ahead] * (long)sizeof(float));
        const float *restrict doc_norms = norms_of_doc ? norms_of_doc[i] : NULL;
        for (long t = 0; t < n; t++) {
            if (t < next_count)
                for (long o = 0; o < bytes; o += 64) __builtin_prefetch(next + t * bytes + o);
            uint32_t code = doc_codes[t];
            uint32_t slot = starts[code]++;
            codes[slot] = (uint16_t)code;
            doc_of_token[slot] = (uint32_t)i;
            if (doc_norms) norms[slot] = doc_norms[t];
            if (packed) copy_token(packed + (long)slot * bytes, doc_packed + t * bytes, bytes);
            else packed_of_token[slot] = doc_packed + t * bytes;
        }
        for (long t = n; t < next_count; t++)
            for (long o = 0; o < bytes; o += 64) __builtin_prefetch(next + t * bytes + o);
    }
}

void ck_gather_by_centroid(long k, long docs, const uint16_t *const *codes_of_doc, const uint8_t *const *packed_of_doc,
                           const float *const *norms_of_doc, const long *counts, long bytes, uint32_t *restrict starts,
                           uint16_t *restrict codes, uint32_t *restrict doc_of_token, uint8_t *restrict packed,
                           float *restrict norms) {
    order_by_centroid(k, docs, codes_of_doc, packed_of_doc, norms_of_doc, counts, bytes, starts, codes, doc_of_token, packed, NULL,
                      norms);
}

void ck_order_by_centroid(long k, long docs, const uint16_t *const *codes_of_doc, const uint8_t *const *packed_of_doc,
                          const float *const *norms_of_doc, const long *counts, long bytes, uint32_t *starts, uint16_t *codes,
                          uint32_t *doc_of_token, const uint8_t **packed_of_token, float *norms) {
    order_by_centroid(k, docs, codes_of_doc, packed_of_doc, norms_of_doc, counts, bytes, starts, codes, doc_of_token, NULL,
                      packed_of_token, norms);
}

void ck_exact_centroids_build(const float *centroids, long k, long dim, long dim_padded, int16_t *c16, float *scale, float *sum) {
#if CKM_X86
    if (ck_has_avx2()) {
        exact_centroids_build_avx2(centroids, k, dim, dim_padded, c16, scale, sum);
        return;
    }
#endif
    ck_exact_centroids_build_scalar(centroids, k, dim, dim_padded, c16, scale, sum);
}

void ck_ivf_accumulate(const uint32_t *restrict rows, long count, long base, float value, uint32_t mark, ck_ivf_cell *restrict cells) {
    for (long e = 0; e < count; e++) {
        ck_ivf_cell *cell = cells + base + rows[e];
        if (cell->mark != mark) {
            cell->mark = mark;
            cell->score += value;
        }
    }
}

long ck_ivf_keep_words(const ck_ivf_cell *cells, const uint64_t *allowed, long total, long from_word, long to_word, uint64_t *keep) {
    long n = 0;
    for (long w = from_word; w < to_word; w++) {
        long g0 = w * 64, end = total - g0 < 64 ? total - g0 : 64;
        uint64_t reached = 0;
        for (long j = 0; j < end; j++) reached |= (uint64_t)(cells[g0 + j].mark != 0) << j;
        keep[w] = reached & allowed[w];
        n += __builtin_popcountll(keep[w]);
    }
    return n;
}

// MARK: - stage-2 selection

/// The `need` largest of values[0..<n] end up in values[0..<need] (order unspecified); returns the
/// smallest of them. Quickselect with a middle pivot (the values are scores, not adversarial).
static float select_largest(float *values, long n, long need) {
    long low = 0, high = n - 1, target = need - 1;
    while (low < high) {
        float pivot = values[low + (high - low) / 2];
        long i = low, j = high;
        while (i <= j) {
            while (values[i] > pivot) i++;
            while (values[j] < pivot) j--;
            if (i <= j) {
                float t = values[i];
                values[i] = values[j];
                values[j] = t;
                i++;
                j--;
            }
        }
        if (target <= j) high = j;
        else if (target >= i) low = i;
        else break;
    }
    float smallest = values[0];
    for (long i = 1; i < need; i++) smallest = values[i] < smallest ? values[i] : smallest;
    return smallest;
}

/// The histogram bin of a score in [low, high] (scale = bins / (high - low), 0 when all are equal).
static inline long select_bin(float v, float low, float scale, long bins) {
    long b = (long)((v - low) * scale);
    return b < bins - 1 ? b : bins - 1;
}

/// The k largest of the n compacted (rows, values) (n > k; values has room for 2n): written to out in
/// row order, among equal values at the cut the lowest rows. A 2048-bin histogram finds the bin of the
/// k-th best; only that bin's values are quickselected for the threshold.
static long select_compacted(const int32_t *rows, float *values, long n, long k, int32_t *out) {
    float low = values[0], high = values[0];
    for (long i = 1; i < n; i++) {
        low = values[i] < low ? values[i] : low;
        high = values[i] > high ? values[i] : high;
    }
    // Histogram of the scores: the bins above the one holding the k-th best are kept whole, and only
    // that bin's values are quickselected for the threshold.
    enum { BINS = 2048 };
    long histogram[BINS] = {0};
    float scale = high > low ? (float)BINS / (high - low) : 0;
    for (long i = 0; i < n; i++) histogram[select_bin(values[i], low, scale, BINS)]++;
    long above = 0, boundary = BINS - 1;
    while (above + histogram[boundary] < k) above += histogram[boundary--];
    long need = k - above;
    // Of the boundary bin: every row above the threshold (the need-th best value there), then rows
    // equal to it in row order while places remain. Its values go after the compacted ones.
    float *bin = values + n;
    long inBin = 0;
    for (long i = 0; i < n; i++)
        if (select_bin(values[i], low, scale, BINS) == boundary) bin[inBin++] = values[i];
    float threshold = select_largest(bin, inBin, need);
    long greater = 0;
    for (long i = 0; i < inBin; i++) greater += bin[i] > threshold;
    long equalPlaces = need - greater;
    long written = 0;
    for (long i = 0; i < n; i++) {
        float v = values[i];
        long b = select_bin(v, low, scale, BINS);
        if (b > boundary || (b == boundary && v > threshold)) {
            out[written++] = rows[i];
        } else if (b == boundary && v == threshold && equalPlaces > 0) {
            out[written++] = rows[i];
            equalPlaces--;
        }
    }
    return written;
}

/// ck_select_reached_rows over all kept rows: they and their scores compacted without a branch per row
/// (whether a row was reached is close to random, and a branch on it mispredicts often; words of none
/// skipped whole), then the selection among them.
static long select_all_rows(const ck_ivf_cell *cells, const uint64_t *keep, long total, long k, int32_t *out, int32_t *rows,
                            float *values) {
    long n = 0;
    for (long w = 0, words = (total + 63) / 64; w < words; w++) {
        uint64_t bits = keep[w];
        if (!bits) continue;
        long g0 = w * 64, end = total - g0 < 64 ? total - g0 : 64;
        for (long j = 0; j < end; j++) {
            rows[n] = (int32_t)(g0 + j);
            values[n] = cells[g0 + j].score;
            n += (long)(bits >> j & 1);
        }
    }
    if (n <= k) {
        memcpy(out, rows, (size_t)n * sizeof *out);
        return n;
    }
    return select_compacted(rows, values, n, k, out);
}

/// Rows of the selection sampled to estimate its threshold.
#define SELECT_SAMPLE 2048

/// ck_select_reached_rows when k is a small part of the n candidate rows: a threshold that about
/// k · (1 + margin) rows reach, estimated from 2,048 evenly spaced rows, then one pass that keeps only
/// the rows at or above it (a few thousand instead of all n), and the exact selection among those.
/// Every row of the k largest (and every row tied with the k-th) is at or above the threshold whenever
/// at least k rows are, so the result is the full selection's; returns -1 when fewer are (the sample
/// misjudged: about a 4σ event), and the caller selects over all rows.
static long select_by_sample(const ck_ivf_cell *cells, const uint64_t *keep, long total, long n, long k, int32_t *out,
                             int32_t *rows, float *values) {
    float sample[SELECT_SAMPLE];
    long m = 0;
    for (long i = 0; i < SELECT_SAMPLE; i++) {
        long g = i * total / SELECT_SAMPLE;
        if (keep[g >> 6] >> (g & 63) & 1) sample[m++] = cells[g].score;
    }
    if (m < 256) return -1;
    double expected = (double)k * (double)m / (double)n;
    long rank = (long)(expected + 4.0 * sqrt(expected) + 8.0);
    if (rank >= m) return -1;
    float threshold = select_largest(sample, m, rank);
    long c = 0;
    for (long w = 0, words = (total + 63) / 64; w < words; w++) {
        uint64_t bits = keep[w];
        while (bits) {
            long g = w * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            float v = cells[g].score;
            // Rarely taken (about k of n rows), so well predicted.
            if (v >= threshold) {
                rows[c] = (int32_t)g;
                values[c] = v;
                c++;
            }
        }
    }
    if (c < k) return -1;
    if (c == k) {
        memcpy(out, rows, (size_t)c * sizeof *out);
        return c;
    }
    return select_compacted(rows, values, c, k, out);
}

long ck_select_reached_rows(const ck_ivf_cell *cells, const uint64_t *keep, long n, long total, long k, int32_t *out,
                            int32_t *rows, float *values) {
    if (k <= 0) return 0;
    long written = n > 4 * k ? select_by_sample(cells, keep, total, n, k, out, rows, values) : -1;
    return written >= 0 ? written : select_all_rows(cells, keep, total, k, out, rows, values);
}
