/// The fused nearest-centroid search on Hopper's warpgroup MMA (`wgmma`, sm_90a): `km_assign_wgmma`, the same contract
/// as `km_assign_mma` (KMeansKernelSource.swift) — padded bf16 vector rows, a centroid table of whole 128-row tiles with
/// fp32 biases (−∞ on padding rows), Int32 codes, the smallest index winning among equal scores — in a module of its
/// own (`kmeans-wgmma-<padded dim>`) compiled only on compute capability 9.0, as sm_90a.
///
/// Why: `km_assign_mma` runs `mma.sync` at ~315 TFLOPS (10M × 32,768 × 128 in 0.2665 s of kernels on an H100), its
/// centroid fragments read by `ldmatrix` into registers; `wgmma` reads both operands from shared memory itself and runs
/// asynchronously, so the argmax of one tile can run while the tensor cores score the next.
///
/// The kernel: a block of CG_KW_WG warpgroups, warpgroup g owning vector rows 64g…64g+63 of the block (in shared memory
/// for the whole sweep, 128-byte swizzled rows of 64 columns, one such tile per 64-wide column chunk), walks every
/// 128-centroid tile, streamed through a ring of CG_KW_STAGES shared-memory stages filled by `cp.async` CG_KW_STAGES − 1
/// tiles ahead (each tile's 128 fp32 biases beside it). Two accumulator sets of 64 fp32 a thread: the MMAs of tile j + 1
/// are issued into one (started at the biases) before the epilogue of tile j reads the other, so the tensor cores stay
/// busy through the epilogue. Rows of 48 dimensions are 96 bytes: stored in 128-byte swizzled rows, only 3 k16 steps
/// issued; 128 dimensions are two 64-wide chunks.
///
/// Measured (one H100 80GB HBM3, 2M device-resident vectors × 32,768 centroids, kernel time from events, mean of three
/// runs): 128-d 37.8 ms against km_assign_mma's 51.7 (1.37×, ~444 TFLOPS), 48-d 24.8 ms against 28.0 (1.13×: three k16
/// steps a tile leave the epilogue — bias starts, 64 fmax, the barrier and the copies — as long as the MMAs).
extension KernelSource {
    /// The kernel's name in its module.
    static let kmeansWarpgroupKernel = "km_assign_wgmma"

    static let kmeansWarpgroup = common + warpgroupMMA + #"""

    #if CG_BF16
    #if defined(CG_HAS_WGMMA)
    #ifndef CG_KW_DP
    #define CG_KW_DP 128
    #endif
    #ifndef CG_KW_WG
    #define CG_KW_WG 2
    #endif
    #ifndef CG_KW_STAGES
    #define CG_KW_STAGES 4
    #endif
    // Tiles in flight ahead of the one the MMAs read: one stage less than the ring, as the stage of tile j − 1 is free
    // only once every warpgroup has retired its MMAs (the CPU emulator sets it to the ring's size to see that fail).
    #ifndef CG_KW_AHEAD
    #define CG_KW_AHEAD (CG_KW_STAGES - 1)
    #endif
    #define KW_THREADS (128 * CG_KW_WG)
    #define KW_BM (64 * CG_KW_WG)
    #define KW_BN 128
    #define KW_CHUNKS ((CG_KW_DP + 63) / 64)
    #define KW_KS (CG_KW_DP / 16)
    #define KW_CPR (CG_KW_DP / 8)
    #define KW_ATILE (KW_BM * KW_CHUNKS * 64)
    #define KW_BTILE (KW_BN * KW_CHUNKS * 64)
    #ifndef KW_SHARED_ARRAY
    extern __shared__ __align__(16) unsigned short kw_smem[];
    #endif

    // `rows` rows of CG_KW_DP bf16 from src (row r at src + r · CG_KW_DP) into a tile: 16-byte piece p of row r in chunk
    // p / 8 (each chunk rows × 64 columns, 1,024-byte aligned), at piece (p % 8) ^ (r % 8) of the row's 128 bytes. Rows
    // at or past `valid` are zero. Pieces past CG_KW_DP (a 48-wide row's last 32 bytes) are never written nor read.
    template <int ROWS>
    __device__ __forceinline__ void kw_copy_rows(unsigned short* tile, const unsigned short* src, long long valid) {
    #pragma unroll
        for (int i = 0; i < (ROWS * KW_CPR + KW_THREADS - 1) / KW_THREADS; i++) {
            const int e = threadIdx.x + i * KW_THREADS;
            if ((ROWS * KW_CPR) % KW_THREADS == 0 || e < ROWS * KW_CPR) {
                const int r = e / KW_CPR, p = e - r * KW_CPR;
                const bool ok = r < valid;
                cp_async16(tile + (p >> 3) * ROWS * 64 + r * 64 + (((p & 7) ^ (r & 7)) << 3), src + (long long)(ok ? r : 0) * CG_KW_DP + p * 8, ok);
            }
        }
    }

    // Centroid tile `tile` (rows 128·tile…) into a ring stage, its 128 biases into the stage's bias slot.
    __device__ __forceinline__ void kw_issue_tile(unsigned short* stage, float* cb, const unsigned short* c, const float* bias, int tile) {
        kw_copy_rows<KW_BN>(stage, c + (long long)tile * KW_BN * CG_KW_DP, KW_BN);
        if (threadIdx.x < KW_BN / 4) cp_async16((unsigned short*)cb + threadIdx.x * 8, (const unsigned short*)(bias + tile * KW_BN) + threadIdx.x * 8, true);
    }

    // The warpgroup's 64 rows (a) against a stage's 128 centroids (b) into d, started at the centroids' biases:
    // accumulator 4j + e of lane l is column 8j + 2 (l % 4) + e % 2 (q2 = 2 (l % 4)). Committed as one group.
    __device__ __forceinline__ void kw_mma_tile(float (&d)[64], const unsigned short* a, const unsigned short* b, const float* cb, int q2) {
    #pragma unroll
        for (int j = 0; j < 16; j++) {
            const float2 v = *(const float2*)(cb + 8 * j + q2);
            d[4 * j] = v.x; d[4 * j + 1] = v.y; d[4 * j + 2] = v.x; d[4 * j + 3] = v.y;
        }
        wg_hold(d);   // the starts written before the fence (else ptxas finds them among the MMAs and serializes those)
        wg_fence();
    #pragma unroll
        for (int s = 0; s < KW_KS; s++) {
            wg_mma_64x128x16(d, wg_desc(a + (s >> 2) * KW_BM * 64 + (s & 3) * 16), wg_desc(b + (s >> 2) * KW_BN * 64 + (s & 3) * 16), 1);
        }
        wg_commit();
    }

    // A tile's scores (bias included) into the running (best, index) of the thread's two rows (accumulators e < 2: row
    // l / 4 of the warp's 16, e ≥ 2: row l / 4 + 8): per row the tile's maximum, one fmax a score; only when it beats the
    // best is its column looked up, the smallest holding it, so with the strict > and tiles in increasing order the
    // smallest index wins among equal scores (as in km_assign_mma).
    __device__ __forceinline__ void kw_fold(const float (&d)[64], float (&best)[2], int (&index)[2], int col0, int q2) {
    #pragma unroll
        for (int h = 0; h < 2; h++) {
            float m = d[2 * h];
    #pragma unroll
            for (int j = 0; j < 16; j++) m = fmaxf(m, fmaxf(d[4 * j + 2 * h], d[4 * j + 2 * h + 1]));
            if (m > best[h]) {
                int found = 0;
    #pragma unroll
                for (int j = 15; j >= 0; j--) {
                    if (d[4 * j + 2 * h + 1] == m) found = 8 * j + 1;
                    if (d[4 * j + 2 * h] == m) found = 8 * j;
                }
                best[h] = m;
                index[h] = col0 + q2 + found;
            }
        }
    }

    // The top of a step of the sweep: tile j + 1 landed and visible to every warpgroup, tile j + CG_KW_AHEAD (if any)
    // sent for into the stage tile j − 1 used.
    __device__ __forceinline__ void kw_refill(int j, int tiles, unsigned short* Bs, float* Cb, const unsigned short* c, const float* bias) {
        cp_async_wait_one();   // this thread's copies of tile j + 1 have landed (those of j + 2 may not have)
        wg_proxy_fence();
        __syncthreads();       // everyone's; and every warpgroup has retired its MMAs of tile j − 1, so its stage is free
        const int ahead = j + CG_KW_AHEAD;
        if (ahead < tiles) kw_issue_tile(Bs + (ahead % CG_KW_STAGES) * KW_BTILE, Cb + (ahead % CG_KW_STAGES) * KW_BN, c, bias, ahead);
        cp_async_commit();     // (empty past the end: the group count stays one a step)
    }

    // A step with a next tile: the MMAs of tile j + 1 into `next`, then the epilogue of tile j from `cur` while they run.
    __device__ __forceinline__ void kw_step(float (&cur)[64], float (&next)[64], int j, int tiles, const unsigned short* Ag, unsigned short* Bs,
                                            float* Cb, const unsigned short* c, const float* bias, float (&best)[2], int (&index)[2], int q2) {
        kw_refill(j, tiles, Bs, Cb, c, bias);
        const int s = (j + 1) % CG_KW_STAGES;
        kw_mma_tile(next, Ag, Bs + s * KW_BTILE, Cb + s * KW_BN, q2);
        wg_wait_one();         // tile j's MMAs retired; tile j + 1's still running
        wg_hold(cur);
        kw_fold(cur, best, index, j * KW_BN, q2);
    }

    // codes[i] = argmax over the kp centroids of x_i · c + bias (the smallest index among equal scores), for the n rows of
    // x (CG_KW_DP bf16 each, zero past the true dimension); kp a multiple of 128. Block: KW_THREADS threads, KW_BM rows.
    extern "C" __global__ void __launch_bounds__(KW_THREADS, 1) km_assign_wgmma(const unsigned short* x, long long n,
            const unsigned short* c, const float* bias, int kp, int* out) {
        const unsigned misalign = (unsigned)__cvta_generic_to_shared(kw_smem) & 1023u;
        unsigned short* As = kw_smem + ((1024u - misalign) & 1023u) / 2;
        unsigned short* Bs = As + KW_ATILE;
        float* Cb = (float*)(Bs + CG_KW_STAGES * KW_BTILE);
        const long long row0 = (long long)blockIdx.x * KW_BM;
        const int tiles = kp / KW_BN, q2 = (threadIdx.x & 3) * 2;

        // The block's rows (zero past n) go with tile 0 in the first group; tiles 1 … CG_KW_AHEAD − 1 a group each.
        kw_copy_rows<KW_BM>(As, x + row0 * CG_KW_DP, n - row0);
        for (int t = 0; t < CG_KW_AHEAD; t++) {
            if (t < tiles) kw_issue_tile(Bs + (t % CG_KW_STAGES) * KW_BTILE, Cb + (t % CG_KW_STAGES) * KW_BN, c, bias, t);
            cp_async_commit();
        }
        cp_async_wait_all();
        wg_proxy_fence();
        __syncthreads();

        float acc0[64], acc1[64];
        float best[2] = {-CG_INF, -CG_INF};
        int index[2] = {0, 0};
        const unsigned short* Ag = As + (threadIdx.x >> 7) * 64 * 64;
        kw_mma_tile(acc0, Ag, Bs, Cb, q2);
        // The first step outside the loop: ptxas (NVRTC 12.9) cannot tell that its wait retires the MMAs of tile 0, waits
        // for all of them and runs the epilogue before issuing tile 1 (its note C7517); inside the loop, where every path
        // into a wait leaves the same one group in flight, it keeps them overlapped. With the step inside the loop that
        // happened once every two tiles.
        int j = 0;
        if (tiles > 1) { kw_step(acc0, acc1, 0, tiles, Ag, Bs, Cb, c, bias, best, index, q2); j = 1; }
        // Tile j running in acc1 at the top of each iteration. Two tiles an iteration, so that which set is which is
        // known at compile time (registers, not local memory).
        for (; j + 2 < tiles; j += 2) {
            kw_step(acc1, acc0, j, tiles, Ag, Bs, Cb, c, bias, best, index, q2);
            kw_step(acc0, acc1, j + 1, tiles, Ag, Bs, Cb, c, bias, best, index, q2);
        }
        // One or two tiles left from j (or the only one).
        if (j == 0) {
            wg_wait_all();
            wg_hold(acc0);
            kw_fold(acc0, best, index, 0, q2);
        } else if (j + 1 < tiles) {
            kw_step(acc1, acc0, j, tiles, Ag, Bs, Cb, c, bias, best, index, q2);
            wg_wait_all();
            wg_hold(acc0);
            kw_fold(acc0, best, index, (j + 1) * KW_BN, q2);
        } else {
            wg_wait_all();
            wg_hold(acc1);
            kw_fold(acc1, best, index, j * KW_BN, q2);
        }
        // The four lanes of a row; each row belongs to one warp.
    #pragma unroll
        for (int h = 0; h < 2; h++) {
            cg_best_across_lanes(best[h], index[h], 4);
            const long long row = row0 + (threadIdx.x >> 5) * 16 + ((threadIdx.x & 31) >> 2) + 8 * h;
            if ((threadIdx.x & 3) == 0 && row < n) out[row] = index[h];
        }
    }
    #endif
    #endif
    """#
}
