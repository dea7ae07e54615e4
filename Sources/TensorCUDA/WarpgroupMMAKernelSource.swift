/// Hopper's warpgroup MMA (`wgmma`, sm_90a) as the kernels that use it see it: the marked inline-PTX spot (fence,
/// commit, wait, the m64n128k16 bf16 MMA with both operands in shared memory) and the shared-memory descriptor of
/// the 128-byte swizzled layout. One text for the modules compiled as sm_90a (`gemm-wgmma`, `kmeans-wgmma-*`), so
/// the PTX is written, and emulated (scripts/kernel-emulator/warpgroup_emulation.h), once.
extension KernelSource {
    static let warpgroupMMA = #"""

    #if CG_BF16
    #if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    // ---- BEGIN WARPGROUP MMA (replaceable inline PTX, sm_90a only: `wgmma` reads its operands from shared memory
    // through 64-bit descriptors and runs asynchronously until waited for; on other GPUs, AMD's included, the modules
    // that use it are not built: the GEMM runs on cuBLASLt with the activation in its own pass, the k-means assignment on
    // km_assign_mma) ----
    __device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
    __device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
    __device__ __forceinline__ void wg_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
    // Waits until at most the latest committed group of this warpgroup's MMAs is still running.
    __device__ __forceinline__ void wg_wait_one() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
    // Makes this thread's writes to shared memory (cp.async's included) visible to wgmma's reads.
    __device__ __forceinline__ void wg_proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
    // d (64 fp32 a thread: the warpgroup's 64 x 128 fp32 tile) += A(64 x 16) · B(128 x 16)ᵀ, both from shared memory.
    __device__ __forceinline__ void wg_mma_64x128x16(float (&d)[64], unsigned long long da, unsigned long long db, int accumulate) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
                     "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                     "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                     "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                     "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                     "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                       "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                       "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                       "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
                       "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
                       "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                       "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                       "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                     : "l"(da), "l"(db), "r"(accumulate));
    }
    // Ties the accumulators to the wait before this, so no read of them moves above it.
    __device__ __forceinline__ void wg_hold(float (&d)[64]) {
    #pragma unroll
        for (int i = 0; i < 64; i++) asm volatile("" : "+f"(d[i]) :: "memory");
    }
    // ---- END WARPGROUP MMA ----
    #define CG_HAS_WGMMA 1
    #endif

    #if defined(CG_HAS_WGMMA)
    // wgmma's descriptor of a tile of 8-row groups of 128-byte rows in the 128-byte swizzle (16-byte chunk c of row r at
    // chunk c ^ (r % 8)), groups 1,024 bytes apart; the tile's first group 1,024-byte aligned, the start address
    // moved by 32 bytes per k16 step inside the 64-wide rows.
    __device__ __forceinline__ unsigned long long wg_desc(const unsigned short* tile) {
        const unsigned long long address = ((unsigned)__cvta_generic_to_shared(tile) & 0x3FFFFu) >> 4;
        return address | (1ull << 16) | (64ull << 32) | (1ull << 62);
    }
    #endif
    #endif
    """#
}
