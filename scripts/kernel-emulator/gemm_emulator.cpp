// CPU emulator of the tensor-core GEMM (see run_gemm.sh beside this): one std::thread per CUDA thread;
// barriers, ldmatrix and the warp-level MMA from warp_emulation.h. Checks gemm_mma against a double-precision
// reference of act(A · wᵀ + bias) + residual on bf16 inputs, A = x, layer-norm(x) (with and without its bias)
// or GeGLU(x) (the fused prologues); the output and a guard row after it are poisoned with NaN, so every
// element must be written and nothing past the end.
#include "gemm_emulation.h"
#include "kernels.inc"


int main(int argc, char** argv) {
    if (argc < 8) { fprintf(stderr, "usage: emu n m k bias residual kind prologue(0 none, 1 layer norm, 2 layer norm without bias, 3 GeGLU)\n"); return 2; }
    const int n = atoi(argv[1]), m = atoi(argv[2]), k = atoi(argv[3]);
    const bool hasBias = atoi(argv[4]) != 0, hasResidual = atoi(argv[5]) != 0;
    const int kind = atoi(argv[6]), prologue = atoi(argv[7]);
    const int xcols = prologue == 3 ? 2 * k : k;
    std::mt19937 rng(n * 7919 + m * 31 + k);
    std::normal_distribution<float> N(0.0f, 1.0f);
    std::vector<unsigned short> x((size_t)n * xcols), w((size_t)m * k), bias(m), res((size_t)n * m), out((size_t)(n + 1) * m, 0x7fc0);
    std::vector<unsigned short> lnw(k), lnb(k);
    for (auto& v : x) v = float_to_bf16(N(rng) * 2.0f + 0.7f);  // an offset and scale the layer norm must remove
    for (auto& v : lnw) v = float_to_bf16(1.0f + 0.3f * N(rng));
    for (auto& v : lnb) v = float_to_bf16(0.2f * N(rng));
    for (auto& v : w) v = float_to_bf16(N(rng) * 0.2f);
    for (auto& v : bias) v = float_to_bf16(N(rng));
    for (auto& v : res) v = float_to_bf16(N(rng));
    launch((m + 63) / 64, (n + 127) / 128, 128, [&] {
        gemm_mma(x.data(), w.data(), hasBias ? bias.data() : nullptr, hasResidual ? res.data() : nullptr, out.data(), n, m, k, kind,
                 prologue == 1 || prologue == 2 ? lnw.data() : nullptr, prologue == 1 ? lnb.data() : nullptr, 1e-5f, prologue == 3);
    });
    // A as the reference sees it: bf16 values (the kernels round the prologue's result to bf16 too).
    std::vector<double> a((size_t)n * k);
    for (int r = 0; r < n; r++) {
        double mean = 0, var = 0;
        if (prologue == 1 || prologue == 2) {
            for (int i = 0; i < k; i++) mean += bf16_to_float(x[(size_t)r * k + i]);
            mean /= k;
            for (int i = 0; i < k; i++) { const double d = bf16_to_float(x[(size_t)r * k + i]) - mean; var += d * d; }
            var /= k;
        }
        for (int i = 0; i < k; i++) {
            double v;
            if (prologue == 3) {
                const double u = bf16_to_float(x[(size_t)r * 2 * k + i]), gate = bf16_to_float(x[(size_t)r * 2 * k + k + i]);
                v = 0.5 * u * (1 + erf(u / sqrt(2.0))) * gate;
            } else if (prologue) {
                v = (bf16_to_float(x[(size_t)r * k + i]) - mean) / sqrt(var + 1e-5) * bf16_to_float(lnw[i]) + (prologue == 1 ? bf16_to_float(lnb[i]) : 0.0);
            } else {
                v = bf16_to_float(x[(size_t)r * k + i]);
            }
            a[(size_t)r * k + i] = v;
        }
    }
    OutputCheck check;
    for (int r = 0; r < n; r++) for (int c = 0; c < m; c++) {
        double s = 0;
        for (int i = 0; i < k; i++) s += a[(size_t)r * k + i] * bf16_to_float(w[(size_t)c * k + i]);
        if (hasBias) s += bf16_to_float(bias[c]);
        if (kind == 1) s = 0.5 * s * (1 + erf(s / sqrt(2.0)));
        if (kind == 2) s = 0.5 * s * (1 + tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
        if (hasResidual) s += bf16_to_float(res[(size_t)r * m + c]);
        check.element(bf16_to_float(out[(size_t)r * m + c]), s);
    }
    check.guard(&out[(size_t)n * m], m);
    char what[200];
    snprintf(what, sizeof what, "gemm_mma BN=%d n=%d m=%d k=%d bias=%d residual=%d kind=%d prologue=%d", GM_BN, n, m, k, hasBias, hasResidual,
             kind, prologue);
    return check.report(what);
}
