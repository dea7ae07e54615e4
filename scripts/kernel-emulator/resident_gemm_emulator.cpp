// CPU emulator of the row-resident GEMM (gemm_resident in Sources/TensorCUDA/GemmResidentKernelSource.swift; see
// run_gemm.sh beside this): one std::thread per CUDA thread, barriers, ldmatrix, the warp-level MMA and cp.async
// (copies land only when waited for) from the emulation headers. Checks it against a double-precision reference of
// A · wᵀ + bias, A = x or its rows' layer norm (with and without the norm's bias), with the GeGLU epilogue or
// without; the output and a guard row after it are poisoned with NaN, so every element must be written and
// nothing past the end.
#include "gemm_emulation.h"
#include "kernels.inc"

int main(int argc, char** argv) {
    if (argc < 6) { fprintf(stderr, "usage: emu n m bias norm(0 none, 1 layer norm, 2 layer norm without bias) geglu\n"); return 2; }
    const int n = atoi(argv[1]), m = atoi(argv[2]), k = GR_K;
    const bool hasBias = atoi(argv[3]) != 0;
    const int norm = atoi(argv[4]), geglu = atoi(argv[5]);
    const int width = geglu ? m / 2 : m;
    std::mt19937 rng(n * 7919 + m * 31 + norm * 7 + geglu);
    std::normal_distribution<float> N(0.0f, 1.0f);
    std::vector<unsigned short> x((size_t)n * k), w((size_t)m * k), bias(m), out((size_t)(n + 1) * width, 0x7fc0), lnw(k), lnb(k);
    for (auto& v : x) v = float_to_bf16(N(rng) * 2.0f + 0.7f);  // an offset and scale the layer norm must remove
    for (auto& v : lnw) v = float_to_bf16(1.0f + 0.3f * N(rng));
    for (auto& v : lnb) v = float_to_bf16(0.2f * N(rng));
    for (auto& v : w) v = float_to_bf16(N(rng) * 0.1f);
    for (auto& v : bias) v = float_to_bf16(N(rng));
    launch((n + 127) / 128, GR_THREADS, [&] {
        gemm_resident(x.data(), w.data(), hasBias ? bias.data() : nullptr, out.data(), n, m,
                      norm ? lnw.data() : nullptr, norm == 1 ? lnb.data() : nullptr, 1e-5f, geglu);
    });
    OutputCheck check;
    std::vector<double> a(k), s(m);
    for (int r = 0; r < n; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < k; i++) mean += bf16_to_float(x[(size_t)r * k + i]);
        mean /= k;
        for (int i = 0; i < k; i++) { const double d = bf16_to_float(x[(size_t)r * k + i]) - mean; var += d * d; }
        var /= k;
        for (int i = 0; i < k; i++) {
            const double v = bf16_to_float(x[(size_t)r * k + i]);
            a[i] = norm ? (v - mean) / sqrt(var + 1e-5) * bf16_to_float(lnw[i]) + (norm == 1 ? bf16_to_float(lnb[i]) : 0.0) : v;
        }
        for (int c = 0; c < m; c++) {
            double sum = hasBias ? bf16_to_float(bias[c]) : 0.0;
            for (int i = 0; i < k; i++) sum += a[i] * bf16_to_float(w[(size_t)c * k + i]);
            s[c] = sum;
        }
        for (int c = 0; c < width; c++) {
            const double want = geglu ? 0.5 * s[c] * (1 + erf(s[c] / sqrt(2.0))) * s[m / 2 + c] : s[c];
            check.element(bf16_to_float(out[(size_t)r * width + c]), want);
        }
    }
    check.guard(&out[(size_t)n * width], width);
    char what[160];
    snprintf(what, sizeof what, "gemm_resident n=%d m=%d k=%d bias=%d norm=%d geglu=%d", n, m, k, hasBias, norm, geglu);
    return check.report(what);
}
