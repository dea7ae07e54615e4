// CPU element-wise kernels. Every function has a portable scalar body and, on x86-64, an AVX2/FMA
// body compiled with a target attribute and chosen at run time, so the binary needs no -mavx2.
#include "CKernels.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CK_X86 1
#else
#define CK_X86 0
#endif

// MARK: - dispatch

static int ck_avx2_state = -1;

int ck_has_avx2(void) {
#if CK_X86
    if (ck_avx2_state < 0) {
        __builtin_cpu_init();
        ck_avx2_state = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return ck_avx2_state;
#else
    return 0;
#endif
}

int ck_has_avx512(void) {
#if CK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

// MARK: - scalar bodies

static float gelu_scalar(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }

static float gelu_tanh_scalar(float x) {
    float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
}

static void layer_norm_scalar(const float *x, float *y, long rows, long cols, const float *w, const float *b, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        double sum = 0;
        for (long j = 0; j < cols; j++) sum += xr[j];
        float mean = (float)(sum / cols);
        double var = 0;
        for (long j = 0; j < cols; j++) { float d = xr[j] - mean; var += (double)d * d; }
        float inv = 1.0f / sqrtf((float)(var / cols) + eps);
        for (long j = 0; j < cols; j++) yr[j] = (xr[j] - mean) * inv * w[j] + (b ? b[j] : 0.0f);
    }
}

static void softmax_band_scalar(float *s, long rows, long cols, long ld, const int32_t *lo, const int32_t *hi, float scale) {
    for (long r = 0; r < rows; r++) {
        float *sr = s + r * ld;
        long a = lo[r], e = hi[r];
        float m = -INFINITY;
        for (long j = a; j < e; j++) { sr[j] *= scale; if (sr[j] > m) m = sr[j]; }
        float sum = 0;
        for (long j = a; j < e; j++) { sr[j] = expf(sr[j] - m); sum += sr[j]; }
        float inv = sum > 0 ? 1.0f / sum : 0.0f;
        for (long j = 0; j < a; j++) sr[j] = 0;
        for (long j = a; j < e; j++) sr[j] *= inv;
        for (long j = e; j < cols; j++) sr[j] = 0;
    }
}

// MARK: - AVX2 bodies

#if CK_X86
#define AVX2 __attribute__((target("avx2,fma")))

// Cephes-style expf: range reduction by ln 2, degree-5 polynomial, 2^n through the exponent bits.
AVX2 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447504019f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    __m256 x2 = _mm256_mul_ps(x, x);
    y = _mm256_fmadd_ps(y, x2, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Exact GELU through erfc (Numerical Recipes' Chebyshev fit, fractional error < 1.2e-7), which keeps
// full relative precision for large negative inputs where 1 + erf would cancel.
AVX2 static inline __m256 gelu256(__m256 x) {
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(-0.70710678118654752f));
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(a, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 r = _mm256_mul_ps(t, exp256(_mm256_fnmadd_ps(a, a, p)));
    __m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 erfc = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_set1_ps(2.0f), r), neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), erfc);
}

AVX2 static inline __m256 gelu_tanh256(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
    // tanh(y) = 1 − 2 / (exp(2y) + 1)
    __m256 e = exp256(_mm256_mul_ps(inner, _mm256_set1_ps(2.0f)));
    __m256 th = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), th));
}

AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    return _mm_cvtss_f32(lo);
}

AVX2 static inline float hmax256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

AVX2 static void gelu_avx2(float *x, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu256(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_scalar(x[i]);
}

AVX2 static void gelu_tanh_avx2(float *x, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_tanh256(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_tanh_scalar(x[i]);
}

AVX2 static void geglu_avx2(const float *x, float *y, long rows, long half) {
    for (long r = 0; r < rows; r++) {
        const float *a = x + r * 2 * half, *g = a + half;
        float *yr = y + r * half;
        long j = 0;
        for (; j + 8 <= half; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_mul_ps(gelu256(_mm256_loadu_ps(a + j)), _mm256_loadu_ps(g + j)));
        for (; j < half; j++) yr[j] = gelu_scalar(a[j]) * g[j];
    }
}

AVX2 static void add_avx2(const float *a, const float *b, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

AVX2 static void layer_norm_avx2(const float *x, float *y, long rows, long cols, const float *w, const float *b, float eps) {
    if (cols % 8 != 0) { layer_norm_scalar(x, y, rows, cols, w, b, eps); return; }
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        __m256 s = _mm256_setzero_ps();
        for (long j = 0; j < cols; j += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(xr + j));
        float mean = hsum256(s) / (float)cols;
        __m256 m = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
        for (long j = 0; j < cols; j += 8) { __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + j), m); v = _mm256_fmadd_ps(d, d, v); }
        __m256 inv = _mm256_set1_ps(1.0f / sqrtf(hsum256(v) / (float)cols + eps));
        for (long j = 0; j < cols; j += 8) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), m), inv);
            __m256 o = _mm256_mul_ps(d, _mm256_loadu_ps(w + j));
            if (b) o = _mm256_add_ps(o, _mm256_loadu_ps(b + j));
            _mm256_storeu_ps(yr + j, o);
        }
    }
}

AVX2 static void softmax_band_avx2(float *s, long rows, long cols, long ld, const int32_t *lo, const int32_t *hi, float scale) {
    __m256 sc = _mm256_set1_ps(scale);
    for (long r = 0; r < rows; r++) {
        float *sr = s + r * ld;
        long a = lo[r], e = hi[r], j;
        __m256 mv = _mm256_set1_ps(-INFINITY);
        float m = -INFINITY;
        for (j = a; j + 8 <= e; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(sr + j));
        m = hmax256(mv);
        for (; j < e; j++) if (sr[j] > m) m = sr[j];
        m *= scale;  // scale > 0, so max(scale · x) = scale · max(x)
        __m256 mm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
        for (j = a; j + 8 <= e; j += 8) {
            __m256 v = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(sr + j), sc, mm));
            _mm256_storeu_ps(sr + j, v);
            sum = _mm256_add_ps(sum, v);
        }
        float total = hsum256(sum);
        for (; j < e; j++) { sr[j] = expf(sr[j] * scale - m); total += sr[j]; }
        float inv = total > 0 ? 1.0f / total : 0.0f;
        __m256 iv = _mm256_set1_ps(inv);
        for (j = 0; j < a; j++) sr[j] = 0;
        for (j = a; j + 8 <= e; j += 8) _mm256_storeu_ps(sr + j, _mm256_mul_ps(_mm256_loadu_ps(sr + j), iv));
        for (; j < e; j++) sr[j] *= inv;
        for (j = e; j < cols; j++) sr[j] = 0;
    }
}
#endif

// MARK: - public entry points

void ck_layer_norm(const float *x, float *y, long rows, long cols, const float *w, const float *b, float eps) {
#if CK_X86
    if (ck_has_avx2()) { layer_norm_avx2(x, y, rows, cols, w, b, eps); return; }
#endif
    layer_norm_scalar(x, y, rows, cols, w, b, eps);
}

void ck_gelu(float *x, long n) {
#if CK_X86
    if (ck_has_avx2()) { gelu_avx2(x, n); return; }
#endif
    for (long i = 0; i < n; i++) x[i] = gelu_scalar(x[i]);
}

void ck_gelu_tanh(float *x, long n) {
#if CK_X86
    if (ck_has_avx2()) { gelu_tanh_avx2(x, n); return; }
#endif
    for (long i = 0; i < n; i++) x[i] = gelu_tanh_scalar(x[i]);
}

void ck_geglu(const float *x, float *y, long rows, long half) {
#if CK_X86
    if (ck_has_avx2()) { geglu_avx2(x, y, rows, half); return; }
#endif
    for (long r = 0; r < rows; r++)
        for (long j = 0; j < half; j++) y[r * half + j] = gelu_scalar(x[r * 2 * half + j]) * x[r * 2 * half + half + j];
}

void ck_add(const float *a, const float *b, float *y, long n) {
#if CK_X86
    if (ck_has_avx2()) { add_avx2(a, b, y, n); return; }
#endif
    for (long i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ck_l2_normalize(const float *x, float *y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        double ss = 0;
        for (long j = 0; j < cols; j++) ss += (double)xr[j] * xr[j];
        // PyTorch's F.normalize divides by max(norm, 1e-12).
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (long j = 0; j < cols; j++) yr[j] = xr[j] * inv;
    }
}

void ck_softmax_band(float *s, long rows, long cols, long ld, const int32_t *lo, const int32_t *hi, float scale) {
#if CK_X86
    if (ck_has_avx2()) { softmax_band_avx2(s, rows, cols, ld, lo, hi, scale); return; }
#endif
    softmax_band_scalar(s, rows, cols, ld, lo, hi, scale);
}

void ck_rope_copy(const float *src, long lds, float *dst, long rows, long d, const float *cos_t, const float *sin_t) {
    long h = d / 2;
    for (long r = 0; r < rows; r++) {
        const float *x = src + r * lds;
        float *o = dst + r * d;
        if (!cos_t) { memcpy(o, x, (size_t)d * sizeof(float)); continue; }
        const float *c = cos_t + r * h, *s = sin_t + r * h;
        for (long j = 0; j < h; j++) {
            float a = x[j], b = x[j + h];
            o[j] = a * c[j] - b * s[j];
            o[j + h] = b * c[j] + a * s[j];
        }
    }
}
