// INT8 GEMM for the CPU backend's int8 `linear`: activations quantised per row (symmetric, stored as u8 with
// zero point 128), weights per output channel (symmetric s8), int32 sums, fp32 out.
//
// Packed weight layout: blocks of 16 output channels; inside a block, for every group of 4 consecutive k,
// 64 bytes = channel 0's 4 weights, channel 1's 4, … channel 15's 4. One broadcast of 4 activation bytes
// against one 64-byte group is one vpdpbusd (AVX-512 VNNI), or two vpmaddubsw + vpmaddwd pairs (AVX2).
// The u8 zero point is removed after the sum: Σ (a + 128) · w − 128 · Σ w.
#include "CKernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define Q8_X86 1
#else
#define Q8_X86 0
#endif

#define Q8_ROWS 64  // activation rows quantised per tile (64 · k bytes stay in L1/L2)

static long q8_round_up(long v, long m) { return (v + m - 1) / m * m; }

static int q8_level = -1;

int ck_q8_best_level(void) {
#if Q8_X86
    if (q8_level < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
            q8_level = CK_Q8_VNNI;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            q8_level = CK_Q8_AVX2;
        else
            q8_level = CK_Q8_SCALAR;
    }
    return q8_level;
#else
    return CK_Q8_SCALAR;
#endif
}

int ck_q8_weight_range(int level) { return level == CK_Q8_AVX2 ? 63 : 127; }

size_t ck_q8_weight_size(long n, long k) { return (size_t)q8_round_up(n, 16) * (size_t)q8_round_up(k, 4); }

size_t ck_q8_work_size(long k) { return (size_t)Q8_ROWS * (size_t)q8_round_up(k, 4) + Q8_ROWS * sizeof(float); }

void ck_q8_weight_pack(const float *w, long n, long k, int range, int8_t *packed, float *scales, int32_t *offsets) {
    long kp = q8_round_up(k, 4);
    memset(packed, 0, ck_q8_weight_size(n, k));
    for (long c = 0; c < n; c++) {
        float m = 0;
        for (long j = 0; j < k; j++) { float a = fabsf(w[c * k + j]); if (a > m) m = a; }
        float scale = m > 0 ? m / (float)range : 1.0f, inv = m > 0 ? (float)range / m : 0.0f;
        int32_t sum = 0;
        int8_t *block = packed + (c / 16) * 16 * kp;
        for (long j = 0; j < k; j++) {
            long q = lrintf(w[c * k + j] * inv);
            q = q > range ? range : (q < -range ? -range : q);
            block[(j / 4) * 64 + (c % 16) * 4 + j % 4] = (int8_t)q;
            sum += (int32_t)q;
        }
        scales[c] = scale;
        offsets[c] = 128 * sum;
    }
    for (long c = n; c < q8_round_up(n, 16); c++) { scales[c] = 0; offsets[c] = 0; }
}

// MARK: - activation quantisation

/// Quantises `rows` rows of x to u8 (round(x / s) + 128, s = max|x| / 127), k padded to kp with 128 (zero).
static void q8_quantize_scalar(const float *x, long rows, long k, long kp, uint8_t *q, float *scales) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * k;
        uint8_t *qr = q + r * kp;
        float m = 0;
        for (long j = 0; j < k; j++) { float a = fabsf(xr[j]); if (a > m) m = a; }
        float inv = m > 0 ? 127.0f / m : 0.0f;
        scales[r] = m > 0 ? m / 127.0f : 1.0f;
        for (long j = 0; j < k; j++) { long v = lrintf(xr[j] * inv); v = v > 127 ? 127 : (v < -127 ? -127 : v); qr[j] = (uint8_t)(v + 128); }
        for (long j = k; j < kp; j++) qr[j] = 128;
    }
}

// MARK: - scalar GEMM

static void q8_gemm_scalar(const uint8_t *q, const float *sa, long rows, long kp, const int8_t *packed,
                           const float *sw, const int32_t *off, long n, float *y) {
    for (long r = 0; r < rows; r++) {
        const uint8_t *a = q + r * kp;
        for (long c = 0; c < n; c++) {
            const int8_t *block = packed + (c / 16) * 16 * kp + (c % 16) * 4;
            int32_t acc = 0;
            for (long g = 0; g < kp / 4; g++)
                for (int t = 0; t < 4; t++) acc += (int32_t)a[g * 4 + t] * (int32_t)block[g * 64 + t];
            y[r * n + c] = (float)(acc - off[c]) * sw[c] * sa[r];
        }
    }
}

#if Q8_X86
#define Q8_AVX2 __attribute__((target("avx2,fma")))
#define Q8_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

Q8_AVX2 static void q8_quantize_avx2(const float *x, long rows, long k, long kp, uint8_t *q, float *scales) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), flip = _mm256_set1_epi8((char)0x80);
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * k;
        uint8_t *qr = q + r * kp;
        long j = 0;
        __m256 mv = _mm256_setzero_ps();
        for (; j + 8 <= k; j += 8) mv = _mm256_max_ps(mv, _mm256_andnot_ps(sign, _mm256_loadu_ps(xr + j)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float m = _mm_cvtss_f32(h);
        for (; j < k; j++) { float a = fabsf(xr[j]); if (a > m) m = a; }
        float inv = m > 0 ? 127.0f / m : 0.0f;
        scales[r] = m > 0 ? m / 127.0f : 1.0f;
        __m256 iv = _mm256_set1_ps(inv);
        for (j = 0; j + 32 <= k; j += 32) {
            __m256i a0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + j), iv));
            __m256i a1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + j + 8), iv));
            __m256i a2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + j + 16), iv));
            __m256i a3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + j + 24), iv));
            // Saturating packs work per 128-bit lane; the dword permute restores element order.
            __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
            b = _mm256_max_epi8(b, _mm256_set1_epi8(-127));
            _mm256_storeu_si256((__m256i *)(qr + j), _mm256_xor_si256(_mm256_permutevar8x32_epi32(b, order), flip));
        }
        for (; j < k; j++) { long v = lrintf(xr[j] * inv); v = v > 127 ? 127 : (v < -127 ? -127 : v); qr[j] = (uint8_t)(v + 128); }
        for (; j < kp; j++) qr[j] = 128;
    }
}

/// Dequantises 8 int32 sums of one row: (acc − offset) · weight scale · row scale.
#define Q8_DEQ256(acc, c0) _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, \
    _mm256_loadu_si256((const __m256i *)(off + (c0))))), _mm256_loadu_ps(sw + (c0))), _mm256_set1_ps(sa[r + i]))

/// 4 rows × 16 channels per step: 8 accumulators, 2 weight vectors, the broadcast, the ones and 2 temporaries.
Q8_AVX2 static void q8_gemm_avx2(const uint8_t *q, const float *sa, long rows, long kp, const int8_t *packed,
                                 const float *sw, const int32_t *off, long n, float *y) {
    const __m256i ones = _mm256_set1_epi16(1);
    long groups = kp / 4;
    float tile[16];
    for (long b = 0; b * 16 < n; b++) {
        const int8_t *wb = packed + b * 16 * kp;
        long c0 = b * 16, cols = n - c0 < 16 ? n - c0 : 16;
        for (long r = 0; r < rows; r += 4) {
            long live = rows - r < 4 ? rows - r : 4;
            const uint8_t *a[4];
            for (int i = 0; i < 4; i++) a[i] = q + (r + (i < live ? i : 0)) * kp;
            __m256i acc[4][2];
            for (int i = 0; i < 4; i++) { acc[i][0] = _mm256_setzero_si256(); acc[i][1] = _mm256_setzero_si256(); }
            for (long g = 0; g < groups; g++) {
                __m256i w0 = _mm256_load_si256((const __m256i *)(wb + g * 64));
                __m256i w1 = _mm256_load_si256((const __m256i *)(wb + g * 64 + 32));
                for (int i = 0; i < 4; i++) {
                    int32_t bytes;
                    memcpy(&bytes, a[i] + g * 4, 4);
                    __m256i v = _mm256_set1_epi32(bytes);
                    acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(v, w0), ones));
                    acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(v, w1), ones));
                }
            }
            for (long i = 0; i < live; i++) {
                float *out = y + (r + i) * n + c0;
                __m256 o0 = Q8_DEQ256(acc[i][0], c0), o1 = Q8_DEQ256(acc[i][1], c0 + 8);
                if (cols == 16) { _mm256_storeu_ps(out, o0); _mm256_storeu_ps(out + 8, o1); }
                else { _mm256_storeu_ps(tile, o0); _mm256_storeu_ps(tile + 8, o1); memcpy(out, tile, (size_t)cols * sizeof(float)); }
            }
        }
    }
}

/// 8 rows × 32 channels (two blocks) per step: 16 zmm accumulators, one vpdpbusd per 64 multiply-adds.
Q8_VNNI static void q8_gemm_vnni(const uint8_t *q, const float *sa, long rows, long kp, const int8_t *packed,
                                 const float *sw, const int32_t *off, long n, float *y) {
    long groups = kp / 4, blocks = (n + 15) / 16;
    for (long b = 0; b < blocks; b += 2) {
        int two = b + 1 < blocks;
        const int8_t *w0p = packed + b * 16 * kp, *w1p = packed + (b + two) * 16 * kp;
        long c0 = b * 16;
        long cols0 = n - c0 < 16 ? n - c0 : 16, cols1 = two ? (n - c0 - 16 < 16 ? n - c0 - 16 : 16) : 0;
        __mmask16 m0 = (__mmask16)((1u << cols0) - 1), m1 = (__mmask16)((1u << cols1) - 1);
        for (long r = 0; r < rows; r += 8) {
            long live = rows - r < 8 ? rows - r : 8;
            const uint8_t *a[8];
            for (int i = 0; i < 8; i++) a[i] = q + (r + (i < live ? i : 0)) * kp;
            __m512i acc[8][2];
            for (int i = 0; i < 8; i++) { acc[i][0] = _mm512_setzero_si512(); acc[i][1] = _mm512_setzero_si512(); }
            for (long g = 0; g < groups; g++) {
                __m512i w0 = _mm512_load_si512((const void *)(w0p + g * 64)), w1 = _mm512_load_si512((const void *)(w1p + g * 64));
                for (int i = 0; i < 8; i++) {
                    int32_t bytes;
                    memcpy(&bytes, a[i] + g * 4, 4);
                    __m512i v = _mm512_set1_epi32(bytes);
                    acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], v, w0);
                    acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], v, w1);
                }
            }
            for (long i = 0; i < live; i++) {
                float *out = y + (r + i) * n + c0;
                __m512 s = _mm512_set1_ps(sa[r + i]);
                __m512 o0 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], _mm512_loadu_si512(off + c0))),
                                                        _mm512_loadu_ps(sw + c0)), s);
                _mm512_mask_storeu_ps(out, m0, o0);
                if (two) {
                    __m512 o1 = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], _mm512_loadu_si512(off + c0 + 16))),
                                                            _mm512_loadu_ps(sw + c0 + 16)), s);
                    _mm512_mask_storeu_ps(out + 16, m1, o1);
                }
            }
        }
    }
}
#endif

// MARK: - entry point

void ck_q8_gemm(int level, const float *x, long rows, long k, const int8_t *packed, const float *scales,
                const int32_t *offsets, long n, float *y, void *work) {
    int best = ck_q8_best_level();
    if (level > best) level = best;
    long kp = q8_round_up(k, 4);
    uint8_t *q = (uint8_t *)work;
    float *sa = (float *)(q + Q8_ROWS * kp);
    for (long r0 = 0; r0 < rows; r0 += Q8_ROWS) {
        long m = rows - r0 < Q8_ROWS ? rows - r0 : Q8_ROWS;
#if Q8_X86
        if (level >= CK_Q8_AVX2) {
            q8_quantize_avx2(x + r0 * k, m, k, kp, q, sa);
            if (level == CK_Q8_VNNI) q8_gemm_vnni(q, sa, m, kp, packed, scales, offsets, n, y + r0 * n);
            else q8_gemm_avx2(q, sa, m, kp, packed, scales, offsets, n, y + r0 * n);
            continue;
        }
#endif
        q8_quantize_scalar(x + r0 * k, m, k, kp, q, sa);
        q8_gemm_scalar(q, sa, m, kp, packed, scales, offsets, n, y + r0 * n);
    }
}
