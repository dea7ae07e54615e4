// Centroid-pruned approximate scores (PLAID's centroid pruning) for the codes stage of search.
//
// A query's "live" centroids are those whose best score over the query tokens reaches the centroid
// score threshold; the others (93 % of K = 8,192 at 48-d, 99 % at 128-d on the synthetic 100k indexes)
// count as 0 in Σ_q max_t S[q, code_t]. Their rows then need not be stored: the u8 table holds row 0
// (zeros) and one row per live centroid, and a K-entry map sends each code to its row. The compact
// table fits the L1 cache where the full one (K × 32 bytes) sat in L2.

#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CKP_X86 1
#else
#define CKP_X86 0
#endif

void ck_quantize_live_scores_u8(const float *scores, const int32_t *live, long count, long nq, long stride, uint8_t *out,
                                long width) {
    float high = 0;
    for (long i = 0; i < count; i++) {
        const float *row = scores + (long)live[i] * stride;
        for (long q = 0; q < nq; q++) high = row[q] > high ? row[q] : high;
    }
    float scale = high > 0 ? 255.0f / high : 0.0f;
    memset(out, 0, (size_t)width);
    for (long i = 0; i < count; i++) {
        const float *row = scores + (long)live[i] * stride;
        uint8_t *o = out + (i + 1) * width;
        for (long q = 0; q < nq; q++) {
            float v = row[q] * scale + 0.5f;
            o[q] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
        for (long q = nq; q < width; q++) o[q] = 0;
    }
}

uint32_t ck_code_maxsum_u8_remap_scalar(const uint16_t *codes, long count, const uint16_t *remap, const uint8_t *table,
                                        long width, long used) {
    uint32_t total = 0;
    for (long q = 0; q < used; q++) {
        uint8_t best = 0;
        for (long t = 0; t < count; t++) {
            uint8_t v = table[(long)remap[codes[t]] * width + q];
            if (v > best) best = v;
        }
        total += best;
    }
    return total;
}

#if CKP_X86
#define AVX2 __attribute__((target("avx2")))

/// As code_maxsum_u8_avx2 (maxsim.c), each code sent through the map first: eight rows per step into
/// four running maxima.
AVX2 static uint32_t code_maxsum_u8_remap_avx2(const uint16_t *codes, long count, const uint16_t *remap, const uint8_t *table,
                                               long width) {
    uint32_t total = 0;
    for (long w = 0; w < width; w += 32) {
        const uint8_t *base = table + w;
#define ROW(t) _mm256_loadu_si256((const __m256i *)(base + (long)remap[codes[t]] * width))
        __m256i m0 = ROW(0), m1 = m0, m2 = m0, m3 = m0;
        long t = 1;
        for (; t + 8 <= count; t += 8) {
            m0 = _mm256_max_epu8(m0, _mm256_max_epu8(ROW(t), ROW(t + 1)));
            m1 = _mm256_max_epu8(m1, _mm256_max_epu8(ROW(t + 2), ROW(t + 3)));
            m2 = _mm256_max_epu8(m2, _mm256_max_epu8(ROW(t + 4), ROW(t + 5)));
            m3 = _mm256_max_epu8(m3, _mm256_max_epu8(ROW(t + 6), ROW(t + 7)));
        }
        for (; t < count; t++) m0 = _mm256_max_epu8(m0, ROW(t));
#undef ROW
        __m256i s = _mm256_sad_epu8(_mm256_max_epu8(_mm256_max_epu8(m0, m1), _mm256_max_epu8(m2, m3)), _mm256_setzero_si256());
        total += (uint32_t)(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2)
                            + _mm256_extract_epi64(s, 3));
    }
    return total;
}
#endif

uint32_t ck_code_maxsum_u8_remap(const uint16_t *codes, long count, const uint16_t *remap, const uint8_t *table, long width,
                                 long used) {
    if (count <= 0) return 0;
#if CKP_X86
    if (ck_has_avx2() && width % 32 == 0) return code_maxsum_u8_remap_avx2(codes, count, remap, table, width);
#endif
    return ck_code_maxsum_u8_remap_scalar(codes, count, remap, table, width, used);
}

/// Documents whose codes are fetched ahead (as ck_code_maxsum_u8_batch).
#define REMAP_CODES_AHEAD 8

void ck_code_maxsum_u8_remap_batch(const uint16_t *const *codes_of_doc, const long *counts, long docs, const uint16_t *remap,
                                   const uint8_t *table, long width, long used, float *out) {
    for (long i = 0; i < docs; i++) {
        if (i + REMAP_CODES_AHEAD < docs) {
            const char *next = (const char *)codes_of_doc[i + REMAP_CODES_AHEAD];
            long bytes = counts[i + REMAP_CODES_AHEAD] * (long)sizeof(uint16_t);
            for (long o = 0; o < bytes; o += 64) __builtin_prefetch(next + o);
        }
        out[i] = (float)ck_code_maxsum_u8_remap(codes_of_doc[i], counts[i], remap, table, width, used);
    }
}
