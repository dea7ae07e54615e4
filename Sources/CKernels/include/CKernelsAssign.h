// Nearest-centroid assignment and residual encoding for PLAID index builds (assign.c).
// Centroids are packed once into panels of 16 (for each panel, `dim` rows of 16 floats), so a 4-row × 16-column
// tile of scores stays in eight AVX2 registers and the argmax runs on the registers: no score matrix is written.
#ifndef CKERNELS_ASSIGN_H
#define CKERNELS_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

/// Instruction sets of the assignment kernels (assign.c, assign512.c), in increasing order. Every set gives the
/// same codes as AVX2 for the same inputs (lanes repeat the AVX2 body's order of operations; integer sums are
/// exact), so an index does not depend on the CPU it was built on.
/// CK_ISA_NEON (64-bit ARM) names the NEON body of the search's exact stage (ck_search_isa); no assignment kernel has one.
enum { CK_ISA_SCALAR = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2, CK_ISA_AVX512_VNNI = 3, CK_ISA_NEON = 4 };
/// The best set this CPU runs: AVX2 needs AVX2 + FMA; AVX512 needs AVX-512 F, BW, VL and DQ; VNNI adds AVX512-VNNI.
int ck_assign_isa_supported(void);
/// The set the dispatching entry points use: ck_assign_isa_supported(), lowered by the environment variable
/// COLGREP_ASSIGN_ISA = scalar | avx2 | avx512 | vnni (for comparisons; never raised above the CPU's).
int ck_assign_isa(void);
/// ck_assign_isa_supported(), lowered by the environment variable `variable` when it names a lower set (scalar,
/// avx2, avx512, avx512-vnni or vnni).
int ck_isa_from_environment(const char *variable);
/// The set the exact stage of a search uses (ck_residual_maxsim_sorted; its AVX-512 body needs VNNI): on x86
/// ck_assign_isa_supported(), on 64-bit ARM CK_ISA_NEON; lowered by COLGREP_SEARCH_ISA (for comparisons).
int ck_search_isa(void);
/// Whether ck_residual_maxsim_sorted_with runs set `isa` on this CPU (scalar always; x86 sets up to the CPU's
/// best; NEON on 64-bit ARM).
int ck_search_isa_available(int isa);
/// The name of a set ("scalar", "avx2", "avx512", "avx512-vnni").
const char *ck_assign_isa_name(int isa);

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
/// Rows grouped by their probed groups (a counting sort): `top` holds each of `count` rows' `probes` group indices
/// (each in 0..<groups); on return group g's rows, in increasing order, are rows[starts[g] ..< starts[g + 1]]
/// (`starts`: groups + 1 entries; `fill`: groups entries of scratch; `rows`: count · probes entries).
void ck_assign_sort_by_group(const int32_t *top, long count, long probes, long groups, long *starts, long *fill, int32_t *rows);

// Int16 first pass with a float re-score (coarse-to-fine assignment's fine step): rows quantised to int16 once
// per chunk (per-row scale), centroids with one scale per group, both to ±L with dim·L² < 2³¹; each row
// keeps the best two columns of all its groups by the approximate score, and those two are re-scored in float.

/// int16 values of the packed form of k centroids (k rounded up to 16; two dimensions of a column per 32 bits).
size_t ck_assign_packed16_count(long k, long dim);
/// Packs centroids `members[0..k)` (NULL: rows 0..k) as round(c / scale), clamped to ±L, into
/// ck_assign_packed16_count values (padding columns hold zeros), with scale = max |c| / L over them (1 when all
/// are 0), which it returns; writes each column's bias −½‖c‖² (ck_assign_pack's, to the bit), k rounded up to 16
/// entries, −∞ for padding.
float ck_assign_pack16(const float *centroids, long dim, const int32_t *members, long k, int16_t *packed, float *bias);
/// Each of `count` rows as int16: scale[i] = max |x_i| / L (1 when 0), q = round(x / scale[i]).
void ck_assign_quantize_rows16(const float *x, long dim, long count, int16_t *q, float *scale);
/// For each of `count` rows (row = rows[i], or i when rows is NULL; its int16 coordinates at q + row·dim): the two
/// columns j < k with the largest approximate x·c_j + bias_j, named members[j] (j when members is NULL), merged
/// into the row's best-two list best_index[2·row…], best_score[2·row…] (start it at −1 / −∞; sorted, ties to the
/// smaller name). Call once per group. `packed`, `cscale` and `bias` from ck_assign_pack16. dim even.
void ck_assign_best2_i16(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count, const int16_t *packed,
                         const float *bias, float cscale, long k, const int32_t *members, int32_t *best_index, float *best_score);
void ck_assign_best2_i16_scalar(const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                                const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                                int32_t *best_index, float *best_score);
/// For each of `count` contiguous rows of x: of its two candidates candidates[2i], candidates[2i+1] (−1: none),
/// the centroid with the larger exact x·c + bias[c] (bias as ck_assign_pack16 writes it; ties to the smaller index); −1 when
/// it has none. The AVX2 body sums eight dimensions per step, the scalar one a dimension at a time.
void ck_assign_rescore(const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                       const float *bias, int32_t *out);
void ck_assign_rescore_scalar(const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                              const float *bias, int32_t *out);
/// The bodies the dispatching entry points above would run if the CPU's best set were `isa`: return 1 when they ran,
/// 0 (nothing written) when `isa` is above ck_assign_isa_supported() — for checking each set against the scalar
/// bodies (`colgrep debug cpu-kernels`). Where a set has no body of its own for some arguments (top ≠ 8, an odd
/// dimension), the next lower set's body runs, as in dispatch.
int ck_assign_best_with(int isa, const float *x, long dim, const int32_t *rows, long count, const float *packed,
                        const float *bias, long k, int32_t *out_index, float *out_score);
int ck_assign_top_with(int isa, const float *x, long dim, long count, const float *packed, const float *bias, long k,
                       long top, int32_t *out);
int ck_assign_best2_i16_with(int isa, const int16_t *q, const float *qscale, long dim, const int32_t *rows, long count,
                             const int16_t *packed, const float *bias, float cscale, long k, const int32_t *members,
                             int32_t *best_index, float *best_score);
int ck_residual_encode_with(int isa, const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                            const float *cutoffs, long nbits, uint8_t *out);
int ck_assign_quantize_rows16_with(int isa, const float *x, long dim, long count, int16_t *q, float *scale);
int ck_assign_rescore_with(int isa, const float *x, long dim, long count, const int32_t *candidates, const float *centroids,
                           const float *bias, int32_t *out);
/// PLAID residual codes of `count` contiguous vectors: residual x − centroids[codes[t]], each dimension's bucket
/// = the number of the 2^nbits − 1 increasing cutoffs strictly below it, packed LSB-first (dimension
/// j·(8/nbits) + i in bits i·nbits… of byte j) into out (dim·nbits/8 bytes per vector). dim a multiple of 8.
void ck_residual_encode(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                        const float *cutoffs, long nbits, uint8_t *out);
void ck_residual_encode_scalar(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                               const float *cutoffs, long nbits, uint8_t *out);

#endif
