// 8-bit PLAID residuals: encoding (one byte per dimension, the bucket among 256 quantile buckets) and the
// exact-stage MaxSim of a query against documents stored that way, without decompressing to floats.
//
// Scoring: each bucket's reconstruction value is rounded to an int16 level on an even grid, r = a + b·v
// (the grid is ~4,000 steps wide, far finer than the buckets themselves), and the query to int16, so the
// residual part of a token score is an exact int32 dot product (vpmaddwd: 2 dimensions × 8 query tokens
// per instruction). Every entry point has a portable scalar body and, on x86-64, an AVX2 body chosen at
// run time; both compute the same integers and the same float operations in the same order, so their
// results are bit-identical (tested).
#include "CKernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CKR_X86 1
#else
#define CKR_X86 0
#endif

// No fused multiply-add contraction: the scalar and SIMD bodies must round identically.
#pragma STDC FP_CONTRACT OFF

// MARK: - encoding

/// The bucket of v among 255 sorted cutoffs: the number of cutoffs strictly below v (branch-free
/// binary search; a NaN compares false everywhere and lands in bucket 0, as a linear count would).
static inline uint8_t bucket8(const float *cutoffs, float v) {
    unsigned b = 0;
    for (unsigned step = 128; step > 0; step >>= 1) b += (cutoffs[b + step - 1] < v) ? step : 0;
    return (uint8_t)b;
}

void ck_residual8_encode_scalar(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                                const float *cutoffs, uint8_t *out) {
    for (long t = 0; t < count; t++) {
        const float *xr = x + t * dim, *c = centroids + (long)codes[t] * dim;
        uint8_t *o = out + t * dim;
        for (long d = 0; d < dim; d++) o[d] = bucket8(cutoffs, xr[d] - c[d]);
    }
}

// MARK: - scoring, shared scalar pieces

/// Sum of 8 lane accumulators in the fixed order the SIMD body uses too.
static float reduce8(const float l[8]) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

/// 1 / ‖c + r‖ for a unit centroid c and r = a + b·v: ‖c + r‖² = 1 + 2(a·Σc + b·Σc·v) + Σ(a + b·v)².
static float inverse_norm8(const ck_residual8_query *Q, float sum_c, float sum_cv, int32_t sum_v, int32_t sum_vv) {
    float a = Q->base.a, b = Q->base.b;
    float cr = a * sum_c;
    cr = cr + b * sum_cv;
    float rr = (float)Q->base.dim * a * a;
    rr = rr + 2.0f * a * b * (float)sum_v;
    rr = rr + b * b * (float)sum_vv;
    float squared = 1.0f + 2.0f * cr;
    squared = squared + rr;
    return squared > 0 ? 1.0f / sqrtf(squared) : 0.0f;
}

/// One query token's score against one document token.
static inline float token_score8(float centroid_score, float offset, float scale, int32_t dot, float inverse) {
    float t1 = centroid_score + offset;
    float t2 = scale * (float)dot;
    float t3 = t1 + t2;
    return t3 * inverse;
}

static float sum_best8(const ck_residual8_query *Q, const float *best) {
    float sum = 0;
    for (long q = 0; q < Q->base.nq; q++) sum += best[q];
    return sum;
}

/// Levels of one token (v[d] = levels[byte d]); v beyond dim stays as the caller zeroed it.
static inline void decode8(const ck_residual8_query *Q, const uint8_t *packed, int16_t *v) {
    for (long d = 0; d < Q->base.dim; d++) v[d] = Q->levels[packed[d]];
}

/// Work space of int16 levels: dim rounded up to 16, zeroed (the padding stays zero). Caller frees.
static int16_t *level_space(const ck_residual8_query *Q) {
    long padded = (Q->base.dim + 15) / 16 * 16;
    return calloc((size_t)padded, sizeof(int16_t));
}

/// 1/‖c + r‖ of a token with centroid `code` and decoded levels v.
static float token_inverse8_scalar(const ck_residual8_query *Q, long code, const int16_t *v) {
    long dim = Q->base.dim;
    int32_t sv = 0, svv = 0;
    for (long d = 0; d < dim; d++) { sv += v[d]; svv += (int32_t)v[d] * v[d]; }
    const float *c = Q->base.centroids + code * dim;
    float lc[8] = {0}, lv[8] = {0};
    for (long d = 0; d < dim; d++) {
        lc[d & 7] = lc[d & 7] + c[d];
        float product = c[d] * (float)v[d];
        lv[d & 7] = lv[d & 7] + product;
    }
    return inverse_norm8(Q, reduce8(lc), reduce8(lv), sv, svv);
}

/// Folds one document token into best[nq_padded]; its 1/‖c + r‖ is `*inverse` when given (stored at
/// encode time by ck_residual8_inverse_norms: the same bits), derived here otherwise.
static void token8_scalar(const ck_residual8_query *Q, long code, const uint8_t *packed, const float *inverse_given, int16_t *v,
                          float *best) {
    long dim = Q->base.dim, nqp = Q->base.nq_padded;
    decode8(Q, packed, v);
    float inverse = inverse_given ? *inverse_given : token_inverse8_scalar(Q, code, v);
    const float *row = Q->base.ctable + code * nqp;
    for (long q = 0; q < nqp; q++) {
        const int16_t *qi = Q->q16 + q * Q->q_stride;
        int32_t dot = 0;
        for (long d = 0; d < dim; d++) dot += (int32_t)qi[d] * v[d];
        float s = token_score8(row[q], Q->base.offset[q], Q->base.scale[q], dot, inverse);
        if (s > best[q]) best[q] = s;
    }
}

float ck_residual8_maxsim_scalar(const ck_residual8_query *Q, const uint16_t *codes, const uint8_t *packed, long tokens,
                                 float *best) {
    int16_t *v = level_space(Q);
    for (long q = 0; q < Q->base.nq_padded; q++) best[q] = -INFINITY;
    if (!v) return NAN;
    for (long t = 0; t < tokens; t++) token8_scalar(Q, codes[t], packed + t * Q->base.dim, NULL, v, best);
    free(v);
    return sum_best8(Q, best);
}

void ck_residual8_maxsim_batch_scalar(const ck_residual8_query *Q, long docs, long count, const uint16_t *codes,
                                      const uint32_t *doc_of_token, const uint8_t *const *packed_of_token, const float *inverses,
                                      float *best, float *out) {
    long nqp = Q->base.nq_padded;
    for (long i = 0; i < docs * nqp; i++) best[i] = -INFINITY;
    int16_t *v = level_space(Q);
    if (!v) {
        for (long doc = 0; doc < docs; doc++) out[doc] = NAN;
        return;
    }
    for (long i = 0; i < count; i++)
        token8_scalar(Q, codes[i], packed_of_token[i], inverses ? inverses + i : NULL, v, best + (long)doc_of_token[i] * nqp);
    free(v);
    for (long doc = 0; doc < docs; doc++) out[doc] = sum_best8(Q, best + doc * nqp);
}

void ck_residual8_inverse_norms_scalar(const ck_residual8_query *Q, long count, const uint16_t *codes, const uint8_t *packed,
                                      float *out) {
    int16_t *v = level_space(Q);
    for (long t = 0; t < count; t++) {
        if (!v) { out[t] = NAN; continue; }
        decode8(Q, packed + t * Q->base.dim, v);
        out[t] = token_inverse8_scalar(Q, codes[t], v);
    }
    free(v);
}

// MARK: - AVX2 bodies

#if CKR_X86
#define AVX2 __attribute__((target("avx2,fma")))

/// Eight values at a time: the binary search of bucket8 with the eight cutoffs of each step gathered.
AVX2 static void residual8_encode_avx2(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                                       const float *cutoffs, uint8_t *out) {
    for (long t = 0; t < count; t++) {
        const float *xr = x + t * dim, *c = centroids + (long)codes[t] * dim;
        uint8_t *o = out + t * dim;
        long d = 0;
        for (; d + 8 <= dim; d += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(xr + d), _mm256_loadu_ps(c + d));
            __m256i b = _mm256_setzero_si256();
            for (int step = 128; step > 0; step >>= 1) {
                __m256i s = _mm256_set1_epi32(step);
                __m256i index = _mm256_add_epi32(b, _mm256_set1_epi32(step - 1));
                __m256 cut = _mm256_i32gather_ps(cutoffs, index, 4);
                __m256i below = _mm256_castps_si256(_mm256_cmp_ps(cut, v, _CMP_LT_OQ));
                b = _mm256_add_epi32(b, _mm256_and_si256(below, s));
            }
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
            _mm_storel_epi64((__m128i *)(o + d), _mm_packus_epi16(w, w));
        }
        for (; d < dim; d++) o[d] = bucket8(cutoffs, xr[d] - c[d]);
    }
}

/// The query regrouped for the token loop: for each pair of dimensions p and block j of 8 query tokens,
/// 32 bytes = 8 tokens × their 2 int16 values, so one vpmaddwd against the document token's 2 levels
/// (broadcast) yields partial dot products of 8 query tokens at once, with no horizontal sums. Caller frees.
static int16_t *group_query8(const ck_residual8_query *Q) {
    long nqb = Q->base.nq_padded / 8, pairs = (Q->base.dim + 1) / 2, dim = Q->base.dim;
    int16_t *g = malloc((size_t)(nqb * pairs * 16) * sizeof(int16_t));
    if (!g) return NULL;
    for (long p = 0; p < pairs; p++)
        for (long j = 0; j < nqb; j++)
            for (long l = 0; l < 8; l++)
                for (long e = 0; e < 2; e++) {
                    long d = 2 * p + e;
                    g[((p * nqb + j) * 8 + l) * 2 + e] = d < dim ? Q->q16[(j * 8 + l) * Q->q_stride + d] : 0;
                }
    return g;
}

/// The scores of query tokens qb…qb+7 against one document token (dot: their int32 residual dot products)
/// folded into best, with token_score8's operations in its order.
AVX2 static inline void fold_scores8(const ck_residual8_query *Q, const float *row, long qb, __m256i acc, __m256 inv, float *best) {
    __m256 dot = _mm256_cvtepi32_ps(acc);
    __m256 t1 = _mm256_add_ps(_mm256_loadu_ps(row + qb), _mm256_loadu_ps(Q->base.offset + qb));
    __m256 t2 = _mm256_mul_ps(_mm256_loadu_ps(Q->base.scale + qb), dot);
    __m256 sc = _mm256_mul_ps(_mm256_add_ps(t1, t2), inv);
    // max_ps(s, best) = s > best ? s : best, as the scalar body.
    _mm256_storeu_ps(best + qb, _mm256_max_ps(sc, _mm256_loadu_ps(best + qb)));
}

/// Dot products of NB blocks of 8 query tokens (from block j0) with the token's levels v, then their
/// scores folded into best. Two dimension pairs per step, so two independent multiply chains interleave.
#define BLOCK8(NB)                                                                                           \
    do {                                                                                                     \
        __m256i acc[NB];                                                                                     \
        for (int jj = 0; jj < (NB); jj++) acc[jj] = _mm256_setzero_si256();                                  \
        long p = 0;                                                                                          \
        for (; p + 2 <= pairs; p += 2) {                                                                     \
            int32_t w0, w1;                                                                                  \
            memcpy(&w0, v + 2 * p, 4);                                                                       \
            memcpy(&w1, v + 2 * p + 2, 4);                                                                   \
            __m256i b0 = _mm256_set1_epi32(w0), b1 = _mm256_set1_epi32(w1);                                  \
            const int16_t *r0 = qg + (p * nqb + j0) * 16, *r1 = qg + ((p + 1) * nqb + j0) * 16;             \
            for (int jj = 0; jj < (NB); jj++) {                                                              \
                __m256i x0 = _mm256_madd_epi16(b0, _mm256_loadu_si256((const __m256i *)(r0 + 16 * jj)));     \
                __m256i x1 = _mm256_madd_epi16(b1, _mm256_loadu_si256((const __m256i *)(r1 + 16 * jj)));     \
                acc[jj] = _mm256_add_epi32(acc[jj], _mm256_add_epi32(x0, x1));                               \
            }                                                                                                \
        }                                                                                                    \
        if (p < pairs) {                                                                                     \
            int32_t w0;                                                                                      \
            memcpy(&w0, v + 2 * p, 4);                                                                       \
            __m256i b0 = _mm256_set1_epi32(w0);                                                              \
            const int16_t *r0 = qg + (p * nqb + j0) * 16;                                                    \
            for (int jj = 0; jj < (NB); jj++)                                                                \
                acc[jj] = _mm256_add_epi32(acc[jj],                                                          \
                                           _mm256_madd_epi16(b0, _mm256_loadu_si256((const __m256i *)(r0 + 16 * jj)))); \
        }                                                                                                    \
        for (int jj = 0; jj < (NB); jj++) fold_scores8(Q, row, (j0 + jj) * 8, acc[jj], inv, best);             \
    } while (0)

AVX2 static inline int32_t hsum_epi32(__m256i x) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/// 1/‖c + r‖ of a token with centroid `code` and decoded levels v (dim rounded up to 16, the padding
/// zero): the AVX2 twin of token_inverse8_scalar, the same bits.
AVX2 static inline float token_inverse8_avx2(const ck_residual8_query *Q, long code, const int16_t *v) {
    long dim = Q->base.dim;
    // Σv and Σv² (integers: any order gives the same sums).
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i sv = _mm256_setzero_si256(), svv = _mm256_setzero_si256();
    for (long d = 0; d < dim; d += 16) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(v + d));
        sv = _mm256_add_epi32(sv, _mm256_madd_epi16(x, ones));
        svv = _mm256_add_epi32(svv, _mm256_madd_epi16(x, x));
    }
    // Σc and Σc·v, lane d mod 8, as the scalar body.
    const float *c = Q->base.centroids + code * dim;
    __m256 lc = _mm256_setzero_ps(), lv = _mm256_setzero_ps();
    long d = 0;
    for (; d + 8 <= dim; d += 8) {
        __m256 cv = _mm256_loadu_ps(c + d);
        __m256 vv = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(v + d))));
        lc = _mm256_add_ps(lc, cv);
        lv = _mm256_add_ps(lv, _mm256_mul_ps(cv, vv));
    }
    float fc[8], fv[8];
    _mm256_storeu_ps(fc, lc);
    _mm256_storeu_ps(fv, lv);
    for (; d < dim; d++) {
        fc[d & 7] = fc[d & 7] + c[d];
        float product = c[d] * (float)v[d];
        fv[d & 7] = fv[d & 7] + product;
    }
    return inverse_norm8(Q, reduce8(fc), reduce8(fv), hsum_epi32(sv), hsum_epi32(svv));
}

/// Folds one document token into best[nq_padded] (the AVX2 twin of token8_scalar). v: dim rounded up
/// to 16 levels, the padding zero.
AVX2 static inline void token8_avx2(const ck_residual8_query *Q, const int16_t *qg, long code, const uint8_t *packed,
                                    int16_t *v, float *best) {
    long dim = Q->base.dim, nqp = Q->base.nq_padded;
    decode8(Q, packed, v);
    __m256 inv = _mm256_set1_ps(token_inverse8_avx2(Q, code, v));
    const float *row = Q->base.ctable + code * nqp;
    long nqb = nqp / 8, pairs = (dim + 1) / 2;
    for (long j0 = 0; j0 < nqb; j0 += 4) {
        switch (nqb - j0) {
        case 1: BLOCK8(1); break;
        case 2: BLOCK8(2); break;
        case 3: BLOCK8(3); break;
        default: BLOCK8(4); break;
        }
    }
}

/// The levels of every pair of bytes: pairs[lo | hi << 8] holds levels[lo] in its low and levels[hi] in its
/// high 16 bits, i.e. the two int16 levels of dimensions 2p and 2p + 1 as vpmaddwd pairs them. With it a
/// token's levels are never written out: each dimension pair is one table read and a broadcast (the
/// one-byte lookups and stores of decode8 cost ~1 cycle per dimension). 256 KB; NULL without memory.
static int32_t *level_pairs8(const ck_residual8_query *Q) {
    int32_t *pairs = malloc(65536 * sizeof(int32_t));
    if (!pairs) return NULL;
    for (long hi = 0; hi < 256; hi++)
        for (long lo = 0; lo < 256; lo++)
            pairs[hi << 8 | lo] = (int32_t)((uint32_t)(uint16_t)Q->levels[lo] | (uint32_t)(uint16_t)Q->levels[hi] << 16);
    return pairs;
}

/// Level pair p of a token's bytes (p < dim / 2).
static inline int32_t level_pair8(const int32_t *pairs, const uint8_t *packed, long p) {
    uint16_t index;
    memcpy(&index, packed + 2 * p, 2);  // little-endian: byte 2p in the low half
    return pairs[index];
}

/// An odd dimension count's last level alone, its partner 0 as in group_query8's padding.
static inline int32_t last_level8(const ck_residual8_query *Q, const uint8_t *packed) {
    return (int32_t)(uint32_t)(uint16_t)Q->levels[packed[Q->base.dim - 1]];
}

/// N (1 or 2) document tokens with known 1/‖c + r‖ folded into their best rows, NB blocks of 8 query
/// tokens from block j0: both tokens' dot products share every load of the query, so a pair of
/// dimensions costs one query load per 2 vpmaddwd. Token 0's scores are folded before token 1's (the
/// order of the one-token loop: the two may belong to one document).
#define TOKENS8(N, NB)                                                                                       \
    do {                                                                                                     \
        __m256i acc[N][NB];                                                                                  \
        for (int n = 0; n < (N); n++)                                                                        \
            for (int jj = 0; jj < (NB); jj++) acc[n][jj] = _mm256_setzero_si256();                           \
        for (long p = 0; p < npairs; p++) {                                                                  \
            __m256i b[N];                                                                                    \
            for (int n = 0; n < (N); n++)                                                                    \
                b[n] = _mm256_set1_epi32(p < whole ? level_pair8(pairs, packed[n], p) : last_level8(Q, packed[n])); \
            const int16_t *r = qg + (p * nqb + j0) * 16;                                                     \
            for (int jj = 0; jj < (NB); jj++) {                                                              \
                __m256i x = _mm256_loadu_si256((const __m256i *)(r + 16 * jj));                              \
                for (int n = 0; n < (N); n++) acc[n][jj] = _mm256_add_epi32(acc[n][jj], _mm256_madd_epi16(b[n], x)); \
            }                                                                                                \
        }                                                                                                    \
        for (int n = 0; n < (N); n++)                                                                        \
            for (int jj = 0; jj < (NB); jj++)                                                                \
                fold_scores8(Q, Q->base.ctable + codes[n] * nqp, (j0 + jj) * 8, acc[n][jj], _mm256_set1_ps(inverses[n]), best[n]); \
    } while (0)

AVX2 static inline void tokens8_known_norms_avx2(const ck_residual8_query *Q, const int16_t *qg, const int32_t *pairs, int two,
                                                 const long codes[2], const uint8_t *const packed[2], const float inverses[2],
                                                 float *const best[2]) {
    long nqp = Q->base.nq_padded, nqb = nqp / 8, npairs = (Q->base.dim + 1) / 2, whole = Q->base.dim / 2;
    for (long j0 = 0; j0 < nqb; j0 += 4) {
        long left = nqb - j0;
        if (two) {
            switch (left) {
            case 1: TOKENS8(2, 1); break;
            case 2: TOKENS8(2, 2); break;
            case 3: TOKENS8(2, 3); break;
            default: TOKENS8(2, 4); break;
            }
        } else {
            switch (left) {
            case 1: TOKENS8(1, 1); break;
            case 2: TOKENS8(1, 2); break;
            case 3: TOKENS8(1, 3); break;
            default: TOKENS8(1, 4); break;
            }
        }
    }
}

#define PREFETCH_AHEAD8 6

static inline void prefetch_lines8(const void *p, long bytes) {
    for (long o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

AVX2 static float residual8_maxsim_avx2(const ck_residual8_query *Q, const uint16_t *codes, const uint8_t *packed, long tokens,
                                        float *best) {
    long nqp = Q->base.nq_padded, dim = Q->base.dim;
    int16_t *qg = group_query8(Q);
    int16_t *v = level_space(Q);
    if (!qg || !v) {
        free(qg);
        free(v);
        return ck_residual8_maxsim_scalar(Q, codes, packed, tokens, best);
    }
    for (long q = 0; q < nqp; q += 8) _mm256_storeu_ps(best + q, _mm256_set1_ps(-INFINITY));
    long centroid_bytes = dim * (long)sizeof(float), table_bytes = nqp * (long)sizeof(float);
    for (long t = 0; t < tokens; t++) {
        if (t + PREFETCH_AHEAD8 < tokens) {
            long next = codes[t + PREFETCH_AHEAD8];
            prefetch_lines8(Q->base.centroids + next * dim, centroid_bytes);
            prefetch_lines8(Q->base.ctable + next * nqp, table_bytes);
        }
        token8_avx2(Q, qg, codes[t], packed + t * dim, v, best);
    }
    free(qg);
    free(v);
    return sum_best8(Q, best);
}

/// With stored norms: two tokens at a time through the level-pair table.
AVX2 static void residual8_known_norms_avx2(const ck_residual8_query *Q, const int16_t *qg, const int32_t *pairs, long count,
                                            const uint16_t *codes, const uint32_t *doc_of_token,
                                            const uint8_t *const *packed_of_token, const float *inverses, float *best) {
    long nqp = Q->base.nq_padded, dim = Q->base.dim;
    for (long i = 0; i < count; i += 2) {
        for (long ahead = i + 8; ahead < i + 10 && ahead < count; ahead++) {
            prefetch_lines8(packed_of_token[ahead], dim);
            _mm_prefetch((const char *)(best + (long)doc_of_token[ahead] * nqp), _MM_HINT_T0);
        }
        int two = i + 1 < count;
        long pair_codes[2] = {codes[i], two ? codes[i + 1] : 0};
        const uint8_t *packed[2] = {packed_of_token[i], two ? packed_of_token[i + 1] : NULL};
        float norms[2] = {inverses[i], two ? inverses[i + 1] : 0};
        float *rows[2] = {best + (long)doc_of_token[i] * nqp, two ? best + (long)doc_of_token[i + 1] * nqp : NULL};
        tokens8_known_norms_avx2(Q, qg, pairs, two, pair_codes, packed, norms, rows);
    }
}

AVX2 static void residual8_maxsim_batch_avx2(const ck_residual8_query *Q, long docs, long count, const uint16_t *codes,
                                             const uint32_t *doc_of_token, const uint8_t *const *packed_of_token,
                                             const float *inverses, float *best, float *out) {
    long nqp = Q->base.nq_padded, dim = Q->base.dim;
    int16_t *qg = group_query8(Q);
    int16_t *v = level_space(Q);
    int32_t *pairs = inverses ? level_pairs8(Q) : NULL;
    if (!qg || !v || (inverses && !pairs)) {
        free(qg);
        free(v);
        free(pairs);
        ck_residual8_maxsim_batch_scalar(Q, docs, count, codes, doc_of_token, packed_of_token, inverses, best, out);
        return;
    }
    for (long i = 0; i < docs * nqp; i += 8) _mm256_storeu_ps(best + i, _mm256_set1_ps(-INFINITY));
    if (inverses) {
        residual8_known_norms_avx2(Q, qg, pairs, count, codes, doc_of_token, packed_of_token, inverses, best);
    } else {
        for (long i = 0; i < count; i++) {
            if (i + 8 < count) {
                prefetch_lines8(packed_of_token[i + 8], dim);
                _mm_prefetch((const char *)(best + (long)doc_of_token[i + 8] * nqp), _MM_HINT_T0);
            }
            token8_avx2(Q, qg, codes[i], packed_of_token[i], v, best + (long)doc_of_token[i] * nqp);
        }
    }
    free(pairs);
    free(qg);
    free(v);
    for (long doc = 0; doc < docs; doc++) out[doc] = sum_best8(Q, best + doc * nqp);
}

AVX2 static void residual8_inverse_norms_avx2(const ck_residual8_query *Q, long count, const uint16_t *codes, const uint8_t *packed,
                                              int16_t *v, float *out) {
    for (long t = 0; t < count; t++) {
        decode8(Q, packed + t * Q->base.dim, v);
        out[t] = token_inverse8_avx2(Q, codes[t], v);
    }
}
#endif

// MARK: - dispatch

void ck_residual8_encode(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                         const float *cutoffs, uint8_t *out) {
    if (count <= 0) return;
#if CKR_X86
    if (ck_has_avx2()) { residual8_encode_avx2(x, dim, count, centroids, codes, cutoffs, out); return; }
#endif
    ck_residual8_encode_scalar(x, dim, count, centroids, codes, cutoffs, out);
}

float ck_residual8_maxsim(const ck_residual8_query *Q, const uint16_t *codes, const uint8_t *packed, long tokens, float *best) {
#if CKR_X86
    if (ck_has_avx2() && Q->base.nq_padded % 8 == 0) return residual8_maxsim_avx2(Q, codes, packed, tokens, best);
#endif
    return ck_residual8_maxsim_scalar(Q, codes, packed, tokens, best);
}

void ck_residual8_maxsim_batch(const ck_residual8_query *Q, long docs, long count, const uint16_t *codes,
                               const uint32_t *doc_of_token, const uint8_t *const *packed_of_token, const float *inverses,
                               float *best, float *out) {
#if CKR_X86
    if (ck_has_avx2() && Q->base.nq_padded % 8 == 0) {
        residual8_maxsim_batch_avx2(Q, docs, count, codes, doc_of_token, packed_of_token, inverses, best, out);
        return;
    }
#endif
    ck_residual8_maxsim_batch_scalar(Q, docs, count, codes, doc_of_token, packed_of_token, inverses, best, out);
}

void ck_residual8_inverse_norms(const ck_residual8_query *Q, long count, const uint16_t *codes, const uint8_t *packed, float *out) {
#if CKR_X86
    if (ck_has_avx2()) {
        int16_t *v = level_space(Q);
        if (v) {
            residual8_inverse_norms_avx2(Q, count, codes, packed, v, out);
            free(v);
            return;
        }
    }
#endif
    ck_residual8_inverse_norms_scalar(Q, count, codes, packed, out);
}
