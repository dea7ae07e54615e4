// CPU emulator of the warpgroup-MMA GEMM (gemm_wgmma in Sources/TensorCUDA/GemmWarpgroupKernelSource.swift; see
// run_gemm.sh): one std::thread per CUDA thread, barriers, cp.async (copies land only when waited for) and wgmma
// (warpgroup_emulation.h) emulated. Checks it against a double-precision reference of x · wᵀ + bias with no
// activation, the exact or the tanh GELU, or the GeGLU epilogue; the output and a guard row after it are poisoned
// with NaN, so every element must be written and nothing past the end.
#include "warpgroup_emulation.h"
#include "kernels.inc"

int main(int argc, char** argv) {
    if (argc < 7) { fprintf(stderr, "usage: emu n m k bias kind(0 none, 1 exact GELU, 2 tanh GELU) geglu\n"); return 2; }
    const int n = atoi(argv[1]), m = atoi(argv[2]), k = atoi(argv[3]);
    const bool hasBias = atoi(argv[4]) != 0;
    const int kind = atoi(argv[5]), geglu = atoi(argv[6]);
    const int width = geglu ? m / 2 : m;
    std::mt19937 rng(n * 7919 + m * 31 + k * 7 + kind + geglu);
    std::normal_distribution<float> N(0.0f, 1.0f);
    std::vector<unsigned short> x((size_t)n * k), w((size_t)m * k), bias(m), out((size_t)(n + 1) * width, 0x7fc0);
    for (auto& v : x) v = float_to_bf16(N(rng));
    for (auto& v : w) v = float_to_bf16(N(rng) * 0.1f);
    for (auto& v : bias) v = float_to_bf16(N(rng));
    warpgroups_init();
    launch(width / (geglu ? 64 : 128), (n + WG_BM - 1) / WG_BM, WG_THREADS, [&] {
        gemm_wgmma(x.data(), w.data(), hasBias ? bias.data() : nullptr, out.data(), n, m, k, kind, geglu);
    });
    OutputCheck check;
    std::vector<double> s(m);
    auto gelu = [](double v) { return 0.5 * v * (1 + erf(v / sqrt(2.0))); };
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < m; c++) {
            double sum = hasBias ? bf16_to_float(bias[c]) : 0.0;
            for (int i = 0; i < k; i++) sum += (double)bf16_to_float(x[(size_t)r * k + i]) * bf16_to_float(w[(size_t)c * k + i]);
            s[c] = sum;
        }
        for (int c = 0; c < width; c++) {
            double want = s[c];
            if (geglu) want = gelu(s[c]) * s[m / 2 + c];
            else if (kind == 1) want = gelu(s[c]);
            else if (kind == 2) want = 0.5 * s[c] * (1 + tanh(0.7978845608028654 * (s[c] + 0.044715 * s[c] * s[c] * s[c])));
            check.element(bf16_to_float(out[(size_t)r * width + c]), want);
        }
    }
    check.guard(&out[(size_t)n * width], width);
    char what[160];
    snprintf(what, sizeof what, "gemm_wgmma n=%d m=%d k=%d bias=%d kind=%d geglu=%d", n, m, k, hasBias, kind, geglu);
    return check.report(what);
}
