// CPU emulator of the warpgroup-MMA nearest-centroid kernel (km_assign_wgmma in
// Sources/TensorCUDA/KMeansWarpgroupKernelSource.swift; see run.sh): one std::thread per CUDA thread, barriers, cp.async
// (async_copy_emulation.h: copies land when waited for, or at issue with -DEMU_ASYNC_EARLY) and wgmma
// (warpgroup_emulation.h: each MMA performed at the wait that retires it, reading shared memory then). Codes against a
// double-precision argmax: each must be the exact argmax (smallest index among equal scores) or, off exact ties, score
// within 1e-5 of the best (fp32 accumulation may order a near-tie differently); with "ties" (every centroid a copy of
// one of the first 50, so equal scores within and across tiles) every code must be exact. Exit status 1 on any failure.
#define EMU_SHARED_BYTES (232 * 1024)
#include "warpgroup_emulation.h"
struct float2 { float x, y; };
#include "kernels_wgmma.inc"

static float round_bf16(float v) { unsigned u = __float_as_uint(v); u += 0x7fff + ((u >> 16) & 1); return __uint_as_float(u & 0xffff0000u); }

int main(int argc, char** argv) {
    if (argc < 4) { fprintf(stderr, "usage: emu d n k [ties]\n"); return 2; }
    const int d = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    const bool ties = argc > 4 && !strcmp(argv[4], "ties");
    const int DP = CG_KW_DP, KP = (k + 127) / 128 * 128;
    if ((d + 15) / 16 * 16 != DP) { fprintf(stderr, "d=%d does not pad to CG_KW_DP=%d\n", d, DP); return 2; }
    std::mt19937 rng(d * 7 + n + k);
    std::uniform_real_distribution<float> U(-1.7f, 1.7f);
    std::vector<float> x((size_t)n * d), c((size_t)k * d);
    for (auto& v : x) v = round_bf16(U(rng));
    for (auto& v : c) v = round_bf16(U(rng));
    if (ties) for (int j = 50; j < k; j++) for (int q = 0; q < d; q++) c[(size_t)j * d + q] = c[(size_t)(j % 50) * d + q];
    // The layouts fusedAssign passes: padded bf16 rows, the table padded to whole tiles with −∞ biases.
    std::vector<unsigned short> xa((size_t)n * DP, 0), ca((size_t)KP * DP, 0);
    std::vector<float> bias(KP, -INFINITY);
    for (int i = 0; i < n; i++) for (int q = 0; q < d; q++) xa[(size_t)i * DP + q] = float_to_bf16(x[(size_t)i * d + q]);
    for (int j = 0; j < k; j++) {
        double nn = 0;
        for (int q = 0; q < d; q++) { ca[(size_t)j * DP + q] = float_to_bf16(c[(size_t)j * d + q]); nn += (double)c[(size_t)j * d + q] * c[(size_t)j * d + q]; }
        bias[j] = (float)(-0.5 * nn);
    }
    std::vector<int> out(n + 1, -1);
    warpgroups_init();
    launch((n + KW_BM - 1) / KW_BM, KW_THREADS, [&] { km_assign_wgmma(xa.data(), n, ca.data(), bias.data(), KP, out.data()); });
    int exact = 0, near = 0, wrong = 0;
    for (int i = 0; i < n; i++) {
        double best = -1e300, chosen = -1e300;
        int bi = -1;
        for (int j = 0; j < k; j++) {
            double dot = 0;
            for (int q = 0; q < d; q++) dot += (double)x[(size_t)i * d + q] * c[(size_t)j * d + q];
            const double s = dot + bias[j];
            if (s > best) { best = s; bi = j; }
            if (j == out[i]) chosen = s;
        }
        if (out[i] == bi) exact++;
        else if (!ties && out[i] >= 0 && out[i] < k && best - chosen <= 1e-5 * std::max(fabs(best), 1.0)) near++;
        else { if (wrong < 5) printf("  row %d: got %d want %d (score gap %.3g)\n", i, out[i], bi, best - chosen); wrong++; }
    }
    if (out[n] != -1) wrong++;  // written past the end
#ifdef EMU_ASYNC_EARLY
    const char* copies = " (copies land at issue)";
#else
    const char* copies = "";
#endif
    printf("%s km_assign_wgmma d=%d (padded %d) n=%d k=%d warpgroups=%d stages=%d ahead=%d%s%s: %d exact, %d near-ties, %d wrong\n",
           wrong ? "FAIL" : "PASS", d, DP, n, k, CG_KW_WG, CG_KW_STAGES, CG_KW_AHEAD, ties ? " ties" : "", copies, exact, near, wrong);
    return wrong ? 1 : 0;
}
