// CPU emulator of the k-means CUDA kernels (see run.sh beside this).
// CPU emulation of the k-means CUDA kernels: one std::thread per CUDA thread, one block at a time,
// barriers for __syncthreads / warp shuffles / the warp-level MMA.
#include <mutex>
#include "warp_emulation.h"
struct float2 { float x, y; };
static std::mutex atomic_lock;
alignas(16) static unsigned char emu_dynamic_shared[300 * 1024];
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> g(atomic_lock); float o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { std::lock_guard<std::mutex> g(atomic_lock); int o = *p; *p = o + v; return o; }
#define __align__(n) alignas(n)
#include "kernels.inc"

static float round_bf16(float v) { unsigned u = __float_as_uint(v); u += 0x7fff + ((u >> 16) & 1); return __uint_as_float(u & 0xffff0000u); }

int main(int argc, char** argv) {
    const int d = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    const int DP = CG_KM_DP, KP = (k + 127) / 128 * 128;
    std::mt19937 rng(d * 7 + n);
    std::uniform_real_distribution<float> U(-1.7f, 1.7f);
    std::vector<float> x(n * d), c(k * d);
    for (auto& v : x) v = round_bf16(U(rng));
    for (auto& v : c) v = round_bf16(U(rng));
    // "ties": every centroid repeats one of the first 50 exactly (equal scores within and across
    // tiles: the smallest index must win).
    if (argc > 4) for (int j = 50; j < k; j++) for (int q = 0; q < d; q++) c[j * d + q] = c[(j % 50) * d + q];
    std::vector<act_t> xa(n * DP), ca(KP * DP);
    std::vector<float> bias(KP);
    launch(3, 256, [&] { km_convert_rows(x.data(), xa.data(), n, d); });
    launch((KP + 3) / 4, 128, [&] { km_prepare_f32(c.data(), k, KP, d, 1, ca.data(), bias.data()); });
    // reference
    std::vector<int> ref(n);
    for (int i = 0; i < n; i++) {
        double best = -1e300; int bi = 0;
        for (int j = 0; j < k; j++) {
            double dot = 0, nn = 0;
            for (int q = 0; q < d; q++) { dot += (double)x[i * d + q] * c[j * d + q]; nn += (double)c[j * d + q] * c[j * d + q]; }
            double s = dot - 0.5 * nn;
            if (s > best) { best = s; bi = j; }
        }
        ref[i] = bi;
    }
    auto compare = [&](const char* name, std::vector<int>& out) {
        int wrong = 0;
        for (int i = 0; i < n; i++) if (out[i] != ref[i]) { if (wrong < 5) printf("  %s row %d: got %d want %d\n", name, i, out[i], ref[i]); wrong++; }
        printf("%s d=%d n=%d k=%d: %d / %d differ\n", name, d, n, k, wrong, n);
    };
    std::vector<int> out(n, -1);
    launch((n + 63) / 64, 256, [&] { km_assign_plain(xa.data(), n, ca.data(), bias.data(), KP, out.data()); });
    compare("plain", out);
#if CG_BF16
    std::fill(out.begin(), out.end(), -1);
    const int BM = 32 * CG_KM_WM;
    launch((n + BM - 1) / BM, 64 * CG_KM_WM, [&] { km_assign_mma(xa.data(), n, ca.data(), bias.data(), KP, out.data()); });
    compare("mma", out);
#endif
    // Lloyd update from the reference labels
    std::vector<float> sums(k * d, 0), cen = c;
    std::vector<int> counts(k, 0);
    launch(4, 256, [&] { km_accumulate(x.data(), n, d, ref.data(), sums.data(), counts.data()); });
    launch(4, 256, [&] { km_update(cen.data(), sums.data(), counts.data(), k, d); });
    double err = 0; int empty = 0;
    for (int j = 0; j < k; j++) {
        int cnt = 0; std::vector<double> s(d, 0);
        for (int i = 0; i < n; i++) if (ref[i] == j) { cnt++; for (int q = 0; q < d; q++) s[q] += x[i * d + q]; }
        if (!cnt) empty++;
        for (int q = 0; q < d; q++) { double want = cnt ? s[q] / cnt : c[j * d + q]; err = std::max(err, fabs(want - cen[j * d + q])); }
    }
    printf("update: max abs error %.2e (%d empty kept)\n", err, empty);
}
