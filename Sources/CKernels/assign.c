// Nearest-centroid assignment (fused GEMM + argmax / top-k) and residual encoding for PLAID builds.
// Portable scalar bodies plus AVX2/FMA bodies chosen at run time (target attributes, no -mavx2 needed).
#include "CKernels.h"
#include "assign_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CKA_X86 1
#else
#define CKA_X86 0
#endif

#define PANEL 16

static long panels_of(long k) { return (k + PANEL - 1) / PANEL; }

size_t ck_assign_packed_floats(long k, long dim) { return (size_t)panels_of(k) * PANEL * (size_t)dim; }

/// −½‖c‖², the Euclidean bias of one centroid; one definition for the panels and the exact re-score, so both
/// see the same float.
static float half_norm_bias(const float *c, long dim) {
    float norm = 0;
    for (long d = 0; d < dim; d++) norm += c[d] * c[d];
    return -0.5f * norm;
}

void ck_assign_pack(const float *centroids, long dim, const int32_t *members, long k, int euclidean, float *packed,
                    float *bias) {
    long panels = panels_of(k);
    memset(packed, 0, ck_assign_packed_floats(k, dim) * sizeof(float));
    for (long j = 0; j < panels * PANEL; j++) {
        if (j >= k) {
            bias[j] = -INFINITY;
            continue;
        }
        const float *c = centroids + (long)(members ? members[j] : j) * dim;
        float *panel = packed + (j / PANEL) * dim * PANEL + (j % PANEL);
        for (long d = 0; d < dim; d++) panel[d * PANEL] = c[d];
        bias[j] = euclidean ? half_norm_bias(c, dim) : 0.0f;
    }
}

// MARK: - int16 first pass

/// The largest int16 coordinate of the first pass at `dim` dimensions: dim · L² < 2³¹, so neither `vpmaddwd`'s pair
/// sums nor the 32-bit sums of a whole row can overflow (6,689 at 48 dimensions, 2,364 at 384).
static long i16_limit(long dim) {
    long limit = (long)sqrt(2147483647.0 / (double)(dim > 2 ? dim : 2));
    return limit > 32767 ? 32767 : limit;
}

size_t ck_assign_packed16_count(long k, long dim) { return (size_t)panels_of(k) * PANEL * (size_t)((dim + 1) / 2 * 2); }

/// v · inverse rounded to the nearest integer (ties to even, as `vroundps`) and clamped to ±limit. Adding and
/// subtracting 1.5 · 2²³ rounds any |p| < 2²² in the default rounding mode without a libm call (nearbyintf is
/// one in code built for baseline x86-64); larger values are clamped anyway.
static inline int16_t quantize16(float v, float inverse, float limit) {
    float p = v * inverse;
    p = p > limit ? limit : p < -limit ? -limit : p;
    return (int16_t)((p + 12582912.0f) - 12582912.0f);
}

float ck_assign_pack16(const float *centroids, long dim, const int32_t *members, long k, int16_t *packed, float *bias) {
    long pairs = (dim + 1) / 2, panels = panels_of(k);
    float top = 0;
    for (long j = 0; j < k; j++) {
        const float *c = centroids + (long)(members ? members[j] : j) * dim;
        for (long d = 0; d < dim; d++) top = fmaxf(top, fabsf(c[d]));
    }
    float limit = (float)i16_limit(dim), scale = top > 0 && isfinite(top) ? top / limit : 1.0f, inverse = 1.0f / scale;
    memset(packed, 0, ck_assign_packed16_count(k, dim) * sizeof(int16_t));
    for (long j = 0; j < panels * PANEL; j++) {
        if (j >= k) {
            bias[j] = -INFINITY;
            continue;
        }
        const float *c = centroids + (long)(members ? members[j] : j) * dim;
        int16_t *panel = packed + (j / PANEL) * pairs * PANEL * 2 + (j % PANEL) * 2;
        for (long d = 0; d < dim; d++) panel[(d / 2) * PANEL * 2 + d % 2] = quantize16(c[d], inverse, limit);
        bias[j] = half_norm_bias(c, dim);
    }
    return scale;
}

#if CKA_X86
static void quantize_rows_avx2(const float *x, long dim, long count, int16_t *q, float *scale);
#endif

static void quantize_rows_scalar(const float *x, long dim, long count, int16_t *q, float *scale) {
    float limit = (float)i16_limit(dim);
    for (long i = 0; i < count; i++) {
        const float *xr = x + i * dim;
        float top = 0;
        for (long d = 0; d < dim; d++) top = fmaxf(top, fabsf(xr[d]));
        float s = top > 0 && isfinite(top) ? top / limit : 1.0f, inverse = 1.0f / s;
        for (long d = 0; d < dim; d++) q[i * dim + d] = quantize16(xr[d], inverse, limit);
        scale[i] = s;
    }
}

/// Approximate score of one row and one int16-packed column: the AVX2 kernel's value (the integer dot product
/// is exact, then one fused multiply-add with the scales and the bias).
static float score16_scalar(const int16_t *qr, float qscale, long dim, const int16_t *packed, const float *bias, float cscale, long j) {
    long pairs = (dim + 1) / 2;
    const int16_t *panel = packed + (j / PANEL) * pairs * PANEL * 2 + (j % PANEL) * 2;
    int32_t dot = 0;
    for (long d = 0; d < dim; d++) dot += (int32_t)qr[d] * (int32_t)panel[(d / 2) * PANEL * 2 + d % 2];
    return fmaf((float)dot, qscale * cscale, bias[j]);
}

/// Keeps (s, j) in a best-two list: strictly better scores move in, so equal scores keep the earlier column.
static inline void best2_insert(float *v, int32_t *at, float s, int32_t j) {
    if (s > v[0]) { v[1] = v[0]; at[1] = at[0]; v[0] = s; at[0] = j; }
    else if (s > v[1]) { v[1] = s; at[1] = j; }
}

void ck_assign_best2_i16_scalar(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                int32_t *best_index, float *best_score) {
    for (long i = 0; i < count; i++) {
        long row = rows ? rows[i] : i;
        float v[2] = {-INFINITY, -INFINITY};
        int32_t at[2] = {-1, -1};
        for (long j = 0; j < k; j++) best2_insert(v, at, score16_scalar(q + row * dim, qscale[row], dim, packed, bias, cscale, j), (int32_t)j);
        ck_assign_merge_best2(best_score + 2 * row, best_index + 2 * row, v[0], at[0] < 0 ? -1 : members ? members[at[0]] : at[0],
                    v[1], at[1] < 0 ? -1 : members ? members[at[1]] : at[1]);
    }
}

void ck_assign_sort_by_group(const int32_t *restrict top, long count, long probes, long groups, long *restrict starts,
                             long *restrict fill, int32_t *restrict rows) {
    for (long g = 0; g <= groups; g++) starts[g] = 0;
    for (long i = 0; i < count * probes; i++) starts[top[i] + 1]++;
    for (long g = 0; g < groups; g++) starts[g + 1] += starts[g];
    for (long g = 0; g < groups; g++) fill[g] = starts[g];
    for (long r = 0, at = 0; r < count; r++)
        for (long t = 0; t < probes; t++, at++) rows[fill[top[at]]++] = (int32_t)r;
}

// MARK: - scalar bodies

static inline const float *row_of(const float *x, long dim, const int32_t *rows, long i) {
    return x + (rows ? (long)rows[i] : i) * dim;
}

static float score_scalar(const float *xr, long dim, const float *packed, const float *bias, long j) {
    const float *panel = packed + (j / PANEL) * dim * PANEL + (j % PANEL);
    float s = 0;
    for (long d = 0; d < dim; d++) s += xr[d] * panel[d * PANEL];
    return s + bias[j];
}

void ck_assign_best_scalar(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                           const float *bias, long k, int32_t *out_index, float *out_score) {
    for (long i = 0; i < count; i++) {
        const float *xr = row_of(x, dim, rows, i);
        float best = -INFINITY;
        long at = 0;
        for (long j = 0; j < k; j++) {
            float s = score_scalar(xr, dim, packed, bias, j);
            if (s > best) { best = s; at = j; }
        }
        out_index[i] = (int32_t)at;
        if (out_score) out_score[i] = best;
    }
}

/// Inserts (score, j) into the `top` best so far (sorted descending; equal scores keep scan order, so the
/// smaller index stays first when columns are visited in increasing order).
static inline void top_insert(float *values, int32_t *indices, long top, float s, int32_t j) {
    if (!(s > values[top - 1])) return;
    long p = top - 1;
    while (p > 0 && s > values[p - 1]) {
        values[p] = values[p - 1];
        indices[p] = indices[p - 1];
        p--;
    }
    values[p] = s;
    indices[p] = j;
}

static void top_of_scores(const float *scores, long k, long top, int32_t *out) {
    float values[64];
    int32_t indices[64];
    for (long t = 0; t < top; t++) { values[t] = -INFINITY; indices[t] = (int32_t)t; }
    for (long j = 0; j < k; j++) top_insert(values, indices, top, scores[j], (int32_t)j);
    // Slots no column beat (only possible with non-finite scores) keep their distinct initial indices.
    memcpy(out, indices, (size_t)top * sizeof(int32_t));
}

void ck_assign_top_scalar(const float *x, long dim, long count, const float *packed, const float *bias, long k, long top,
                          int32_t *out) {
    if (top > 64) top = 64;
    float *scores = malloc((size_t)k * sizeof(float));
    for (long i = 0; i < count; i++) {
        const float *xr = x + i * dim;
        for (long j = 0; j < k; j++) scores[j] = score_scalar(xr, dim, packed, bias, j);
        top_of_scores(scores, k, top, out + i * top);
    }
    free(scores);
}

static inline void pack_buckets(const uint8_t *buckets, long dim, long nbits, uint8_t *out) {
    long per = 8 / nbits;
    for (long j = 0, d = 0; d < dim; j++, d += per) {
        unsigned byte = 0;
        for (long i = 0; i < per; i++) byte |= (unsigned)buckets[d + i] << (i * nbits);
        out[j] = (uint8_t)byte;
    }
}

void ck_residual_encode_scalar(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                               const float *cutoffs, long nbits, uint8_t *out) {
    long ncut = (1L << nbits) - 1, bytes = dim * nbits / 8;
    uint8_t buckets[4096];
    for (long t = 0; t < count; t++) {
        const float *xr = x + t * dim, *c = centroids + (long)codes[t] * dim;
        for (long d0 = 0; d0 < dim; d0 += 4096) {
            long span = dim - d0 < 4096 ? dim - d0 : 4096;
            for (long d = 0; d < span; d++) {
                float v = xr[d0 + d] - c[d0 + d];
                unsigned b = 0;
                for (long i = 0; i < ncut; i++) b += cutoffs[i] < v;
                buckets[d] = (uint8_t)b;
            }
            pack_buckets(buckets, span, nbits, out + t * bytes + d0 * nbits / 8);
        }
    }
}

/// Exact score of row x against centroid c: one fused multiply-add per dimension from 0, then the bias (the
/// order of ck_assign_best's AVX2 lanes).
static float exact_score_scalar(const float *xr, const float *c, long dim, float bias) {
    float s = 0;
    for (long d = 0; d < dim; d++) s = fmaf(xr[d], c[d], s);
    return s + bias;
}

void ck_assign_rescore_scalar(const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                              const float *bias, int32_t *out) {
    for (long i = 0; i < count; i++) {
        float best = -INFINITY;
        int32_t at = -1;
        for (long t = 0; t < 2; t++) {
            int32_t j = candidates[2 * i + t];
            if (j < 0) continue;
            float s = exact_score_scalar(x + i * dim, centroids + (long)j * dim, dim, bias[j]);
            if (at < 0 || s > best || (s == best && j < at)) { best = s; at = j; }
        }
        out[i] = at;
    }
}

// MARK: - AVX2 bodies

#if CKA_X86
#define AVX2 __attribute__((target("avx2,fma")))

/// Scores of up to four rows against one panel of 16 columns: acc[2r], acc[2r+1] hold row r's columns 0–7, 8–15.
#define TILE_4x16(p0, p1, p2, p3, panel, dim, acc)                                               \
    do {                                                                                         \
        for (int z_ = 0; z_ < 8; z_++) acc[z_] = _mm256_setzero_ps();                            \
        for (long d_ = 0; d_ < (dim); d_++) {                                                    \
            __m256 c0_ = _mm256_loadu_ps((panel) + d_ * PANEL);                                  \
            __m256 c1_ = _mm256_loadu_ps((panel) + d_ * PANEL + 8);                              \
            __m256 x_ = _mm256_broadcast_ss((p0) + d_);                                          \
            acc[0] = _mm256_fmadd_ps(x_, c0_, acc[0]);                                           \
            acc[1] = _mm256_fmadd_ps(x_, c1_, acc[1]);                                           \
            x_ = _mm256_broadcast_ss((p1) + d_);                                                 \
            acc[2] = _mm256_fmadd_ps(x_, c0_, acc[2]);                                           \
            acc[3] = _mm256_fmadd_ps(x_, c1_, acc[3]);                                           \
            x_ = _mm256_broadcast_ss((p2) + d_);                                                 \
            acc[4] = _mm256_fmadd_ps(x_, c0_, acc[4]);                                           \
            acc[5] = _mm256_fmadd_ps(x_, c1_, acc[5]);                                           \
            x_ = _mm256_broadcast_ss((p3) + d_);                                                 \
            acc[6] = _mm256_fmadd_ps(x_, c0_, acc[6]);                                           \
            acc[7] = _mm256_fmadd_ps(x_, c1_, acc[7]);                                           \
        }                                                                                        \
    } while (0)

/// Rows r0…r7 (dim floats each) transposed into xt (dim × 8): xt[d·8 + r] = row_r[d].
AVX2 static void transpose8(const float *const *p, long dim, float *xt) {
    long d = 0;
    for (; d + 8 <= dim; d += 8) {
        __m256 r0 = _mm256_loadu_ps(p[0] + d), r1 = _mm256_loadu_ps(p[1] + d), r2 = _mm256_loadu_ps(p[2] + d),
               r3 = _mm256_loadu_ps(p[3] + d), r4 = _mm256_loadu_ps(p[4] + d), r5 = _mm256_loadu_ps(p[5] + d),
               r6 = _mm256_loadu_ps(p[6] + d), r7 = _mm256_loadu_ps(p[7] + d);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
               u3 = _mm256_shuffle_ps(t1, t3, 0xEE), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        float *o = xt + d * 8;
        _mm256_storeu_ps(o + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(o + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(o + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(o + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(o + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; d < dim; d++)
        for (int r = 0; r < 8; r++) xt[d * 8 + r] = p[r][d];
}

AVX2 static void transpose16_avx2(const float *const *p, long dim, float *xt, float *scratch) {
    transpose8(p, dim, scratch);
    transpose8(p + 8, dim, scratch + dim * 8);
    for (long d = 0; d < dim; d++) {
        _mm256_storeu_ps(xt + d * 16, _mm256_loadu_ps(scratch + d * 8));
        _mm256_storeu_ps(xt + d * 16 + 8, _mm256_loadu_ps(scratch + dim * 8 + d * 8));
    }
}

/// Sixteen rows at a time, one row per SIMD lane (rows transposed once, two registers of eight),
/// against four centroids at a time broadcast from the panels (6 loads per 8 FMAs, so the FMA units
/// rather than the load ports set the pace): the running best score and index are per lane, so the
/// argmax is a compare and two blends per centroid, with no horizontal reduction.
AVX2 static void assign_best_avx2(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                                  const float *bias, long k, int32_t *out_index, float *out_score) {
    float stack[16 * 256];
    float *xt = dim <= 256 ? stack : malloc((size_t)dim * 16 * sizeof(float));
    float *xt1 = xt + dim * 8;
    long kk = (k + 3) / 4 * 4;  // padding columns (bias −∞) never win
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        for (int r = 0; r < 16; r++) p[r] = row_of(x, dim, rows, i + r < count ? i + r : count - 1);
        transpose8(p, dim, xt);
        transpose8(p + 8, dim, xt1);
        __m256 best0 = _mm256_set1_ps(-INFINITY), best1 = best0;
        __m256i at0 = _mm256_setzero_si256(), at1 = at0;
        for (long j = 0; j < kk; j += 4) {
            const float *base = packed + (j / PANEL) * dim * PANEL + (j % PANEL);
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (long d = 0; d < dim; d++) {
                __m256 x0 = _mm256_loadu_ps(xt + d * 8), x1 = _mm256_loadu_ps(xt1 + d * 8);
                const float *c = base + d * PANEL;
                __m256 c0 = _mm256_broadcast_ss(c + 0), c1 = _mm256_broadcast_ss(c + 1);
                a0 = _mm256_fmadd_ps(x0, c0, a0);
                b0 = _mm256_fmadd_ps(x1, c0, b0);
                a1 = _mm256_fmadd_ps(x0, c1, a1);
                b1 = _mm256_fmadd_ps(x1, c1, b1);
                __m256 c2 = _mm256_broadcast_ss(c + 2), c3 = _mm256_broadcast_ss(c + 3);
                a2 = _mm256_fmadd_ps(x0, c2, a2);
                b2 = _mm256_fmadd_ps(x1, c2, b2);
                a3 = _mm256_fmadd_ps(x0, c3, a3);
                b3 = _mm256_fmadd_ps(x1, c3, b3);
            }
#define CKA_TAKE(a, b, t)                                                                                 \
    do {                                                                                                  \
        __m256 bias_ = _mm256_broadcast_ss(bias + j + t);                                                 \
        __m256i index_ = _mm256_set1_epi32((int)(j + t));                                                 \
        __m256 s_ = _mm256_add_ps(a, bias_), m_ = _mm256_cmp_ps(s_, best0, _CMP_GT_OQ);                   \
        best0 = _mm256_blendv_ps(best0, s_, m_);                                                          \
        at0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at0), _mm256_castsi256_ps(index_), m_)); \
        s_ = _mm256_add_ps(b, bias_);                                                                     \
        m_ = _mm256_cmp_ps(s_, best1, _CMP_GT_OQ);                                                        \
        best1 = _mm256_blendv_ps(best1, s_, m_);                                                          \
        at1 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at1), _mm256_castsi256_ps(index_), m_)); \
    } while (0)
            CKA_TAKE(a0, b0, 0); CKA_TAKE(a1, b1, 1); CKA_TAKE(a2, b2, 2); CKA_TAKE(a3, b3, 3);
#undef CKA_TAKE
        }
        int32_t indices[16];
        float values[16];
        _mm256_storeu_si256((__m256i *)indices, at0);
        _mm256_storeu_si256((__m256i *)(indices + 8), at1);
        _mm256_storeu_ps(values, best0);
        _mm256_storeu_ps(values + 8, best1);
        for (int r = 0; r < 16 && i + r < count; r++) {
            out_index[i + r] = indices[r];
            if (out_score) out_score[i + r] = values[r];
        }
    }
    if (xt != stack) free(xt);
}

/// Scores (dot product + bias) of 16 vectors, transposed 8 at a time into `xt` and `xt1`, against the 4
/// packed centroids from column `j`: `a[t]` for the first 8 vectors, `b[t]` for the next 8. The inner
/// block of the top-k kernels below; inlined so its 8 accumulators stay in registers.
AVX2 static inline __attribute__((always_inline)) void score16x4(const float *xt, const float *xt1, const float *packed,
                                                                 const float *bias, long dim, long j, __m256 a[4], __m256 b[4]) {
    const float *base = packed + (j / PANEL) * dim * PANEL + (j % PANEL);
    for (int t = 0; t < 4; t++) { a[t] = _mm256_setzero_ps(); b[t] = a[t]; }
    for (long d = 0; d < dim; d++) {
        __m256 x0 = _mm256_loadu_ps(xt + d * 8), x1 = _mm256_loadu_ps(xt1 + d * 8);
        const float *c = base + d * PANEL;
        __m256 c0 = _mm256_broadcast_ss(c + 0), c1 = _mm256_broadcast_ss(c + 1);
        a[0] = _mm256_fmadd_ps(x0, c0, a[0]);
        b[0] = _mm256_fmadd_ps(x1, c0, b[0]);
        a[1] = _mm256_fmadd_ps(x0, c1, a[1]);
        b[1] = _mm256_fmadd_ps(x1, c1, b[1]);
        __m256 c2 = _mm256_broadcast_ss(c + 2), c3 = _mm256_broadcast_ss(c + 3);
        a[2] = _mm256_fmadd_ps(x0, c2, a[2]);
        b[2] = _mm256_fmadd_ps(x1, c2, b[2]);
        a[3] = _mm256_fmadd_ps(x0, c3, a[3]);
        b[3] = _mm256_fmadd_ps(x1, c3, b[3]);
    }
    for (int t = 0; t < 4; t++) {
        __m256 bias_ = _mm256_broadcast_ss(bias + j + t);
        a[t] = _mm256_add_ps(a[t], bias_);
        b[t] = _mm256_add_ps(b[t], bias_);
    }
}

/// The best `top` columns of sixteen rows at a time, computed as in assign_best_avx2 (one row per lane,
/// four centroids per step); each row keeps its sorted best list and its cut-off (the list's last score)
/// in a lane of two threshold registers, so a column is looked at per row only when it beats that row's
/// cut-off (a handful of times per row after the first columns).
AVX2 static void assign_top_avx2(const float *x, long dim, long count, const float *packed, const float *bias, long k,
                                 long top, int32_t *out) {
    float stack[16 * 256];
    float *xt = dim <= 256 ? stack : malloc((size_t)dim * 16 * sizeof(float));
    float *xt1 = xt + dim * 8;
    long kk = (k + 3) / 4 * 4;
    float values[16][64];
    int32_t indices[16][64];
    float cut[16];
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        for (int r = 0; r < 16; r++) p[r] = x + (i + r < count ? i + r : count - 1) * dim;
        transpose8(p, dim, xt);
        transpose8(p + 8, dim, xt1);
        for (int r = 0; r < 16; r++) {
            for (long t = 0; t < top; t++) { values[r][t] = -INFINITY; indices[r][t] = (int32_t)t; }
            cut[r] = -INFINITY;
        }
        __m256 cut0 = _mm256_loadu_ps(cut), cut1 = _mm256_loadu_ps(cut + 8);
        for (long j = 0; j < kk; j += 4) {
            __m256 a[4], b[4];
            score16x4(xt, xt1, packed, bias, dim, j, a, b);
            for (int t = 0; t < 4; t++) {
                __m256 s0 = a[t], s1 = b[t];
                unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s0, cut0, _CMP_GT_OQ))
                                | ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s1, cut1, _CMP_GT_OQ)) << 8);
                if (!mask) continue;
                float scores[16];
                _mm256_storeu_ps(scores, s0);
                _mm256_storeu_ps(scores + 8, s1);
                while (mask) {
                    int r = __builtin_ctz(mask);
                    mask &= mask - 1;
                    top_insert(values[r], indices[r], top, scores[r], (int32_t)(j + t));
                    cut[r] = values[r][top - 1];
                }
                cut0 = _mm256_loadu_ps(cut);
                cut1 = _mm256_loadu_ps(cut + 8);
            }
        }
        for (int r = 0; r < 16 && i + r < count; r++) memcpy(out + (i + r) * top, indices[r], (size_t)top * sizeof(int32_t));
    }
    if (xt != stack) free(xt);
}

/// assign_top_avx2 for top = 8 (what coarse-to-fine assignment asks for): each row's best list is one
/// register of scores and one of indices, and a column that beats a row's cut-off is inserted without a
/// branch: its place is the number of scores ≥ it (the list is sorted, so those lanes are a prefix; equal
/// scores stay first, as top_insert keeps them), lanes past it take their left neighbour. The scalar
/// insertion's data-dependent loop mispredicted about once per insertion, ~30 insertions per row against
/// 128 group centres: 3/4 of this kernel's time.
AVX2 static void assign_top8_avx2(const float *x, long dim, long count, const float *packed, const float *bias, long k,
                                  int32_t *out) {
    float stack[16 * 256];
    float *xt = dim <= 256 ? stack : malloc((size_t)dim * 16 * sizeof(float));
    float *xt1 = xt + dim * 8;
    long kk = (k + 3) / 4 * 4;
    __m256 values[16];
    __m256i indices[16];
    float cut[16] __attribute__((aligned(32)));
    const __m256i right = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i last = _mm256_set1_epi32(7);
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        for (int r = 0; r < 16; r++) p[r] = x + (i + r < count ? i + r : count - 1) * dim;
        transpose8(p, dim, xt);
        transpose8(p + 8, dim, xt1);
        for (int r = 0; r < 16; r++) {
            values[r] = _mm256_set1_ps(-INFINITY);
            indices[r] = lane;
            cut[r] = -INFINITY;
        }
        __m256 cut0 = _mm256_load_ps(cut), cut1 = _mm256_load_ps(cut + 8);
        for (long j = 0; j < kk; j += 4) {
            __m256 a[4], b[4];
            score16x4(xt, xt1, packed, bias, dim, j, a, b);
            for (int t = 0; t < 4; t++) {
                __m256 s0 = a[t], s1 = b[t];
                unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s0, cut0, _CMP_GT_OQ))
                                | ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s1, cut1, _CMP_GT_OQ)) << 8);
                if (!mask) continue;
                float scores[16];
                _mm256_storeu_ps(scores, s0);
                _mm256_storeu_ps(scores + 8, s1);
                __m256i column = _mm256_set1_epi32((int)(j + t));
                while (mask) {
                    int r = __builtin_ctz(mask);
                    mask &= mask - 1;
                    __m256 s = _mm256_set1_ps(scores[r]), v = values[r];
                    __m256 keep = _mm256_cmp_ps(v, s, _CMP_GE_OQ);
                    int place = __builtin_popcount((unsigned)_mm256_movemask_ps(keep));
                    __m256 at = _mm256_castsi256_ps(_mm256_cmpeq_epi32(lane, _mm256_set1_epi32(place)));
                    v = _mm256_blendv_ps(_mm256_blendv_ps(_mm256_permutevar8x32_ps(v, right), v, keep), s, at);
                    __m256 w = _mm256_castsi256_ps(indices[r]);
                    w = _mm256_blendv_ps(_mm256_blendv_ps(_mm256_permutevar8x32_ps(w, right), w, keep), _mm256_castsi256_ps(column), at);
                    values[r] = v;
                    indices[r] = _mm256_castps_si256(w);
                    cut[r] = _mm256_cvtss_f32(_mm256_permutevar8x32_ps(v, last));
                }
                cut0 = _mm256_load_ps(cut);
                cut1 = _mm256_load_ps(cut + 8);
            }
        }
        for (int r = 0; r < 16 && i + r < count; r++) _mm256_storeu_si256((__m256i *)(out + (i + r) * 8), indices[r]);
    }
    if (xt != stack) free(xt);
}

/// The int16 first pass of ck_assign_best2_i16: sixteen rows at a time, one per lane, as assign_best_avx2, but on
/// 16-bit integers: each row's coordinates two dimensions to a 32-bit lane (rows transposed once), against four
/// columns' pairs broadcast four at a time; one `vpmaddwd` does 16 multiply-adds where an FMA does 8. Each lane
/// keeps its best two scores and columns.
AVX2 static void assign_best2_i16_avx2(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                       const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                       int32_t *best_index, float *best_score) {
    long pairs = dim / 2;
    float stack[16 * 256];
    float *xt = pairs <= 256 ? stack : malloc((size_t)pairs * 16 * sizeof(float));
    float *xt1 = xt + pairs * 8;
    long kk = (k + 3) / 4 * 4;
    for (long i = 0; i < count; i += 16) {
        const float *p[16];
        float rs[16];
        for (int r = 0; r < 16; r++) {
            long at = i + r < count ? i + r : count - 1, row = rows ? rows[at] : at;
            p[r] = (const float *)(const void *)(q + row * dim);
            rs[r] = qscale[row] * cscale;
        }
        // 32-bit moves only: two dimensions' int16 bits travel as one float's bits.
        transpose8(p, pairs, xt);
        transpose8(p + 8, pairs, xt1);
        __m256 scale0 = _mm256_loadu_ps(rs), scale1 = _mm256_loadu_ps(rs + 8);
        __m256 best0 = _mm256_set1_ps(-INFINITY), best1 = best0, next0 = best0, next1 = best0;
        __m256i at0 = _mm256_set1_epi32(-1), at1 = at0, nat0 = at0, nat1 = at0;
        for (long j = 0; j < kk; j += 4) {
            const int16_t *base = packed + (j / PANEL) * pairs * PANEL * 2 + (j % PANEL) * 2;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (long d = 0; d < pairs; d++) {
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(xt + d * 8)), x1 = _mm256_loadu_si256((const __m256i *)(xt1 + d * 8));
                const int16_t *c = base + d * PANEL * 2;
                __m256i c0 = _mm256_set1_epi32(*(const int32_t *)(const void *)(c + 0));
                __m256i c1 = _mm256_set1_epi32(*(const int32_t *)(const void *)(c + 2));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(c0, x0));
                b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(c0, x1));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(c1, x0));
                b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(c1, x1));
                __m256i c2 = _mm256_set1_epi32(*(const int32_t *)(const void *)(c + 4));
                __m256i c3 = _mm256_set1_epi32(*(const int32_t *)(const void *)(c + 6));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(c2, x0));
                b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(c2, x1));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(c3, x0));
                b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(c3, x1));
            }
            // Best two per lane: a score above the best moves the best down; one above the second replaces it.
#define CKA_TAKE2(a, scale, best, next, at, nat, t)                                                        \
    do {                                                                                                  \
        __m256 s_ = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), scale, _mm256_broadcast_ss(bias + j + t));     \
        __m256 index_ = _mm256_castsi256_ps(_mm256_set1_epi32((int)(j + t)));                             \
        __m256 m1_ = _mm256_cmp_ps(s_, best, _CMP_GT_OQ), m2_ = _mm256_cmp_ps(s_, next, _CMP_GT_OQ);      \
        next = _mm256_blendv_ps(next, _mm256_blendv_ps(s_, best, m1_), m2_);                              \
        nat = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(nat),                              \
                  _mm256_blendv_ps(index_, _mm256_castsi256_ps(at), m1_), m2_));                          \
        best = _mm256_blendv_ps(best, s_, m1_);                                                           \
        at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), index_, m1_));                 \
    } while (0)
            CKA_TAKE2(a0, scale0, best0, next0, at0, nat0, 0); CKA_TAKE2(b0, scale1, best1, next1, at1, nat1, 0);
            CKA_TAKE2(a1, scale0, best0, next0, at0, nat0, 1); CKA_TAKE2(b1, scale1, best1, next1, at1, nat1, 1);
            CKA_TAKE2(a2, scale0, best0, next0, at0, nat0, 2); CKA_TAKE2(b2, scale1, best1, next1, at1, nat1, 2);
            CKA_TAKE2(a3, scale0, best0, next0, at0, nat0, 3); CKA_TAKE2(b3, scale1, best1, next1, at1, nat1, 3);
#undef CKA_TAKE2
        }
        int32_t first[16], second[16];
        float v1[16], v2[16];
        _mm256_storeu_si256((__m256i *)first, at0);
        _mm256_storeu_si256((__m256i *)(first + 8), at1);
        _mm256_storeu_si256((__m256i *)second, nat0);
        _mm256_storeu_si256((__m256i *)(second + 8), nat1);
        _mm256_storeu_ps(v1, best0);
        _mm256_storeu_ps(v1 + 8, best1);
        _mm256_storeu_ps(v2, next0);
        _mm256_storeu_ps(v2 + 8, next1);
        for (int r = 0; r < 16 && i + r < count; r++) {
            // A padding column (bias −∞) never enters a list: its score is −∞, never above another.
            long row = rows ? rows[i + r] : i + r;
            ck_assign_merge_best2(best_score + 2 * row, best_index + 2 * row, v1[r], first[r] < 0 ? -1 : members ? members[first[r]] : first[r],
                        v2[r], second[r] < 0 ? -1 : members ? members[second[r]] : second[r]);
        }
    }
    if (xt != stack) free(xt);
}

/// Exact scores of each row's two candidates: eight dimensions per fused multiply-add, then a horizontal sum
/// and the bias. Not assign_best_avx2's order of operations (that one adds one dimension at a time), so two
/// candidates whose scores are within a float rounding of each other may come out in the other order.
AVX2 static inline float exact_score_avx2(const float *xr, const float *c, long dim, float bias) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(xr), _mm256_loadu_ps(c));
    for (long d = 8; d < dim; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(xr + d), _mm256_loadu_ps(c + d), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h) + bias;
}

AVX2 static void rescore_avx2(const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                              const float *bias, int32_t *out) {
    // The candidates are centroids at random (K = 8,192 × 48-d is 1.5 MB): their rows are fetched a few rows ahead,
    // so the loads of row i find them in cache (the loop was bound by those misses: ~90 ns a row on the 2-core box).
    const long ahead = 6, lines = (dim * (long)sizeof(float) + 63) / 64;
    for (long i = 0; i < count; i++) {
        if (i + ahead < count) {
            for (long t = 0; t < 2; t++) {
                int32_t j = candidates[2 * (i + ahead) + t];
                if (j < 0) continue;
                const char *row = (const char *)(centroids + (long)j * dim);
                for (long l = 0; l < lines; l++) _mm_prefetch(row + l * 64, _MM_HINT_T0);
            }
        }
        int32_t j0 = candidates[2 * i], j1 = candidates[2 * i + 1];
        if (j1 < 0) { out[i] = j0; continue; }
        float s0 = exact_score_avx2(x + i * dim, centroids + (long)j0 * dim, dim, bias[j0]);
        float s1 = exact_score_avx2(x + i * dim, centroids + (long)j1 * dim, dim, bias[j1]);
        out[i] = s1 > s0 || (s1 == s0 && j1 < j0) ? j1 : j0;
    }
}

/// ck_assign_quantize_rows16 with eight dimensions per step (`vroundps` to nearest even, as nearbyintf).
AVX2 static void quantize_rows_avx2(const float *x, long dim, long count, int16_t *q, float *scale) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    float bound = (float)i16_limit(dim);
    __m256 high = _mm256_set1_ps(bound), low = _mm256_set1_ps(-bound);
    for (long i = 0; i < count; i++) {
        const float *xr = x + i * dim;
        __m256 m = _mm256_setzero_ps();
        for (long d = 0; d < dim; d += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xr + d)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float top = _mm_cvtss_f32(h);
        float s = top > 0 && isfinite(top) ? top / bound : 1.0f;
        __m256 inverse = _mm256_set1_ps(1.0f / s);
        for (long d = 0; d < dim; d += 8) {
            __m256 v = _mm256_min_ps(high, _mm256_max_ps(low, _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + d), inverse),
                                                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
            __m256i n = _mm256_cvtps_epi32(v);
            _mm_storeu_si128((__m128i *)(q + i * dim + d), _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1)));
        }
        scale[i] = s;
    }
}

/// pack_buckets for 2 and 4 bits, sixteen buckets per step: `vpmaddubsw` joins neighbours (b0 + b1 · 2^nbits), for 2
/// bits `vpmaddwd` joins those pairs (+ · 16), and saturating packs narrow to bytes (every value is < 256). Same
/// bytes as pack_buckets, which does the rest (and 1 bit).
AVX2 static void pack_buckets_avx2(const uint8_t *buckets, long dim, long nbits, uint8_t *out) {
    long d = 0, j = 0;
    if (nbits == 4) {
        const __m128i weights = _mm_set1_epi16(0x1001);  // bytes 1, 16
        for (; d + 16 <= dim; d += 16, j += 8) {
            __m128i pairs = _mm_maddubs_epi16(_mm_loadu_si128((const __m128i *)(buckets + d)), weights);
            _mm_storel_epi64((__m128i *)(out + j), _mm_packus_epi16(pairs, pairs));
        }
    } else if (nbits == 2) {
        const __m128i weights = _mm_set1_epi16(0x0401), quads = _mm_set1_epi32(0x00100001);  // bytes 1, 4; words 1, 16
        for (; d + 16 <= dim; d += 16, j += 4) {
            __m128i pairs = _mm_maddubs_epi16(_mm_loadu_si128((const __m128i *)(buckets + d)), weights);
            __m128i fours = _mm_madd_epi16(pairs, quads);
            __m128i words = _mm_packs_epi32(fours, fours);
            int32_t packed = _mm_cvtsi128_si32(_mm_packus_epi16(words, words));
            memcpy(out + j, &packed, 4);
        }
    }
    if (d < dim) pack_buckets(buckets + d, dim - d, nbits, out + j);
}

AVX2 static void residual_encode_avx2(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                                      const float *cutoffs, long nbits, uint8_t *out) {
    long ncut = (1L << nbits) - 1, bytes = dim * nbits / 8;
    __m256 cut[15];
    for (long i = 0; i < ncut; i++) cut[i] = _mm256_set1_ps(cutoffs[i]);
    uint8_t buckets[4096];
    // Each vector's centroid is a random row: fetched a few vectors ahead (as in rescore_avx2).
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
            for (; d + 8 <= span; d += 8) {
                __m256 v = _mm256_sub_ps(_mm256_loadu_ps(xr + d0 + d), _mm256_loadu_ps(c + d0 + d));
                __m256i n = _mm256_setzero_si256();
                // A true comparison is all ones (−1): subtracting counts the cutoffs below v.
                for (long i = 0; i < ncut; i++) n = _mm256_sub_epi32(n, _mm256_castps_si256(_mm256_cmp_ps(cut[i], v, _CMP_LT_OQ)));
                __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
                _mm_storel_epi64((__m128i *)(buckets + d), _mm_packus_epi16(w, w));
            }
            for (; d < span; d++) {
                float v = xr[d0 + d] - c[d0 + d];
                unsigned b = 0;
                for (long i = 0; i < ncut; i++) b += cutoffs[i] < v;
                buckets[d] = (uint8_t)b;
            }
            pack_buckets_avx2(buckets, span, nbits, out + t * bytes + d0 * nbits / 8);
        }
    }
}
#endif

// MARK: - dispatch

void ck_assign_pack_buckets(const uint8_t *buckets, long dim, long nbits, uint8_t *out) {
#if CKA_X86
    if (ck_has_avx2()) { pack_buckets_avx2(buckets, dim, nbits, out); return; }
#endif
    pack_buckets(buckets, dim, nbits, out);
}

void ck_assign_transpose16(const float *const *p, long dim, float *xt, float *scratch) {
#if CKA_X86
    if (ck_has_avx2()) { transpose16_avx2(p, dim, xt, scratch); return; }
#endif
    (void)scratch;
    for (long d = 0; d < dim; d++)
        for (int r = 0; r < 16; r++) xt[d * 16 + r] = p[r][d];
}

static int isa_supported = -1, isa_used = -1;

int ck_assign_isa_supported(void) {
    if (isa_supported < 0) {
        int isa = CK_ISA_SCALAR;
#if CKA_X86
        if (ck_has_avx2()) {
            isa = CK_ISA_AVX2;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512dq"))
                isa = __builtin_cpu_supports("avx512vnni") ? CK_ISA_AVX512_VNNI : CK_ISA_AVX512;
        }
#endif
        isa_supported = isa;
    }
    return isa_supported;
}

const char *ck_assign_isa_name(int isa) {
    switch (isa) {
    case CK_ISA_SCALAR: return "scalar";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    case CK_ISA_AVX512_VNNI: return "avx512-vnni";
    case CK_ISA_NEON: return "neon";
    default: return "unknown";
    }
}

int ck_isa_from_environment(const char *variable) {
    int isa = ck_assign_isa_supported();
    const char *cap = getenv(variable);
    if (cap) {
        for (int level = CK_ISA_SCALAR; level <= CK_ISA_AVX512_VNNI; level++)
            if ((strcmp(cap, ck_assign_isa_name(level)) == 0 || (level == CK_ISA_AVX512_VNNI && strcmp(cap, "vnni") == 0)) && level < isa)
                isa = level;
    }
    return isa;
}

int ck_assign_isa(void) {
    if (isa_used < 0) isa_used = ck_isa_from_environment("COLGREP_ASSIGN_ISA");
    return isa_used;
}

int ck_assign_best_with(int isa, const float *x, long dim, const int32_t *rows, long count, const float *packed,
                        const float *bias, long k, int32_t *out_index, float *out_score) {
    if (isa > ck_assign_isa_supported()) return 0;
    if (count <= 0 || k <= 0) return 1;
#if CKA_X86
    if (isa >= CK_ISA_AVX512) { ck_assign_best_avx512(x, dim, rows, count, packed, bias, k, out_index, out_score); return 1; }
    if (isa >= CK_ISA_AVX2) { assign_best_avx2(x, dim, rows, count, packed, bias, k, out_index, out_score); return 1; }
#endif
    ck_assign_best_scalar(x, dim, rows, count, packed, bias, k, out_index, out_score);
    return 1;
}

void ck_assign_best(const float *x, long dim, const int32_t *rows, long count, const float *packed, const float *bias,
                    long k, int32_t *out_index, float *out_score) {
    ck_assign_best_with(ck_assign_isa(), x, dim, rows, count, packed, bias, k, out_index, out_score);
}

int ck_assign_top_with(int isa, const float *x, long dim, long count, const float *packed, const float *bias, long k,
                       long top, int32_t *out) {
    if (isa > ck_assign_isa_supported()) return 0;
    if (count <= 0 || k <= 0) return 1;
    if (top > k) top = k;
    if (top > 64) top = 64;
#if CKA_X86
    if (isa >= CK_ISA_AVX512 && top == 8) { ck_assign_top8_avx512(x, dim, count, packed, bias, k, out); return 1; }
    if (isa >= CK_ISA_AVX2 && top == 8) { assign_top8_avx2(x, dim, count, packed, bias, k, out); return 1; }
    // Fewer than 8: the first `top` of the sorted best 8 (the same list and tie order as the general kernel's),
    // 256 rows at a time; the branch-free best-8 kernels are several times faster than the general insertion.
    if (isa >= CK_ISA_AVX2 && top < 8 && k >= 8) {
        int32_t eight[256 * 8];
        for (long i = 0; i < count; i += 256) {
            long rows = count - i < 256 ? count - i : 256;
            if (isa >= CK_ISA_AVX512) ck_assign_top8_avx512(x + i * dim, dim, rows, packed, bias, k, eight);
            else assign_top8_avx2(x + i * dim, dim, rows, packed, bias, k, eight);
            for (long r = 0; r < rows; r++) memcpy(out + (i + r) * top, eight + r * 8, (size_t)top * sizeof(int32_t));
        }
        return 1;
    }
    if (isa >= CK_ISA_AVX2) { assign_top_avx2(x, dim, count, packed, bias, k, top, out); return 1; }
#endif
    ck_assign_top_scalar(x, dim, count, packed, bias, k, top, out);
    return 1;
}

void ck_assign_top(const float *x, long dim, long count, const float *packed, const float *bias, long k, long top,
                   int32_t *out) {
    ck_assign_top_with(ck_assign_isa(), x, dim, count, packed, bias, k, top, out);
}

int ck_residual_encode_with(int isa, const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                            const float *cutoffs, long nbits, uint8_t *out) {
    if (isa > ck_assign_isa_supported()) return 0;
    if (count <= 0) return 1;
#if CKA_X86
    if (isa >= CK_ISA_AVX512 && (nbits == 2 || nbits == 4)) {
        ck_residual_encode_avx512(x, dim, count, centroids, codes, cutoffs, nbits, out);
        return 1;
    }
    if (isa >= CK_ISA_AVX2 && nbits <= 4) { residual_encode_avx2(x, dim, count, centroids, codes, cutoffs, nbits, out); return 1; }
#endif
    ck_residual_encode_scalar(x, dim, count, centroids, codes, cutoffs, nbits, out);
    return 1;
}

void ck_residual_encode(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                        const float *cutoffs, long nbits, uint8_t *out) {
    ck_residual_encode_with(ck_assign_isa(), x, dim, count, centroids, codes, cutoffs, nbits, out);
}

int ck_assign_best2_i16_with(int isa, const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                             const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                             int32_t *best_index, float *best_score) {
    if (isa > ck_assign_isa_supported()) return 0;
    if (count <= 0 || k <= 0) return 1;
#if CKA_X86
    if (dim % 2 == 0) {
        if (isa >= CK_ISA_AVX512_VNNI) {
            ck_assign_best2_i16_vnni(q, qscale, dim, rows, count, packed, bias, cscale, k, members, best_index, best_score);
            return 1;
        }
        if (isa >= CK_ISA_AVX512) {
            ck_assign_best2_i16_avx512(q, qscale, dim, rows, count, packed, bias, cscale, k, members, best_index, best_score);
            return 1;
        }
        if (isa >= CK_ISA_AVX2) {
            assign_best2_i16_avx2(q, qscale, dim, rows, count, packed, bias, cscale, k, members, best_index, best_score);
            return 1;
        }
    }
#endif
    ck_assign_best2_i16_scalar(q, qscale, dim, rows, count, packed, bias, cscale, k, members, best_index, best_score);
    return 1;
}

void ck_assign_best2_i16(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count, const int16_t *packed,
                         const float *bias, float cscale, long k, const int32_t *members, int32_t *best_index, float *best_score) {
    ck_assign_best2_i16_with(ck_assign_isa(), q, qscale, dim, rows, count, packed, bias, cscale, k, members, best_index, best_score);
}

int ck_assign_quantize_rows16_with(int isa, const float *x, long dim, long count, int16_t *q, float *scale) {
    if (isa > ck_assign_isa_supported()) return 0;
#if CKA_X86
    if (isa >= CK_ISA_AVX512 && dim % 16 == 0) { ck_assign_quantize_rows16_avx512(x, dim, count, (float)i16_limit(dim), q, scale); return 1; }
    if (isa >= CK_ISA_AVX2 && dim % 8 == 0) { quantize_rows_avx2(x, dim, count, q, scale); return 1; }
#endif
    quantize_rows_scalar(x, dim, count, q, scale);
    return 1;
}

void ck_assign_quantize_rows16(const float *x, long dim, long count, int16_t *q, float *scale) {
    ck_assign_quantize_rows16_with(ck_assign_isa(), x, dim, count, q, scale);
}

int ck_assign_rescore_with(int isa, const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                           const float *bias, int32_t *out) {
    if (isa > ck_assign_isa_supported()) return 0;
    if (count <= 0) return 1;
#if CKA_X86
    if (isa >= CK_ISA_AVX2 && dim % 8 == 0) { rescore_avx2(x, dim, count, candidates, centroids, bias, out); return 1; }
#endif
    ck_assign_rescore_scalar(x, dim, count, candidates, centroids, bias, out);
    return 1;
}

void ck_assign_rescore(const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                       const float *bias, int32_t *out) {
    ck_assign_rescore_with(ck_assign_isa(), x, dim, count, candidates, centroids, bias, out);
}
