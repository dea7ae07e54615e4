// Shared between the assignment kernels' files (assign.c, assign512.c); not part of the module's interface.
#ifndef CKERNELS_ASSIGN_INTERNAL_H
#define CKERNELS_ASSIGN_INTERNAL_H

#include <stdint.h>

/// Rows p[0…15] (`dim` floats each) as dim × 16 (xt[d·16 + r] = p[r][d]); `scratch` holds dim · 16 floats.
void ck_assign_transpose16(const float *const *p, long dim, float *xt, float *scratch);
/// Merges one group's best two (s1 ≥ s2, columns j1, j2; j < 0: none) into a row's best-two list (v, at);
/// equal scores keep the smaller column first.
void ck_assign_merge_best2(float *v, int32_t *at, float s1, int32_t j1, float s2, int32_t j2);

/// Packs `dim` buckets (each < 2^nbits) LSB-first into dim · nbits / 8 bytes (ck_residual_encode's layout).
void ck_assign_pack_buckets(const uint8_t *buckets, long dim, long nbits, uint8_t *out);

#if defined(__x86_64__)
void ck_residual_encode_avx512(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                               const float *cutoffs, long nbits, uint8_t *out);
void ck_assign_best_avx512(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                           const float *bias, long k, int32_t *out_index, float *out_score);
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
