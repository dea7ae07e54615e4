// CPU emulator of the tensor-core attention kernel (see run_attention.sh beside this): one std::thread
// per CUDA thread, one block at a time; barriers for __syncthreads, warp shuffles, the warp-level MMA and
// ldmatrix (fragment layouts of the PTX ISA). Checks attention_mma against a double-precision reference
// on packed sequences, global and sliding-window, with and without RoPE; every output row must be written.
#include <barrier>
#include <thread>
#include <vector>
#include <cstring>
#include <math.h>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <algorithm>
struct dim3e { unsigned x = 0, y = 0, z = 0; };
thread_local dim3e threadIdx, blockIdx;
dim3e blockDim, gridDim;
struct uint4 { unsigned x, y, z, w; };
struct float4 { float x, y, z, w; };
static std::barrier<>* block_barrier;
struct Warp { std::barrier<>* bar; unsigned u[32]; unsigned a[32][4]; unsigned b[32][2]; const unsigned short* p[32]; };
static std::vector<Warp> warps;
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
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
static float bf(unsigned pair, int hi) { return __uint_as_float(hi ? (pair & 0xffff0000u) : (pair << 16)); }
// m16n8k16 row.col bf16 -> f32.
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
#define __align__(n) __attribute__((aligned(n)))
#include "kernels.inc"

static void launch(unsigned gx, unsigned gy, unsigned block, std::function<void()> body) {
    gridDim.x = gx; gridDim.y = gy; blockDim.x = block;
    std::barrier<> bb(block);
    block_barrier = &bb;
    warps.assign(block / 32, Warp{});
    for (auto& w : warps) w.bar = new std::barrier<>(32);
    for (unsigned y = 0; y < gy; y++) for (unsigned x = 0; x < gx; x++) {
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; t++) threads.emplace_back([=] { blockIdx.x = x; blockIdx.y = y; threadIdx.x = t; body(); });
        for (auto& th : threads) th.join();
    }
    for (auto& w : warps) delete w.bar;
}

int main(int argc, char** argv) {
    const int HD = CG_HEAD_DIM, H = 2, HALF = HD / 2;
    const int window = atoi(argv[1]);          // 0: global
    const bool use_rope = atoi(argv[2]) != 0;
    std::vector<int> lens;
    for (int i = 3; i < argc; i++) lens.push_back(atoi(argv[i]));
    std::vector<int> cu(1, 0);
    for (int l : lens) cu.push_back(cu.back() + l);
    const int T = cu.back(), S = (int)lens.size(), W = 3 * H * HD;
    std::mt19937 rng(HD * 131 + T + window);
    std::normal_distribution<float> N(0.0f, 1.5f);
    std::vector<unsigned short> qkv((size_t)T * W), out((size_t)T * H * HD, 0x7fc0);   // output poisoned with NaN
    for (auto& v : qkv) v = float_to_bf16(N(rng));
    const int P = 512;
    std::vector<float> rope((size_t)P * HALF * 2);
    for (int p = 0; p < P; p++) for (int i = 0; i < HALF; i++) {
        const float inv = 1.0f / powf(10000.0f, (float)(2 * i) / HD), angle = (float)p * inv;
        rope[(p * HALF + i) * 2] = cosf(angle); rope[(p * HALF + i) * 2 + 1] = sinf(angle);
    }
    std::vector<int> tiles;
    for (int s = 0; s < S; s++) for (int q0 = cu[s]; q0 < cu[s + 1]; q0 += 64) { tiles.push_back(s); tiles.push_back(q0); }
    const int wh = window ? window / 2 : -1;
    const float scale = 1.0f / sqrtf((float)HD);
    launch(tiles.size() / 2, H, 128, [&] {
        attention_mma(qkv.data(), out.data(), tiles.data(), cu.data(), use_rope ? rope.data() : nullptr, H, wh, scale * 1.4426950408889634f);
    });
    // double-precision reference
    auto val = [&](int t, int part, int h, int c) { return (double)bf16_to_float(qkv[(size_t)t * W + part * H * HD + h * HD + c]); };
    auto rot = [&](int t, int part, int h, int pos, std::vector<double>& x) {
        for (int c = 0; c < HD; c++) x[c] = val(t, part, h, c);
        if (!use_rope) return;
        for (int i = 0; i < HALF; i++) {
            const double cs = rope[(pos * HALF + i) * 2], sn = rope[(pos * HALF + i) * 2 + 1], a = x[i], b = x[i + HALF];
            x[i] = a * cs - b * sn; x[i + HALF] = b * cs + a * sn;
        }
    };
    double num = 0, den = 0; long unwritten = 0;
    std::vector<double> q(HD), k(HD), acc(HD);
    for (int s = 0; s < S; s++) for (int h = 0; h < H; h++) for (int qi = cu[s]; qi < cu[s + 1]; qi++) {
        rot(qi, 0, h, qi - cu[s], q);
        std::vector<double> sc;
        std::vector<int> idx;
        double mx = -1e300;
        for (int kj = cu[s]; kj < cu[s + 1]; kj++) {
            if (wh >= 0 && abs(qi - kj) > wh) continue;
            rot(kj, 1, h, kj - cu[s], k);
            double d = 0;
            for (int c = 0; c < HD; c++) d += q[c] * k[c];
            sc.push_back(d * scale); idx.push_back(kj); mx = std::max(mx, d * scale);
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double l = 0;
        for (size_t j = 0; j < sc.size(); j++) { const double p = exp(sc[j] - mx); l += p; for (int c = 0; c < HD; c++) acc[c] += p * val(idx[j], 2, h, c); }
        for (int c = 0; c < HD; c++) {
            const double ref = acc[c] / l, got = bf16_to_float(out[(size_t)qi * H * HD + h * HD + c]);
            if (std::isnan(got)) unwritten++;
            num += (got - ref) * (got - ref); den += ref * ref;
        }
    }
    const double rel = sqrt(num / den);
    const bool ok = unwritten == 0 && rel < 1.2e-2;
    printf("%s attention_mma pipe=%d hd=%d window=%d rope=%d tokens=%d: rel err %.2e, unwritten %ld\n", ok ? "PASS" : "FAIL", CG_ATT_PIPE, HD, window, use_rope, T, rel, unwritten);
    return ok ? 0 : 1;
}
