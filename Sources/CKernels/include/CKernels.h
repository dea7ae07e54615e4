// Hand-vectorised CPU kernels for the Tensor module's CPU backend.
// Each entry point picks an AVX2/FMA body at run time when the CPU has it, else a portable scalar body,
// so one binary runs on any x86-64 (and on arm64, where only the scalar bodies are compiled).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// 1 when the AVX2 + FMA bodies are in use.
int ck_has_avx2(void);
/// Keeps freed large blocks in the heap for reuse (glibc: no mmap for blocks under 1 GiB, no trimming),
/// so activations allocated per operation stop costing page faults. Process-wide; idempotent.
void ck_keep_heap_pages(void);
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

#endif
