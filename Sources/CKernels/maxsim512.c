// The AVX512-VNNI body of the exact stage's token loop (maxsim.c's pass B; maxsim.c dispatches to it when the CPU
// has AVX-512 F/BW/VL/DQ and VNNI). The AVX2 body needs five instructions (two `vpmaddubsw`, `vpaddw`, `vpmaddwd`,
// `vpaddd`) for two groups of four dimensions against eight query tokens; `vpdpbusd` does one group against sixteen
// in one instruction, with the same exact int32 sums (levels ≤ 63 never saturate the AVX2 body's int16 pairs, and
// integer sums do not depend on their order). The float epilogue repeats the AVX2 body's operations in its order, so
// every score has the same bits as the scalar and AVX2 bodies.
#include "maxsim_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#ifndef AVX512VNNI
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#endif

/// Query tokens per register.
#define LANES 16

/// One token's dot products with NB blocks of sixteen query tokens (from query token q0; the last block may be
/// half, `tail`), two accumulators per block (even and odd groups: two dependency chains of half the length),
/// then its scores folded into best. qg's blocks of eight tokens are contiguous for one group, so a 64-byte load
/// at block q0 / 8 is sixteen tokens × their four int8 values, lane i = query token q0 + i.
#define VNNI_BLOCKS(NB)                                                                                           \
    do {                                                                                                          \
        __m512i even[NB], odd[NB];                                                                                \
        for (int b = 0; b < (NB); b++) even[b] = odd[b] = _mm512_setzero_si512();                                 \
        long g = 0;                                                                                               \
        for (; g + 2 <= groups; g += 2) {                                                                         \
            int32_t w0, w1;                                                                                       \
            memcpy(&w0, u + 4 * g, 4);                                                                            \
            memcpy(&w1, u + 4 * g + 4, 4);                                                                        \
            __m512i l0 = _mm512_set1_epi32(w0), l1 = _mm512_set1_epi32(w1);                                       \
            const int8_t *r0 = qg + (g * nqb + q0 / 8) * 32, *r1 = qg + ((g + 1) * nqb + q0 / 8) * 32;           \
            for (int b = 0; b < (NB); b++) {                                                                      \
                __mmask64 bytes = b == (NB) - 1 ? last_bytes : ~(__mmask64)0;                                     \
                even[b] = _mm512_dpbusd_epi32(even[b], l0, _mm512_maskz_loadu_epi8(bytes, r0 + 64 * b));          \
                odd[b] = _mm512_dpbusd_epi32(odd[b], l1, _mm512_maskz_loadu_epi8(bytes, r1 + 64 * b));           \
            }                                                                                                     \
        }                                                                                                         \
        if (g < groups) {                                                                                         \
            int32_t w0;                                                                                           \
            memcpy(&w0, u + 4 * g, 4);                                                                            \
            __m512i l0 = _mm512_set1_epi32(w0);                                                                   \
            const int8_t *r0 = qg + (g * nqb + q0 / 8) * 32;                                                      \
            for (int b = 0; b < (NB); b++) {                                                                      \
                __mmask64 bytes = b == (NB) - 1 ? last_bytes : ~(__mmask64)0;                                     \
                even[b] = _mm512_dpbusd_epi32(even[b], l0, _mm512_maskz_loadu_epi8(bytes, r0 + 64 * b));          \
            }                                                                                                     \
        }                                                                                                         \
        for (int b = 0; b < (NB); b++) {                                                                          \
            __mmask16 lanes = b == (NB) - 1 ? last_lanes : (__mmask16)0xFFFF;                                     \
            long qb = q0 + LANES * b;                                                                             \
            __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even[b], odd[b]));                                   \
            __m512 t1 = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, row + qb), _mm512_maskz_loadu_ps(lanes, offset + qb)); \
            __m512 t2 = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, scale + qb), dot);                             \
            __m512 sc = _mm512_mul_ps(_mm512_add_ps(t1, t2), inv);                                                \
            /* max_ps(s, best) = s > best ? s : best, as the scalar and AVX2 bodies. */                          \
            _mm512_mask_storeu_ps(best + qb, lanes, _mm512_max_ps(sc, _mm512_maskz_loadu_ps(lanes, best + qb)));  \
        }                                                                                                         \
    } while (0)

AVX512VNNI void ck_residual_pass_vnni(const ck_residual_query *Q, const int8_t *qg, const uint8_t *levels, long m,
                                      const float *inverses, const uint16_t *codes, const uint32_t *doc_of_token,
                                      float *best_all) {
    long nqp = Q->nq_padded, dp = Q->dim_padded, nqb = nqp / 8, groups = (Q->dim + 3) / 4;
    const float *offset = Q->offset, *scale = Q->scale;
    for (long l = 0; l < m; l++) {
        const uint8_t *u = levels + l * dp;
        __m512 inv = _mm512_set1_ps(inverses[l]);
        const float *row = Q->ctable + (long)codes[l] * nqp;
        float *best = best_all + (long)doc_of_token[l] * nqp;
        // Up to four blocks of sixteen query tokens at a time (eight accumulators); nq_padded is a multiple of
        // eight, so only a step's last block can be half.
        for (long q0 = 0; q0 < nqp; q0 += 4 * LANES) {
            long left = nqp - q0, blocks = (left + LANES - 1) / LANES;
            if (blocks > 4) blocks = 4;
            int half = left < blocks * LANES;  // the last block has eight tokens
            __mmask64 last_bytes = half ? (__mmask64)0xFFFFFFFFu : ~(__mmask64)0;
            __mmask16 last_lanes = half ? (__mmask16)0x00FF : (__mmask16)0xFFFF;
            switch (blocks) {
            case 1: VNNI_BLOCKS(1); break;
            case 2: VNNI_BLOCKS(2); break;
            case 3: VNNI_BLOCKS(3); break;
            default: VNNI_BLOCKS(4); break;
            }
        }
    }
}
#endif
