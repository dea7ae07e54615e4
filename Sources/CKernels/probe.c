// Centroid probing of PLAID search: one pass over the centroid-major query × centroid table that keeps,
// per query token, its best centroids (sorted, decreasing) and, per centroid, its best score over the
// query tokens (for the centroid-score threshold). The scalar body and the AVX2 body insert the same
// centroids in the same order, so their outputs are identical (tested).
#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CKP_X86 1
#else
#define CKP_X86 0
#endif

/// Inserts centroid c with `score` into query token q's list (sorted decreasing, `probe` long; the
/// worst falls off the end) and returns the list's new floor (its last score).
static inline float probe_insert(float *scores, int32_t *ids, long probe, long q, float score, int32_t c) {
    float *s = scores + q * probe;
    int32_t *id = ids + q * probe;
    long i = probe - 1;
    while (i > 0 && s[i - 1] < score) {
        s[i] = s[i - 1];
        id[i] = id[i - 1];
        i--;
    }
    s[i] = score;
    id[i] = c;
    return s[probe - 1];
}

/// Common set-up: lists empty (-inf, -1), floors -inf.
static void probe_reset(long nq, long probe, float *top_scores, int32_t *top_ids, float *floors) {
    for (long i = 0; i < nq * probe; i++) {
        top_scores[i] = -INFINITY;
        top_ids[i] = -1;
    }
    for (long q = 0; q < nq; q++) floors[q] = -INFINITY;
}

void ck_probe_centroids_scalar(const float *table, long k, long nq, long stride, long probe, const uint8_t *eligible,
                               float *top_scores, int32_t *top_ids, float *best, float *floors) {
    probe_reset(nq, probe, top_scores, top_ids, floors);
    for (long c = 0; c < k; c++) {
        if (eligible && !eligible[c]) {
            best[c] = -INFINITY;
            continue;
        }
        const float *row = table + c * stride;
        float b = -INFINITY;
        for (long q = 0; q < nq; q++) {
            float score = row[q];
            b = score > b ? score : b;
            if (score > floors[q]) floors[q] = probe_insert(top_scores, top_ids, probe, q, score, (int32_t)c);
        }
        best[c] = b;
    }
}

#if CKP_X86
/// Eight query tokens per compare: a centroid's row is rejected with one compare and a mask test per
/// 8 tokens unless one of them beats its token's floor (rare once the lists fill); padding lanes past
/// nq have floor +inf and count -inf towards the best.
__attribute__((target("avx2,fma"))) static void probe_centroids_avx2(const float *table, long k, long nq, long stride,
                                                                      long probe, const uint8_t *eligible, float *top_scores,
                                                                      int32_t *top_ids, float *best, float *floors) {
    long blocks = (nq + 7) / 8;
    // Floors padded to whole blocks (lanes past nq: +inf), kept in step with `floors`.
    float padded[blocks * 8];
    for (long q = 0; q < blocks * 8; q++) padded[q] = q < nq ? -INFINITY : INFINITY;
    const __m256 minus = _mm256_set1_ps(-INFINITY);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 tailValid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nq - (blocks - 1) * 8)), lane));
    for (long c = 0; c < k; c++) {
        if (eligible && !eligible[c]) {
            best[c] = -INFINITY;
            continue;
        }
        const float *row = table + c * stride;
        __m256 b = minus;
        for (long blk = 0; blk < blocks; blk++) {
            __m256 v = _mm256_loadu_ps(row + blk * 8);
            if (blk == blocks - 1) v = _mm256_blendv_ps(minus, v, tailValid);
            b = _mm256_max_ps(b, v);
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_loadu_ps(padded + blk * 8), _CMP_GT_OQ));
            while (mask) {
                long q = blk * 8 + __builtin_ctz((unsigned)mask);
                mask &= mask - 1;
                padded[q] = probe_insert(top_scores, top_ids, probe, q, row[q], (int32_t)c);
            }
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        best[c] = _mm_cvtss_f32(m);
    }
    for (long q = 0; q < nq; q++) floors[q] = padded[q];
}
#endif

void ck_probe_centroids(const float *table, long k, long nq, long stride, long probe, const uint8_t *eligible,
                        float *top_scores, int32_t *top_ids, float *best, float *floors) {
    if (nq <= 0 || probe <= 0) return;
#if CKP_X86
    if (ck_has_avx2() && stride >= (nq + 7) / 8 * 8) {
        probe_reset(nq, probe, top_scores, top_ids, floors);
        probe_centroids_avx2(table, k, nq, stride, probe, eligible, top_scores, top_ids, best, floors);
        return;
    }
#endif
    ck_probe_centroids_scalar(table, k, nq, stride, probe, eligible, top_scores, top_ids, best, floors);
}
