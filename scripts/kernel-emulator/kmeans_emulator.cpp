// CPU emulator of the k-means CUDA kernels (see run.sh beside this).
// CPU emulation of the k-means CUDA kernels: one std::thread per CUDA thread, one block at a time,
// barriers for __syncthreads / warp shuffles / the warp-level MMA.
#include <barrier>
#include <thread>
#include <vector>
#include <cstring>
#include <cmath>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <algorithm>
struct dim3e { unsigned x = 0, y = 0, z = 0; };
thread_local dim3e threadIdx, blockIdx;
dim3e blockDim, gridDim;
struct uint4 { unsigned x, y, z, w; };
struct float2 { float x, y; };
static std::barrier<>* block_barrier;
struct Warp { std::barrier<>* bar; unsigned u[32]; unsigned a[32][4]; unsigned b[32][2]; const unsigned short* p[32]; };
static std::vector<Warp> warps;
static std::mutex atomic_lock;
alignas(16) static unsigned char emu_dynamic_shared[300 * 1024];
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) {
    Warp& w = warps[threadIdx.x / 32];
    unsigned lane = threadIdx.x % 32, bits;
    memcpy(&bits, &v, 4);
    w.u[lane] = bits;
    w.bar->arrive_and_wait();
    unsigned other = w.u[lane ^ o];
    w.bar->arrive_and_wait();
    T r; memcpy(&r, &other, 4); return r;
}
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> g(atomic_lock); float o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { std::lock_guard<std::mutex> g(atomic_lock); int o = *p; *p = o + v; return o; }
static float bf(unsigned pair, int hi) { return __uint_as_float(hi ? (pair & 0xffff0000u) : (pair << 16)); }
// m16n8k16 row.col bf16 -> f32, fragment layout of the PTX ISA.
inline void mma_bf16_16816(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
    Warp& w = warps[threadIdx.x / 32];
    unsigned lane = threadIdx.x % 32;
    w.a[lane][0] = a0; w.a[lane][1] = a1; w.a[lane][2] = a2; w.a[lane][3] = a3; w.b[lane][0] = b0; w.b[lane][1] = b1;
    w.bar->arrive_and_wait();
    auto A = [&](int r, int c) { int g = r % 8, half = r / 8, t = (c % 8) / 2; int reg = (c < 8 ? 0 : 2) + half; return bf(w.a[g * 4 + t][reg], c % 2); };
    auto B = [&](int k, int n) { int t = (k % 8) / 2; return bf(w.b[n * 4 + t][k < 8 ? 0 : 1], k % 2); };
    int g = lane / 4, t = lane % 4;
    for (int q = 0; q < 4; q++) {
        int r = g + (q >= 2 ? 8 : 0), c = 2 * t + (q & 1);
        float s = d[q];
        for (int k = 0; k < 16; k++) s += A(r, k) * B(k, c);
        d[q] = s;
    }
    w.bar->arrive_and_wait();
}
// ldmatrix .x4: lane l gives row l % 8 of matrix l / 8.
static void ldsm(unsigned* r, const unsigned short* row, bool trans) {
    Warp& w = warps[threadIdx.x / 32];
    unsigned lane = threadIdx.x % 32;
    w.p[lane] = row;
    w.bar->arrive_and_wait();
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < 4; j++) {
        unsigned short lo, hi;
        if (!trans) { lo = w.p[j * 8 + g][2 * t]; hi = w.p[j * 8 + g][2 * t + 1]; }
        else { lo = w.p[j * 8 + 2 * t][g]; hi = w.p[j * 8 + 2 * t + 1][g]; }
        r[j] = (unsigned)lo | ((unsigned)hi << 16);
    }
    w.bar->arrive_and_wait();
}
inline void ldsm_x4(unsigned* r, const unsigned short* row) { ldsm(r, row, false); }
inline void ldsm_x4_trans(unsigned* r, const unsigned short* row) { ldsm(r, row, true); }
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)
#include "kernels.inc"

static void launch(unsigned grid, unsigned block, std::function<void()> body) {
    gridDim.x = grid; blockDim.x = block;
    std::barrier<> bb(block);
    block_barrier = &bb;
    std::vector<std::barrier<>*> wbars;
    warps.assign(block / 32, Warp{});
    for (auto& w : warps) { w.bar = new std::barrier<>(32); }
    for (unsigned b = 0; b < grid; b++) {
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; t++) threads.emplace_back([=] { blockIdx.x = b; threadIdx.x = t; body(); });
        for (auto& th : threads) th.join();
    }
    for (auto& w : warps) delete w.bar;
}
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
