// Hopper's warpgroup MMA (wgmma) emulated for the gemm_wgmma emulator (warpgroup_gemm_emulator.cpp): the kernel's
// marked inline-PTX spot "WARPGROUP MMA" is compiled only for sm_90a, so here are its functions as this emulator
// understands the PTX ISA: shared-memory matrix descriptors (start address, leading and stride byte offsets, the
// 128-byte swizzle: address bits 4–6 XORed with bits 7–9), operands K-major, the m64nNk16 accumulator layout
// (register 4j + e of lane l in warp v: row 16v + l / 4 + 8·(e ≥ 2), column 8j + 2·(l % 4) + e % 2). The 128
// threads of a warpgroup meet at a barrier, as wgmma's .sync.aligned needs them all.
#pragma once
#include "gemm_emulation.h"   // the gemm module's other kernels are in the same extracted source
#define CG_HAS_WGMMA 1
#define WG_SHARED_ARRAY 1
// Dynamic shared memory: the block's window starts at emu_shared; the kernel's array starts 48 bytes in, so the
// kernel's own alignment to 1,024 bytes is exercised.
alignas(1024) static unsigned char emu_shared[3 * 2 * 128 * 64 * 2 + 2048];
static unsigned short* const wg_smem = (unsigned short*)(emu_shared + 48);
// The fast-math intrinsics of the kernel's epilogue, at full precision here.
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline size_t __cvta_generic_to_shared(const void* p) { return (size_t)((const unsigned char*)p - emu_shared); }

struct WarpGroupState { std::barrier<>* bar; };
static WarpGroupState warpgroups[2];
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

// mbarrier: a pending count and a phase bit; the phase completes (the bit flips) when `count` arrivals have come.
// Waiting for parity p blocks while the current phase still has parity p (the PTX ISA's try_wait.parity, looped).
#include <condition_variable>
#include <map>
#include <mutex>
struct EmuBarrier { unsigned count = 0, pending = 0, phase = 0; long long tx = 0; };
static std::mutex emu_bar_mutex;
static std::condition_variable emu_bar_changed;
static std::map<unsigned long long*, EmuBarrier> emu_bars;
// The phase completes once every arrival has come and every expected byte has landed.
static void emu_bar_settle(EmuBarrier& b) {
    if (b.pending == 0 && b.tx == 0) { b.phase ^= 1; b.pending = b.count; emu_bar_changed.notify_all(); }
}
inline void mbar_init(unsigned long long* bar, unsigned count) {
    std::lock_guard<std::mutex> lock(emu_bar_mutex);
    emu_bars[bar] = EmuBarrier{count, count, 0, 0};
}
inline void mbar_arrive(unsigned long long* bar) {
    std::lock_guard<std::mutex> lock(emu_bar_mutex);
    EmuBarrier& b = emu_bars.at(bar);
    b.pending--;
    emu_bar_settle(b);
}
inline void mbar_arrive_expect_tx(unsigned long long* bar, unsigned bytes) {
    std::lock_guard<std::mutex> lock(emu_bar_mutex);
    EmuBarrier& b = emu_bars.at(bar);
    b.tx += bytes;
    b.pending--;
    emu_bar_settle(b);
}
inline void mbar_wait(unsigned long long* bar, unsigned parity) {
    std::unique_lock<std::mutex> lock(emu_bar_mutex);
    emu_bar_changed.wait(lock, [&] { return emu_bars.at(bar).phase != (parity & 1); });
}
// The tensor memory accelerator: the emulator's own tensor map words (0 address, 1 columns, 2 rows, 3 row stride in
// bytes, 4 box columns, 5 box rows; warpgroup_gemm_emulator.cpp writes them). The box lands in the 128-byte swizzle
// (16-byte chunk bits 4–6 of the shared address XORed with bits 7–9), rows past the tensor zero, then its bytes count on
// the barrier. (TensorMap is the kernel source's, defined after this header.)
#define __grid_constant__
struct TensorMap;
inline void tma_load_2d(unsigned short* dst, const TensorMap* map, int c0, int c1, unsigned long long* bar) {
    const unsigned long long* words = (const unsigned long long*)map;
    const unsigned char* base = (const unsigned char*)words[0];
    const int cols = (int)words[1], rows = (int)words[2], boxCols = (int)words[4], boxRows = (int)words[5];
    if (boxCols * 2 != 128) { fprintf(stderr, "TMA emulation: only 128-byte box rows (the 128-byte swizzle) are emulated\n"); abort(); }
    const size_t start = (const unsigned char*)dst - emu_shared;
    for (int r = 0; r < boxRows; r++) for (int c = 0; c < boxCols; c++) {
        unsigned short v = 0;
        if (c1 + r < rows && c0 + c < cols) memcpy(&v, base + (size_t)(c1 + r) * words[3] + (size_t)(c0 + c) * 2, 2);
        const size_t address = start + (size_t)r * 128 + (size_t)c * 2;
        memcpy(emu_shared + (address ^ (((address >> 7) & 7) << 4)), &v, 2);
    }
    std::lock_guard<std::mutex> lock(emu_bar_mutex);
    EmuBarrier& b = emu_bars.at(bar);
    b.tx -= (long long)boxCols * boxRows * 2;
    emu_bar_settle(b);
}
