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

// MARK: INT8 GEMM (int8 values held as int16 pairs for vpmaddwd: no saturation, exact int32 sums)

/// Bytes of the packed form of an n × k weight matrix (n rounded up to 8, k to 2).
size_t ck_qweight_size(long n, long k);
/// Quantises an n × k weight (PyTorch Linear layout) per output channel to [-127, 127], writing the packed
/// int16 layout to `packed` (ck_qweight_size bytes) and each channel's scale to scales[n].
void ck_qweight_pack(const float *w, long n, long k, int16_t *packed, float *scales);
/// y (rows × n, leading dimension n) = dequantised (q(x) · q(w)ᵀ), x quantised per row to [-127, 127] on the fly.
/// `work` must hold 2 · 48 · (k rounded up to 2) bytes.
void ck_qgemm(const float *x, long rows, long k, const int16_t *packed, const float *scales, long n, float *y, int16_t *work);

#endif
