// Hopper's warpgroup MMA (wgmma) emulated for the gemm_wgmma and km_assign_wgmma emulators (warpgroup_gemm_emulator.cpp,
// kmeans_wgmma_emulator.cpp): the kernels' marked inline-PTX spot "WARPGROUP MMA" is compiled only for sm_90a, so here
// are its functions as this emulator understands the PTX ISA: shared-memory matrix descriptors (start address, leading and stride byte offsets, the
// 128-byte swizzle: address bits 4–6 XORed with bits 7–9), operands K-major, the m64nNk16 accumulator layout
// (register 4j + e of lane l in warp v: row 16v + l / 4 + 8·(e ≥ 2), column 8j + 2·(l % 4) + e % 2). The 128
// threads of a warpgroup meet at a barrier, as wgmma's .sync.aligned needs them all.
#pragma once
#include "gemm_emulation.h"   // the gemm module's other kernels are in the same extracted source
#define CG_HAS_WGMMA 1
#define WG_SHARED_ARRAY 1
// Dynamic shared memory: the block's window starts at emu_shared; the kernel's array starts 48 bytes in, so the
// kernel's own alignment to 1,024 bytes is exercised.
// EMU_SHARED_BYTES: the largest window an emulator's kernel needs (default: gemm_wgmma's).
#ifndef EMU_SHARED_BYTES
#define EMU_SHARED_BYTES (3 * 2 * 128 * 64 * 2 + 2048)
#endif
alignas(1024) static unsigned char emu_shared[EMU_SHARED_BYTES];
static unsigned short* const wg_smem = (unsigned short*)(emu_shared + 48);
#define KW_SHARED_ARRAY 1
static unsigned short* const kw_smem = (unsigned short*)(emu_shared + 48);
// The fast-math intrinsics of the kernel's epilogue, at full precision here.
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline size_t __cvta_generic_to_shared(const void* p) { return (size_t)((const unsigned char*)p - emu_shared); }

struct WarpGroupState { std::barrier<>* bar; };
static WarpGroupState warpgroups[4];
static void warpgroups_init() { for (auto& g : warpgroups) g.bar = new std::barrier<>(128); }

// wgmma runs asynchronously until waited for: the emulation queues each MMA at issue and performs it at the
// wait that retires its group, reading shared memory then (-DEMU_WGMMA_AT_ISSUE: at issue). A stage refilled
// before the MMAs reading it were waited for therefore gives wrong results here, as it may on a GPU.
struct PendingMMA { float* d; unsigned long long da, db; int accumulate; };
thread_local std::vector<PendingMMA> wg_open;
thread_local std::vector<std::vector<PendingMMA>> wg_groups;
thread_local int wg_fenced = 0;
inline void wg_fence() { wg_fenced = 1; }
inline void wg_proxy_fence() {}
inline void wg_hold(float (&)[64]) {}
// One operand element (row r, column k) of a K-major 128-byte-swizzled tile described by desc (the kernel's own
// wg_desc builds it: only the instructions of the PTX spot are emulated here).
static float wg_operand(unsigned long long desc, int r, int k) {
    if ((desc >> 62) != 1) { fprintf(stderr, "wgmma emulation: only the 128-byte swizzle is emulated\n"); abort(); }
    const size_t start = (desc & 0x3FFFull) << 4, stride = ((desc >> 32) & 0x3FFFull) << 4;
    const size_t address = start + (size_t)(r / 8) * stride + (size_t)(r % 8) * 128 + (size_t)k * 2;
    const size_t physical = address ^ (((address >> 7) & 7) << 4);
    unsigned short v;
    memcpy(&v, emu_shared + physical, 2);
    return __uint_as_float((unsigned)v << 16);
}
// This thread's part of one m64n128k16 MMA of its warpgroup.
static void wg_perform(const PendingMMA& p) {
    const int t = threadIdx.x % 128, v = t / 32, l = t % 32;
    for (int i = 0; i < 64; i++) {
        const int j = i / 4, e = i % 4;
        const int row = 16 * v + l / 4 + (e >= 2 ? 8 : 0), col = 8 * j + 2 * (l % 4) + (e & 1);
        float s = 0.0f;
        for (int k = 0; k < 16; k++) s += wg_operand(p.da, row, k) * wg_operand(p.db, col, k);
        p.d[i] = p.accumulate ? p.d[i] + s : s;
    }
}
inline void wg_mma_64x128x16(float (&d)[64], unsigned long long da, unsigned long long db, int accumulate) {
    if (!wg_fenced) { fprintf(stderr, "wgmma emulation: no wgmma.fence before the first MMA\n"); abort(); }
#ifdef EMU_WGMMA_AT_ISSUE
    warpgroups[threadIdx.x / 128].bar->arrive_and_wait();
    wg_perform({d, da, db, accumulate});
    warpgroups[threadIdx.x / 128].bar->arrive_and_wait();
#else
    wg_open.push_back({d, da, db, accumulate});
#endif
}
inline void wg_commit() { wg_groups.push_back(std::move(wg_open)); wg_open.clear(); }
// Retires all but the newest `keep` committed groups; the warpgroup's threads meet first, as .sync.aligned needs.
static void wg_wait(size_t keep) {
    warpgroups[threadIdx.x / 128].bar->arrive_and_wait();
    while (wg_groups.size() > keep) {
        for (auto& p : wg_groups.front()) wg_perform(p);
        wg_groups.erase(wg_groups.begin());
    }
    warpgroups[threadIdx.x / 128].bar->arrive_and_wait();
}
inline void wg_wait_all() { wg_wait(0); }
inline void wg_wait_one() { wg_wait(1); }
