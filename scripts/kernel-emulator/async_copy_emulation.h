// cp.async emulated for the kernel emulators (attention, gemm): the kernels' own definitions (the marked
// inline-PTX spot and its synchronous fallback) are removed by strip_async_copies in kernel_literals.py.
#pragma once
#include "warp_emulation.h"
// cp.async: each thread's copies are queued per committed group and land when a wait releases the group
// (-DEMU_ASYNC_EARLY: at issue instead, which exposes a buffer overwritten while other warps still read it).
struct AsyncCopy { unsigned short* dst; uint4 v; };
thread_local std::vector<AsyncCopy> async_open;
thread_local std::vector<std::vector<AsyncCopy>> async_groups;
inline void cp_async16(unsigned short* dst, const unsigned short* src, bool valid) {
    uint4 v{0u, 0u, 0u, 0u};
    if (valid) memcpy(&v, src, 16);
#ifdef EMU_ASYNC_EARLY
    memcpy(dst, &v, 16);
#else
    async_open.push_back({dst, v});
#endif
}
inline void cp_async_commit() { async_groups.push_back(std::move(async_open)); async_open.clear(); }
inline void cp_async_wait_all() {
    for (auto& g : async_groups) for (auto& c : g) memcpy(c.dst, &c.v, 16);
    async_groups.clear();
}
inline void cp_async_wait_one() {
    while (async_groups.size() > 1) {
        for (auto& c : async_groups.front()) memcpy(c.dst, &c.v, 16);
        async_groups.erase(async_groups.begin());
    }
}
