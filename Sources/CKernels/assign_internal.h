// Shared between the assignment kernels' files (assign.c, assign512.c); not part of the module's interface.
#ifndef CKERNELS_ASSIGN_INTERNAL_H
#define CKERNELS_ASSIGN_INTERNAL_H

#include <math.h>
#include <stdint.h>

/// Rows p[0…15] (`dim` floats each) as dim × 16 (xt[d·16 + r] = p[r][d]); `scratch` holds dim · 16 floats.
void ck_assign_transpose16(const float *const *p, long dim, float *xt, float *scratch);
/// Merges one group's best two (s1 ≥ s2, columns j1, j2; j < 0: none) into a row's best-two list (v, at), with
/// selects rather than branches: the new best is the larger best, the new second the larger of what is left.
/// Equal scores keep the smaller column first. Inline: the fine step calls it once per row and probed group, and
/// as a call from assign512.c it also spilled the caller's vector registers.
static inline void ck_assign_merge_best2(float *v, int32_t *at, float s1, int32_t j1, float s2, int32_t j2) {
    if (j1 < 0) return;
    if (j2 < 0) s2 = -INFINITY;
    float b1 = v[0], b2 = v[1];
    int32_t a1 = at[0], a2 = at[1];
    int first = s1 > b1 || (s1 == b1 && (a1 < 0 || j1 < a1));
    float top = first ? s1 : b1, lose = first ? b1 : s1, rest = first ? s2 : b2;
    int32_t topAt = first ? j1 : a1, loseAt = first ? a1 : j1, restAt = first ? j2 : a2;
    int second = loseAt >= 0 && (lose > rest || (lose == rest && (restAt < 0 || loseAt < restAt)));
    v[0] = top;
    at[0] = topAt;
    v[1] = second ? lose : rest;
    at[1] = second ? loseAt : restAt;
}

/// Packs `dim` buckets (each < 2^nbits) LSB-first into dim · nbits / 8 bytes (ck_residual_encode's layout).
void ck_assign_pack_buckets(const uint8_t *buckets, long dim, long nbits, uint8_t *out);

#if defined(__x86_64__)
void ck_residual_encode_avx512(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                               const float *cutoffs, long nbits, uint8_t *out);
void ck_assign_best_avx512(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                           const float *bias, long k, int32_t *out_index, float *out_score);
void ck_assign_quantize_rows16_avx512(const float *x, long dim, long count, float bound, int16_t *q, float *scale);
void ck_assign_top8_avx512(const float *x, long dim, long count, const float *packed, const float *bias, long k,
                           int32_t *out);
void ck_assign_best2_i16_avx512(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                int32_t *best_index, float *best_score);
void ck_assign_best2_i16_vnni(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                              const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                              int32_t *best_index, float *best_score);
#endif

#endif
