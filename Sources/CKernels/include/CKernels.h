// Hand-vectorised CPU kernels for the Tensor module's CPU backend.
// Each entry point picks an AVX2/FMA body at run time when the CPU has it, else a portable scalar body,
// so one binary runs on any x86-64 (and on arm64, where only the scalar bodies are compiled).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "CKernelsAssign.h"

/// Token pooling's Ward merges (pool.c): the nearest-neighbour chain over an m × m matrix of squared
/// distances `d` (row-major; the smaller of d[i,j] and d[j,i] is used, non-finite values count as 1e30),
/// stopped after `merges` merges. parent[i] (m entries) receives a union-find parent over the rows, each
/// cluster living in the slot of its member earliest in the reference's order. 0, or -1 when out of memory.
int ck_ward_merges(const float *d, long m, long merges, int64_t *parent);

/// The swaps of a partial Fisher–Yates shuffle (shuffle.c): for i in 0..<n, order[i] and order[draws[i]] exchanged, in
/// order (draws[i] >= i), prefetching the slots of later draws. The first n entries of `order` are then the sample.
void ck_partial_shuffle_u32(uint32_t *order, const uint32_t *draws, size_t n);

/// `rows` fp32 rows of `dim` values to bf16 rows of `padded` values (bf16_rows.c): rounded to nearest even as the GPU
/// kernels' float_to_bf16 rounds, NaN kept a quiet NaN, columns dim..<padded zero.
void ck_rows_to_bf16(const float *src, size_t rows, size_t dim, size_t padded, uint16_t *dst);

/// Row `rows[i]` of `src` (rows of `dim` floats) into row i of `dst`, for i in 0..<n (gather_rows.c), prefetching the
/// rows of later indices.
void ck_gather_rows_f32(const float *src, size_t dim, const int64_t *rows, size_t n, float *dst);

/// CPUs in the calling thread's affinity mask (`taskset`, cpusets); -1 where unknown.
int ck_affinity_cpu_count(void);
// glibc's M_TOP_PAD, M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (bytes); 1 when every one was accepted, 0 where
// malloc is not glibc's.
int ck_malloc_settings(int top_pad, int trim_threshold, int mmap_threshold);

/// 1 when the AVX2 + FMA bodies are in use.
int ck_has_avx2(void);
/// 1 when the CPU has AVX-512F (used only to pick OpenBLAS's kernel family).
int ck_has_avx512(void);

/// y[r] = (x[r] - mean) / sqrt(var + eps) * w (+ b), rows × cols, row-major, b may be NULL.
void ck_layer_norm(const float *x, float *y, long rows, long cols, const float *w, const float *b, float eps);
/// In place exact GELU, x · Φ(x), with the error function (PyTorch's default).
void ck_gelu(float *x, long n);
/// In place tanh-approximated GELU.
void ck_gelu_tanh(float *x, long n);
/// y[r, j] = gelu(x[r, j]) * x[r, half + j]; x is rows × 2·half, y is rows × half.
void ck_geglu(const float *x, float *y, long rows, long half);
/// y = a + b, n elements (y may alias a or b).
void ck_add(const float *a, const float *b, float *y, long n);
/// y[r] = x[r] / max(‖x[r]‖₂, 1e-12) (rows of zeros stay zero).
void ck_l2_normalize(const float *x, float *y, long rows, long cols);
/// Row-wise softmax of s (rows × cols, leading dimension ld) restricted to columns [lo[r], hi[r]):
/// entries outside the range become 0. `scale` multiplies the logits first.
void ck_softmax_band(float *s, long rows, long cols, long ld, const int32_t *lo, const int32_t *hi, float scale);
/// Copies `rows` head vectors of width d from src (leading dimension lds) to dst (contiguous, rows × d),
/// rotating them with NeoX half-rotation when cos/sin (rows × d/2 each, contiguous) are non-NULL.
void ck_rope_copy(const float *src, long lds, float *dst, long rows, long d, const float *cos_t, const float *sin_t);

// MARK: Small-batch SGEMM (sgemm_dot.c)

/// y[i · ldy + j] = Σ_t x[i · k + t] · w[j · k + t] for rows i < m of x (m × k, row-major) and weight rows
/// n0 ≤ j < n1 of w (n × k, PyTorch Linear layout): a query's products, the weight read in place (no packing
/// per call). Rounding is fixed (sgemm_dot.c): eight lane sums of fused multiply-adds over k ≡ lane (mod 8),
/// added in a fixed tree, then the last k mod 8 terms — so both bodies agree bit for bit, and an output does
/// not depend on how callers split rows or columns over threads.
void ck_sgemm_dot(const float *x, long m, long k, const float *w, long n0, long n1, float *y, long ldy);
void ck_sgemm_dot_scalar(const float *x, long m, long k, const float *w, long n0, long n1, float *y, long ldy);

// MARK: INT8 GEMM (u8 activations × s8 weights, int32 sums; see q8gemm.c)

/// Kernel levels of ck_q8_gemm: portable C, AVX2 (vpmaddubsw + vpmaddwd), AVX-512 VNNI (vpdpbusd).
enum { CK_Q8_SCALAR = 0, CK_Q8_AVX2 = 1, CK_Q8_VNNI = 2 };
/// The fastest level this CPU runs.
int ck_q8_best_level(void);
/// Largest |quantised weight| a level allows: 63 for AVX2, whose vpmaddubsw adds two u8·s8 products in a
/// saturating int16 (2 · 255 · 63 < 32767), 127 otherwise.
int ck_q8_weight_range(int level);
/// Bytes of the packed form of an n × k weight (n rounded up to 16, k to 4).
size_t ck_q8_weight_size(long n, long k);
/// Quantises an n × k weight (PyTorch Linear layout) per output channel to [-range, range]; writes the packed
/// layout (ck_q8_weight_size bytes), each channel's scale, and each channel's offset 128 · Σ q (the zero point
/// of the u8 activations, subtracted from the int32 sums). scales and offsets hold n rounded up to 16 entries
/// (the padding is zeroed: the vector kernels read whole blocks).
void ck_q8_weight_pack(const float *w, long n, long k, int range, int8_t *packed, float *scales, int32_t *offsets);
/// Bytes of work memory ck_q8_gemm needs for inner size k.
size_t ck_q8_work_size(long k);
/// y (rows × n, row-major) ≈ x · wᵀ: rows of x (rows × k) quantised symmetrically per row to [-127, 127] and
/// stored as u8 (+128), multiplied with the packed weights at `level` (clamped to ck_q8_best_level), the int32
/// sums dequantised. `work`: ck_q8_work_size(k) bytes, 64-byte aligned. Every level gives bit-identical output
/// for the same packed weights.
void ck_q8_gemm(int level, const float *x, long rows, long k, const int8_t *packed, const float *scales,
                const int32_t *offsets, long n, float *y, void *work);

// MARK: Late-interaction scoring (PLAID search, maxsim.c)

/// The query × centroid table (k rows of `stride` floats, `nq` used) quantised to u8 rows of `width` bytes
/// for ck_code_maxsum_u8: round(max(score, 0) · 255 / highest score), padding columns 0. Negative scores
/// become 0: a document's best token score for a query token is positive in practice, and the range
/// spent on negatives would cost resolution where ranking happens.
void ck_quantize_scores_u8(const float *scores, long k, long nq, long stride, uint8_t *out, long width);
/// Rows first … first + count − 1 of ck_quantize_scores_u8's table, given its highest score `high` (the
/// largest of 0 and every score of the k × nq table): the same bytes, so that the rows can be quantised in
/// pieces on several threads once the maximum is known.
void ck_quantize_scores_u8_rows(const float *scores, long first, long count, long nq, long stride, float high, uint8_t *out,
                                long width);
/// out[c · stride + j] = Σ_d centroids[c · dim + d] · query_t[d · stride + j] for c < rows, j < stride: the
/// query × centroid table of search, with the query transposed (dim × stride, stride a multiple of 8).
/// Sums run over d in order, one fused multiply-add each (fmaf / vfmadd), so both bodies agree bit for bit.
/// A single-threaded kernel: search splits the centroids over its own threads (no BLAS thread pool to
/// wake for a product this small).
void ck_centroid_scores(const float *centroids, long rows, long dim, const float *query_t, long stride, float *out);
void ck_centroid_scores_scalar(const float *centroids, long rows, long dim, const float *query_t, long stride, float *out);
/// Σ_q max_t table[codes[t] · width + q]: a document's centroid-only score from a u8-quantised
/// query × centroid table, one `width`-byte row per centroid (width a multiple of 32 for the SIMD body;
/// columns from `used` to `width` must be 0). count ≥ 1.
uint32_t ck_code_maxsum_u8(const uint16_t *codes, long count, const uint8_t *table, long width, long used);
uint32_t ck_code_maxsum_u8_scalar(const uint16_t *codes, long count, const uint8_t *table, long width, long used);
/// ck_code_maxsum_u8 of `docs` documents (codes_of_doc[i], counts[i] ≥ 1) into out[i], fetching each
/// document's codes a few documents ahead: the documents sit at random places in a large index, and
/// waiting for each one's codes from memory costs more than scoring them (2.3× on 8,192 of 100k).
void ck_code_maxsum_u8_batch(const uint16_t *const *codes_of_doc, const long *counts, long docs, const uint8_t *table,
                             long width, long used, float *out);

// MARK: Centroid pruning for the codes stage (prune.c)

/// The u8 table of ck_quantize_scores_u8 for the live centroids only: row 0 all zeros (where dead
/// centroids are sent), row i + 1 the quantised scores of centroid live[i]; the scale comes from the
/// highest live score. `out` holds (count + 1) · width bytes.
void ck_quantize_live_scores_u8(const float *scores, const int32_t *live, long count, long nq, long stride, uint8_t *out,
                                long width);
/// ck_code_maxsum_u8 with each code's row looked up through `remap` (row = remap[code], 0 for a pruned
/// centroid): Σ_q max_t table[remap[codes[t]] · width + q]. count ≥ 1.
uint32_t ck_code_maxsum_u8_remap(const uint16_t *codes, long count, const uint16_t *remap, const uint8_t *table, long width,
                                 long used);
uint32_t ck_code_maxsum_u8_remap_scalar(const uint16_t *codes, long count, const uint16_t *remap, const uint8_t *table,
                                        long width, long used);
/// ck_code_maxsum_u8_remap of `docs` documents into out[i], their codes fetched ahead (as ck_code_maxsum_u8_batch).
void ck_code_maxsum_u8_remap_batch(const uint16_t *const *codes_of_doc, const long *counts, long docs, const uint16_t *remap,
                                   const uint8_t *table, long width, long used, float *out);

/// An int8-quantised query prepared for residual MaxSim. A document token is centroid `c` (unit) plus
/// residual r_d = a + b · u_d with level u_d = lut[bucket_d] ∈ [0, 63] (1-bit: lut {0, 1}); the query token q
/// is s_q · qi (qi int8). Its score is (q·c + a·Σq + b·s_q·Σ_d qi_d·u_d) / ‖c + r‖, i.e. MaxSim over the
/// normalised reconstructions, with the residual part computed in integers.
typedef struct {
    long dim;             ///< dimensions
    long dim_padded;      ///< row stride of `q` (dim rounded up to 32), zero-padded
    long nq;              ///< query tokens summed
    long nq_padded;       ///< nq rounded up to 8: rows of `q`, entries of scale / offset, row stride of ctable
    long nbits;           ///< 1, 2 or 4 bits per residual dimension (packed as ResidualCodec packs them)
    const int8_t *q;      ///< nq_padded × dim_padded
    const float *scale;   ///< per query token: b · s_q (0 in padding rows)
    const float *offset;  ///< per query token: a · Σ_d q_d (0 in padding rows)
    const uint8_t *lut;   ///< 2^nbits levels (16 bytes readable)
    float a, b;
    const float *centroids;  ///< K × dim (not read by ck_residual_maxsim_sorted, which uses ck_exact_centroids)
    const float *ctable;     ///< K × nq_padded: q · c
} ck_residual_query;

/// Largest |value| of an int16 centroid row of ck_exact_centroids (15 bits: sums of dim_padded products
/// with levels ≤ 63 stay in int32 for dim ≤ 2,048).
#define CK_EXACT_CENTROID_RANGE 16383

/// Centroids prepared once per codec for the exact stage: each row scaled to int16 (zero-padded to
/// dim_padded), its scale, and its float sum Σ_d c_d. The norm of a document token ‖c + r‖ needs
/// Σ_d c_d·u_d; from int16 rows it is an integer multiply-add (relative error ~1e-4 of that small
/// term, against float rows: 4× less memory per token and no float conversions).
typedef struct {
    const int16_t *c16;  ///< K × dim_padded
    const float *scale;  ///< K: c ≈ scale · c16
    const float *sum;    ///< K: Σ_d c_d (8 lanes d mod 8, summed in a fixed order)
} ck_exact_centroids;

/// Fills c16 (k × dim_padded), scale (k) and sum (k) from k × dim float centroids (dim ≤ 2,048).
void ck_exact_centroids_build(const float *centroids, long k, long dim, long dim_padded, int16_t *c16, float *scale,
                              float *sum);
void ck_exact_centroids_build_scalar(const float *centroids, long k, long dim, long dim_padded, int16_t *c16, float *scale,
                                     float *sum);

/// 1/‖c + r‖ of `count` document tokens (token i: centroid codes[i], packed residual at packed + i ·
/// dim·nbits/8) into out[i], from the integer sums Σu, Σu², Σ c16·u (see ck_exact_centroids) — the very
/// value ck_residual_maxsim_sorted computes for a token when it is given no `inverses`, bit for bit
/// (the encoder stores it per token, so the exact stage reads it instead). Only dim, dim_padded, nbits,
/// lut, a and b of `query` are read; nbits 1, 2 or 4. The SIMD body gives the scalar body's bits.
void ck_residual_inverse_norms(const ck_residual_query *query, const ck_exact_centroids *centroids, long count,
                               const uint16_t *codes, const uint8_t *packed, float *out);
void ck_residual_inverse_norms_scalar(const ck_residual_query *query, const ck_exact_centroids *centroids, long count,
                                      const uint16_t *codes, const uint8_t *packed, float *out);

/// The exact score Σ_q max_t score(t, q) of `docs` documents into out[doc], from their `count` tokens
/// in any order (callers sort them by centroid with ck_gather_by_centroid, so table rows and residuals
/// are read in memory order): token i has centroid codes[i], belongs to document doc_of_token[i] and
/// has its packed residual (dim·nbits/8 bytes) at packed + i · dim·nbits/8. Per token, 1/‖c + r‖ is
/// inverses[i] (stored at encode time by ck_residual_inverse_norms; `centroids` is then not read), or,
/// with inverses NULL, computed here from the integer sums Σu, Σu², Σ c16·u (see ck_exact_centroids):
/// the same bits either way. Q->centroids is not read. best: docs × nq_padded work space. The SIMD body
/// gives the scalar body's bits. With nbits 8, `query` is the base of a ck_residual8_query and the
/// 8-bit kernel scores the tokens (`centroids` is not read; `inverses` as ck_residual8_maxsim_batch takes them).
void ck_residual_maxsim_sorted(const ck_residual_query *query, const ck_exact_centroids *centroids, long docs, long count,
                               const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                               const float *inverses, float *best, float *out);
/// ck_residual_maxsim_sorted with the body of instruction set `isa` (CKernelsAssign.h's CK_ISA_…; AVX512-VNNI
/// for the token loop, the sets between run the AVX2 body). Returns 0, computing nothing, when the CPU lacks it.
int ck_residual_maxsim_sorted_with(int isa, const ck_residual_query *query, const ck_exact_centroids *centroids, long docs,
                                   long count, const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                                   const float *inverses, float *best, float *out);
void ck_residual_maxsim_sorted_scalar(const ck_residual_query *query, const ck_exact_centroids *centroids, long docs,
                                      long count, const uint16_t *codes, const uint32_t *doc_of_token, const uint8_t *packed,
                                      const float *inverses, float *best, float *out);
/// The tokens of `docs` documents (document i: counts[i] tokens, centroids codes_of_doc[i], packed
/// residuals of `bytes` each at packed_of_doc[i], and, when norms_of_doc is not NULL, one float each at
/// norms_of_doc[i]) in centroid order, stable within a centroid: their centroids into codes, their
/// documents into doc_of_token, their residuals, copied, into packed (Σ counts entries each; packed
/// Σ counts · bytes) and their floats into norms (with norms_of_doc). starts: k + 1 work entries.
/// Copying puts the residuals the exact stage reads in order into cache-resident memory; read in place
/// they sit at random in a file of hundreds of MB and each token would wait for memory.
void ck_gather_by_centroid(long k, long docs, const uint16_t *const *codes_of_doc, const uint8_t *const *packed_of_doc,
                           const float *const *norms_of_doc, const long *counts, long bytes, uint32_t *starts, uint16_t *codes,
                           uint32_t *doc_of_token, uint8_t *packed, float *norms);
/// ck_gather_by_centroid without the copy: token slot's residual stays where it is and its address goes
/// to packed_of_token[slot] (Σ counts entries). For 8-bit residuals (dim bytes a token, 6 cache lines at
/// 384-d), whose kernel takes a pointer per token and prefetches ahead: the copy was a write and a
/// re-read of every finalist's residuals (~20 MB a query at 2,048 finalists) for no locality gain.
void ck_order_by_centroid(long k, long docs, const uint16_t *const *codes_of_doc, const uint8_t *const *packed_of_doc,
                          const float *const *norms_of_doc, const long *counts, long bytes, uint32_t *starts, uint16_t *codes,
                          uint32_t *doc_of_token, const uint8_t **packed_of_token, float *norms);
/// One row of the IVF stage's table: its score and the mark of the last query token that visited it (0:
/// not reached). Side by side, so that a visit touches one cache line: with separate score and mark
/// arrays it touched two (a harness over 32 × 8 lists of 343 rows in a 25k-row piece: 3.5–4.7 → 2.6–3.4
/// ns per entry).
typedef struct {
    float score;
    uint32_t mark;
} ck_ivf_cell;

/// The IVF stage's inner loop: for each of `count` rows (local rows of one IVF list, offset by `base`),
/// the first visit with this `mark` adds `value` to cells[base + row].score and sets the mark. (In C: the
/// Swift loop ran at about twice the time per entry.)
void ck_ivf_accumulate(const uint32_t *rows, long count, long base, float value, uint32_t mark, ck_ivf_cell *cells);
/// The rows reached (mark non-zero) and allowed (bit set in `allowed`) as bitmap words: keep[w] for the
/// words from_word..<to_word (rows at or past `total` clear); returns how many bits were set.
long ck_ivf_keep_words(const ck_ivf_cell *cells, const uint64_t *allowed, long total, long from_word, long to_word, uint64_t *keep);
/// Centroid probing: over the centroid-major table (k rows of `stride` ≥ nq floats, query tokens in
/// columns), each query token's best `probe` centroids, decreasing, into top_scores / top_ids (nq × probe;
/// -inf / -1 where fewer centroids exist), each centroid's best score over the tokens into best (k;
/// -inf for a centroid not `eligible`, a nullable k-byte mask), and each token's list floor into floors
/// (nq). A centroid enters a list only when it beats the list's last score (ties keep the earlier).
/// The AVX2 body needs stride ≥ nq rounded up to 8 and gives the scalar body's exact output.
void ck_probe_centroids(const float *table, long k, long nq, long stride, long probe, const uint8_t *eligible,
                        float *top_scores, int32_t *top_ids, float *best, float *floors);
void ck_probe_centroids_scalar(const float *table, long k, long nq, long stride, long probe, const uint8_t *eligible,
                               float *top_scores, int32_t *top_ids, float *best, float *floors);
/// The stage-2 candidates: of the `n` rows whose bit is set in `keep` (ck_ivf_keep_words over all
/// (total + 63) / 64 words: the reached, allowed rows), the `k` with the largest score in `cells`
/// (among equal scores at the cut, the lowest rows), written to `out` in increasing row order; returns
/// how many (min(k, n)). When k is a small part of the n rows, a threshold estimated from a sample of
/// 2,048 rows lets one pass keep only the few thousand rows at or above it, and the exact selection
/// runs over those (falling back to all rows when the sample misjudged); otherwise one branch-free pass
/// compacts the kept rows and their scores into `rows` (total entries) and `values` (2 · total: the
/// second half holds the boundary bin). Either way a 2048-bin histogram finds the bin of the k-th best,
/// a quickselect over that bin's values the threshold, a last pass over the compacted rows writes the
/// result: no sort, no (row, score) pairs.
long ck_select_reached_rows(const ck_ivf_cell *cells, const uint64_t *keep, long n, long total, long k, int32_t *out,
                            int32_t *rows, float *values);

// MARK: 8-bit residuals (PLAID, residual8.c)

/// Residual codes of `count` contiguous vectors with 8-bit residuals: one byte per dimension, the number
/// of the 255 sorted `cutoffs` strictly below x − centroids[codes[t]] (as ck_residual_encode buckets;
/// binary search instead of 255 compares). out: count · dim bytes.
void ck_residual8_encode(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                         const float *cutoffs, uint8_t *out);
void ck_residual8_encode_scalar(const float *x, long dim, long count, const float *centroids, const uint16_t *codes,
                                const float *cutoffs, uint8_t *out);

/// A query prepared for MaxSim against 8-bit residuals. `base` is an ordinary ck_residual_query with
/// nbits = 8 (its q, lut and dim_padded are not read), so a pointer to this struct passes through code
/// that hands a ck_residual_query to ck_residual_maxsim_sorted, which sends nbits 8 here. A document token
/// is normalize(c + r) with r_d = a + b · levels[byte_d]; the query token is s_q · q16 (int16), and
/// base.scale[q] = b · s_q, base.offset[q] = a · Σ_d q_d. The residual part of a score is the exact int32
/// Σ_d q16_d · level_d, so callers must keep max|q16| · max|level| · dim and max|level|² · dim below 2^31.
typedef struct {
    ck_residual_query base;   ///< nbits 8; dim, nq, nq_padded, scale, offset, a, b, centroids, ctable as there
    const int16_t *q16;       ///< nq_padded × q_stride int16 query (padding rows zero)
    long q_stride;            ///< row stride of q16, ≥ dim
    const int16_t *levels;    ///< 256 levels, one per bucket
} ck_residual8_query;

/// Σ_q max_t score(t, q) over one document's `tokens` tokens (codes, and packed residuals of dim bytes
/// each). Work space: best[nq_padded].
float ck_residual8_maxsim(const ck_residual8_query *query, const uint16_t *codes, const uint8_t *packed, long tokens,
                          float *best);
float ck_residual8_maxsim_scalar(const ck_residual8_query *query, const uint16_t *codes, const uint8_t *packed, long tokens,
                                 float *best);
/// ck_residual8_maxsim of `docs` documents at once, their `count` tokens in any order (as
/// ck_residual_maxsim_sorted takes them, each residual through its own pointer). With `inverses` (token
/// i's 1/‖c + r‖, from ck_residual8_inverse_norms) the norms are read instead of derived (the same bits,
/// and the SIMD body then reads each token's levels in pairs from a table, never decoding them);
/// NULL: derived per token. best: docs × nq_padded work space; out[doc] each document's score.
void ck_residual8_maxsim_batch(const ck_residual8_query *query, long docs, long count, const uint16_t *codes,
                               const uint32_t *doc_of_token, const uint8_t *const *packed_of_token, const float *inverses,
                               float *best, float *out);
void ck_residual8_maxsim_batch_scalar(const ck_residual8_query *query, long docs, long count, const uint16_t *codes,
                                      const uint32_t *doc_of_token, const uint8_t *const *packed_of_token, const float *inverses,
                                      float *best, float *out);
/// out[t] = 1/‖c + r‖ of token t (centroid codes[t], residual bytes at packed + t · dim): exactly what the
/// 8-bit kernels derive when not given norms, stored at encode time. Reads base.dim, base.a, base.b,
/// base.centroids and levels only.
void ck_residual8_inverse_norms(const ck_residual8_query *query, long count, const uint16_t *codes, const uint8_t *packed, float *out);
void ck_residual8_inverse_norms_scalar(const ck_residual8_query *query, long count, const uint16_t *codes, const uint8_t *packed,
                                       float *out);
#endif
