// CUDA's thread model and warp-level intrinsics emulated on the CPU, shared by the kernel emulators beside
// this (attention, GEMM and k-means emulators): one std::thread per CUDA thread, a barrier per block
// for __syncthreads and one per warp for shuffles, the m16n8k16 bf16 MMA and ldmatrix in the fragment
// layouts of the PTX ISA (what the kernels' marked inline-PTX spots compute on a GPU).
#pragma once
#include <barrier>
#include <thread>
#include <vector>
#include <cstring>
#include <math.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <algorithm>
struct float4 { float x, y, z, w; };
struct dim3e { unsigned x = 0, y = 0, z = 0; };
thread_local dim3e threadIdx, blockIdx;
dim3e blockDim, gridDim;
struct uint4 { unsigned x, y, z, w; };
struct int4 { int x, y, z, w; };
static std::barrier<>* block_barrier;
struct Warp { std::barrier<>* bar; unsigned u[32]; unsigned a[32][4]; unsigned b[32][2]; const unsigned short* p[32]; };
static std::vector<Warp> warps;
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline void __syncwarp() { warps[threadIdx.x / 32].bar->arrive_and_wait(); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
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
#define __align__(n) __attribute__((aligned(n)))
// CUDA's integer max / min device functions.
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }

// Runs `body` as a grid of gx × gy blocks of `block` threads, one block at a time, one std::thread per CUDA
// thread (so barriers and warp intrinsics behave as on a GPU).
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
static void launch(unsigned grid, unsigned block, std::function<void()> body) { launch(grid, 1, block, std::move(body)); }
