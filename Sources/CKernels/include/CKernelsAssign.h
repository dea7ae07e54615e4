// Nearest-centroid assignment and residual encoding for PLAID index builds (assign.c).
// Centroids are packed once into panels of 16 (for each panel, `dim` rows of 16 floats), so a 4-row × 16-column
// tile of scores stays in eight AVX2 registers and the argmax runs on the registers: no score matrix is written.
#ifndef CKERNELS_ASSIGN_H
#define CKERNELS_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

/// Floats of the packed form of k centroids of `dim` dimensions (k rounded up to 16).
size_t ck_assign_packed_floats(long k, long dim);
/// Packs centroids `members[0..k)` (rows of `centroids`, row stride `dim`; members NULL: rows 0..k) into
/// `packed` (ck_assign_packed_floats floats) and writes each column's bias, k rounded up to 16 entries:
/// −½‖c‖² when `euclidean` (nearest in L2), else 0 (largest inner product); padding columns get −∞.
void ck_assign_pack(const float *centroids, long dim, const int32_t *members, long k, int euclidean, float *packed,
                    float *bias);
/// For each of `count` rows (row i starts at x + rows[i]·dim, or x + i·dim when rows is NULL): the column j < k
/// with the largest x·c_j + bias_j (ties to the smaller j) into out_index[i], that score into out_score[i]
/// (out_score may be NULL).
void ck_assign_best(const float *x, long dim, const int32_t *rows, long count, const float *packed, const float *bias,
                    long k, int32_t *out_index, float *out_score);
void ck_assign_best_scalar(const float *x, long dim, const int32_t *rows, long count, const float *packed,
                           const float *bias, long k, int32_t *out_index, float *out_score);
/// For each of `count` contiguous rows of x, the `top` columns with the largest x·c_j + bias_j, best first
/// (ties to the smaller j), into out[i·top …]. 1 ≤ top ≤ min(k, 64).
void ck_assign_top(const float *x, long dim, long count, const float *packed, const float *bias, long k, long top,
                   int32_t *out);
void ck_assign_top_scalar(const float *x, long dim, long count, const float *packed, const float *bias, long k, long top,
                          int32_t *out);
/// PLAID residual codes of `count` contiguous vectors: residual x − centroids[codes[t]], each dimension's bucket
/// = the number of the 2^nbits − 1 increasing cutoffs strictly below it, packed LSB-first (dimension
/// j·(8/nbits) + i in bits i·nbits… of byte j) into out (dim·nbits/8 bytes per vector). dim a multiple of 8.
void ck_residual_encode(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                        const float *cutoffs, long nbits, uint8_t *out);
void ck_residual_encode_scalar(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                               const float *cutoffs, long nbits, uint8_t *out);

#endif
