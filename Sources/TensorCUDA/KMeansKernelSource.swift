/// CUDA C of the k-means module: fused nearest-centroid search (no score matrix in device memory) and
/// the device side of Lloyd's centroid update. Built per precision and padded dimension (`CG_KM_DP`, a
/// multiple of 16; `CG_KM_WM` warps along the vector tile), in the same HIP-portable subset as the
/// rest of `KernelSource`: the tensor-core kernel uses only the shared "TENSOR-CORE MMA" spot of
/// `common`, and `km_assign_plain` is the portable fallback (and the fp32 path).
///
/// Layouts: vectors and centroids as act_t rows of `CG_KM_DP` elements, zero past the true dimension;
/// centroids padded with zero rows to a multiple of 128, whose bias (−½‖c‖², or 0 for inner product)
/// is −∞ so they are never chosen.
extension KernelSource {
    /// Kernels of the k-means module in every precision.
    static let kmeansKernels = ["km_convert_rows", "km_pad_rows", "km_prepare_f32", "km_prepare_act", "km_assign_plain",
                                "km_accumulate", "km_update", "km_c2f_top", "km_c2f_scan", "km_c2f_tile_groups", "km_c2f_scatter", "km_c2f_fine", "km_c2f_reduce",
                                "km_gather_rows", "km_gather_rows_act", "km_half_sq_norms", "km_group_offsets", "km_group_members", "km_residual_pack"]
    /// The tensor-core assignment kernel (bf16 builds only).
    static let kmeansMMAKernel = "km_assign_mma"
    /// The coarse-to-fine search's tensor-core kernels (bf16 builds up to 128 padded dimensions): the top and the fine
    /// search by MMA on act_t rows.
    static let kmeansCoarseToFineMMAKernels = (top: "km_c2f_top_mma", fine: "km_c2f_fine_mma")
    /// Centroids per tile of `km_c2f_fine_mma` (`KM_FN`).
    static let kmeansCoarseToFineMMAColumns = 64
    /// Centroids per tile of both assignment kernels (the padded centroid count is a multiple of it).
    static let kmeansCentroidTile = 128

    static let kmeans = common + #"""

    #ifndef CG_KM_DP
    #define CG_KM_DP 64
    #endif
    #ifndef CG_KM_WM
    #define CG_KM_WM 4
    #endif
    #ifndef CG_KM_MINB
    #define CG_KM_MINB 1
    #endif
    #define KM_DP CG_KM_DP
    #define KM_SP (CG_KM_DP + 8)
    #define KM_CH (CG_KM_DP / 8)

    // fp32 rows (stride d) to act_t rows of KM_DP elements, zero-padded.
    extern "C" __global__ void km_convert_rows(const float* src, act_t* dst, long long rows, int d) {
        const long long total = rows * KM_DP;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / KM_DP;
            const int c = (int)(i - r * KM_DP);
            st(dst, i, c < d ? src[r * d + c] : 0.0f);
        }
    }

    // act_t rows (stride d) to act_t rows of KM_DP elements, zero-padded.
    extern "C" __global__ void km_pad_rows(const act_t* src, act_t* dst, long long rows, int d) {
        const long long total = rows * KM_DP;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / KM_DP;
            const int c = (int)(i - r * KM_DP);
            if (c < d) dst[i] = src[r * d + c]; else st(dst, i, 0.0f);
        }
    }

    // One warp per padded centroid row: the act_t copy (zero rows past k) and its bias,
    // -0.5 * |c|^2 when euclidean, 0 otherwise, -inf for padding rows.
    template <typename T>
    __device__ __forceinline__ void km_prepare(const T* c, int k, int kp, int d, int euclidean, act_t* out, float* bias) {
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
        if (row >= kp) return;
        float sum = 0.0f;
        for (int j = lane; j < KM_DP; j += 32) {
            const float v = (row < k && j < d) ? ld(c, (long long)row * d + j) : 0.0f;
            sum += v * v;
            st(out, (long long)row * KM_DP + j, v);
        }
        sum = warp_sum(sum);
        if (lane == 0) bias[row] = row < k ? (euclidean ? -0.5f * sum : 0.0f) : -CG_INF;
    }
    extern "C" __global__ void km_prepare_f32(const float* c, int k, int kp, int d, int euclidean, act_t* out, float* bias) {
        km_prepare(c, k, kp, d, euclidean, out, bias);
    }
    extern "C" __global__ void km_prepare_act(const act_t* c, int k, int kp, int d, int euclidean, act_t* out, float* bias) {
        km_prepare(c, k, kp, d, euclidean, out, bias);
    }

    // Portable fused assignment: 256 threads, 64 vectors x 64 centroids a tile, 4 x 4 scores a thread
    // (fp32 FMA), d in chunks of 16 through shared memory; running (best, index) per row in registers.
    extern "C" __global__ void __launch_bounds__(256) km_assign_plain(const act_t* x, long long n, const act_t* c,
                                                                      const float* bias, int kp, int* out) {
        __shared__ float As[64][17];
        __shared__ float Bs[64][17];
        const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
        const long long row0 = (long long)blockIdx.x * 64;
        float best[4];
        int index[4];
    #pragma unroll
        for (int r = 0; r < 4; r++) { best[r] = -CG_INF; index[r] = 0; }
        for (int col0 = 0; col0 < kp; col0 += 64) {
            float acc[4][4];
    #pragma unroll
            for (int r = 0; r < 4; r++) {
    #pragma unroll
                for (int q = 0; q < 4; q++) acc[r][q] = 0.0f;
            }
            for (int k0 = 0; k0 < KM_DP; k0 += 16) {
                __syncthreads();
                for (int e = tid; e < 64 * 16; e += 256) {
                    const int r = e >> 4, kk = e & 15;
                    const long long row = row0 + r;
                    As[r][kk] = row < n ? ld(x, row * KM_DP + k0 + kk) : 0.0f;
                    Bs[r][kk] = ld(c, (long long)(col0 + r) * KM_DP + k0 + kk);
                }
                __syncthreads();
    #pragma unroll
                for (int kk = 0; kk < 16; kk++) {
                    float a[4], b[4];
    #pragma unroll
                    for (int r = 0; r < 4; r++) a[r] = As[ty + 16 * r][kk];
    #pragma unroll
                    for (int q = 0; q < 4; q++) b[q] = Bs[tx + 16 * q][kk];
    #pragma unroll
                    for (int r = 0; r < 4; r++) {
    #pragma unroll
                        for (int q = 0; q < 4; q++) acc[r][q] += a[r] * b[q];
                    }
                }
            }
            // Columns visited in increasing order: a strict > keeps the smallest index among ties.
    #pragma unroll
            for (int q = 0; q < 4; q++) {
                const int col = col0 + tx + 16 * q;
                const float b = bias[col];
    #pragma unroll
                for (int r = 0; r < 4; r++) {
                    const float v = acc[r][q] + b;
                    if (v > best[r]) { best[r] = v; index[r] = col; }
                }
            }
        }
    #pragma unroll
        for (int r = 0; r < 4; r++) {
            cg_best_across_lanes(best[r], index[r], 16);
            const long long row = row0 + ty + 16 * r;
            if (tx == 0 && row < n) out[row] = index[r];
        }
    }

    #if CG_BF16
    // Tensor-core fused assignment. A block holds CG_KM_WM * 32 vectors (all KM_DP columns) in shared
    // memory and walks every 128-centroid tile: warp (wm, wn) scores its 32 vectors x 64 centroids with
    // m16n8k16 bf16 MMAs whose accumulators start at the centroid's bias, then folds them into a running
    // (best, index) per row. While a tile is scored the next one is already loading into registers
    // (when it fits in 8 x 16 bytes a thread); no score leaves the registers. With two centroid buffers
    // (CG_KM_NB 2) the next tile is stored into the other buffer while this one is scored: one barrier a
    // tile instead of two. Up to 64 dimensions the vector fragments stay in registers for the whole
    // block; centroid fragments are read with ldmatrix, two 8-centroid blocks at a time.
    #ifndef CG_KM_NB
    #define CG_KM_NB 1
    #endif
    #define KM_THREADS (64 * CG_KM_WM)
    #define KM_BM (32 * CG_KM_WM)
    #define KM_BN 128
    #define KM_PF ((KM_BN * KM_CH + KM_THREADS - 1) / KM_THREADS)
    #define KM_PREFETCH (KM_PF <= 8)
    #define KM_KS (KM_DP / 16)
    #define KM_AREG (KM_DP <= 64)

    // The A fragments (two 16-row blocks) of k-step ks for warp row wm.
    __device__ __forceinline__ void km_a_frag(const unsigned short* As, int ks, int wm, int g, int t, unsigned (*a)[4]) {
    #pragma unroll
        for (int i = 0; i < 2; i++) {
            const int ar = wm * 32 + i * 16 + g;
            a[i][0] = *(const unsigned*)&As[ar * KM_SP + ks * 16 + 2 * t];
            a[i][1] = *(const unsigned*)&As[(ar + 8) * KM_SP + ks * 16 + 2 * t];
            a[i][2] = *(const unsigned*)&As[ar * KM_SP + ks * 16 + 2 * t + 8];
            a[i][3] = *(const unsigned*)&As[(ar + 8) * KM_SP + ks * 16 + 2 * t + 8];
        }
    }

    // One k-step of a warp's 32 x 64 tile of scores: the A fragments `a` (two 16-row blocks) against centroid rows
    // nBase .. nBase + 63 of `Bs`. One ldmatrix gives two 8-centroid blocks' fragments: registers 0, 1 are block 2jp's
    // (b0, b1), 2, 3 block 2jp + 1's.
    __device__ __forceinline__ void km_mma_step(float (*acc)[8][4], unsigned (*a)[4], const unsigned short* Bs, int nBase, int ks, int lane) {
    #pragma unroll
        for (int jp = 0; jp < 4; jp++) {
            unsigned b[4];
            ldsm_x4(b, &Bs[(nBase + (2 * jp + (lane >> 4)) * 8 + (lane & 7)) * KM_SP + ks * 16 + ((lane >> 3) & 1) * 8]);
    #pragma unroll
            for (int u = 0; u < 2; u++) {
                mma_bf16_16816(acc[0][2 * jp + u], a[0][0], a[0][1], a[0][2], a[0][3], b[2 * u], b[2 * u + 1]);
                mma_bf16_16816(acc[1][2 * jp + u], a[1][0], a[1][1], a[1][2], a[1][3], b[2 * u], b[2 * u + 1]);
            }
        }
    }

    // A warp's 32 x 64 tile of scores folded into the running (best, index) of its four rows (best[2i + h]: row block i,
    // half h). Per row the tile's maximum (one fmax a score); only when it beats the running best (a few times in all
    // the tiles) is its column looked up: the smallest column holding it, so with the strict > the smallest index wins
    // among equal scores, as tiles come in increasing order. `column0` is the index of the thread's first column.
    __device__ __forceinline__ void km_fold_best(float (*acc)[8][4], float* best, int* index, int column0) {
    #pragma unroll
        for (int i = 0; i < 2; i++) {
    #pragma unroll
            for (int h = 0; h < 2; h++) {
                float m = acc[i][0][2 * h];
    #pragma unroll
                for (int j = 0; j < 8; j++) {
                    m = fmaxf(m, acc[i][j][2 * h]);
                    m = fmaxf(m, acc[i][j][2 * h + 1]);
                }
                if (m > best[2 * i + h]) {
                    int found = 0;
    #pragma unroll
                    for (int j = 7; j >= 0; j--) {
                        if (acc[i][j][2 * h + 1] == m) found = j * 8 + 1;
                        if (acc[i][j][2 * h] == m) found = j * 8;
                    }
                    best[2 * i + h] = m;
                    index[2 * i + h] = column0 + found;
                }
            }
        }
    }

    // Centroid tile `col0` into `dst`: from the prefetch registers (which then take tile `next`, when
    // next >= 0) or, without prefetching, straight from global memory.
    __device__ __forceinline__ void km_stage(unsigned short* dst, const unsigned short* c, int col0, int next, uint4* pf) {
    #if KM_PREFETCH
    #pragma unroll
        for (int p = 0; p < KM_PF; p++) {
            const int e = threadIdx.x + p * KM_THREADS;
            if (e < KM_BN * KM_CH) *(uint4*)&dst[(e / KM_CH) * KM_SP + (e % KM_CH) * 8] = pf[p];
        }
        if (next >= 0) {
    #pragma unroll
            for (int p = 0; p < KM_PF; p++) {
                const int e = threadIdx.x + p * KM_THREADS;
                if (e < KM_BN * KM_CH) pf[p] = *(const uint4*)(c + (long long)(next + e / KM_CH) * KM_DP + (e % KM_CH) * 8);
            }
        }
    #else
        for (int e = threadIdx.x; e < KM_BN * KM_CH; e += KM_THREADS) {
            *(uint4*)&dst[(e / KM_CH) * KM_SP + (e % KM_CH) * 8] = *(const uint4*)(c + (long long)(col0 + e / KM_CH) * KM_DP + (e % KM_CH) * 8);
        }
    #endif
    }

    extern "C" __global__ void __launch_bounds__(KM_THREADS, CG_KM_MINB) km_assign_mma(const unsigned short* x, long long n,
            const unsigned short* c, const float* bias, int kp, int* out) {
        extern __shared__ __align__(16) unsigned short km_smem[];
        unsigned short* As = km_smem;
        unsigned short* Bbase = km_smem + KM_BM * KM_SP;
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
        const int wm = warp % CG_KM_WM, wn = warp / CG_KM_WM;
        const long long row0 = (long long)blockIdx.x * KM_BM;
        uint4 zero;
        zero.x = 0u; zero.y = 0u; zero.z = 0u; zero.w = 0u;
        for (int e = tid; e < KM_BM * KM_CH; e += KM_THREADS) {
            const int r = e / KM_CH, ch = e - r * KM_CH;
            const long long row = row0 + r;
            *(uint4*)&As[r * KM_SP + ch * 8] = row < n ? *(const uint4*)(x + row * KM_DP + ch * 8) : zero;
        }
        uint4 pf[KM_PREFETCH ? KM_PF : 1];
    #if KM_PREFETCH
    #pragma unroll
        for (int p = 0; p < KM_PF; p++) {
            const int e = tid + p * KM_THREADS;
            pf[p] = e < KM_BN * KM_CH ? *(const uint4*)(c + (long long)(e / KM_CH) * KM_DP + (e % KM_CH) * 8) : zero;
        }
    #endif
        float best[4];
        int index[4];
    #pragma unroll
        for (int r = 0; r < 4; r++) { best[r] = -CG_INF; index[r] = 0; }
        const int tiles = kp / KM_BN;
    #if CG_KM_NB == 2
        km_stage(Bbase, c, 0, tiles > 1 ? KM_BN : -1, pf);
    #endif
    #if KM_AREG
        __syncthreads();
        unsigned af[KM_KS][2][4];
    #pragma unroll
        for (int ks = 0; ks < KM_KS; ks++) km_a_frag(As, ks, wm, g, t, af[ks]);
    #endif
        for (int tile = 0; tile < tiles; tile++) {
            const int col0 = tile * KM_BN;
            __syncthreads();
    #if CG_KM_NB == 2
            const unsigned short* Bs = Bbase + (tile & 1) * KM_BN * KM_SP;
            if (tile + 1 < tiles) km_stage(Bbase + ((tile + 1) & 1) * KM_BN * KM_SP, c, col0 + KM_BN, tile + 2 < tiles ? col0 + 2 * KM_BN : -1, pf);
    #else
            km_stage(Bbase, c, col0, tile + 1 < tiles ? col0 + KM_BN : -1, pf);
            __syncthreads();
            const unsigned short* Bs = Bbase;
    #endif
            float acc[2][8][4];
    #pragma unroll
            for (int j = 0; j < 8; j++) {
                const float2 b = *(const float2*)(bias + col0 + wn * 64 + j * 8 + 2 * t);
    #pragma unroll
                for (int i = 0; i < 2; i++) { acc[i][j][0] = b.x; acc[i][j][1] = b.y; acc[i][j][2] = b.x; acc[i][j][3] = b.y; }
            }
    #pragma unroll
            for (int ks = 0; ks < KM_KS; ks++) {
    #if KM_AREG
                km_mma_step(acc, af[ks], Bs, wn * 64, ks, lane);
    #else
                unsigned a[2][4];
                km_a_frag(As, ks, wm, g, t, a);
                km_mma_step(acc, a, Bs, wn * 64, ks, lane);
    #endif
            }
            km_fold_best(acc, best, index, col0 + wn * 64 + 2 * t);
        }
        // The four lanes of a row (t = 0..3), then the two column warps through shared memory.
    #pragma unroll
        for (int r = 0; r < 4; r++) cg_best_across_lanes(best[r], index[r], 4);
        __syncthreads();
        float* rv = (float*)Bbase;
        int* ri = (int*)(rv + 2 * KM_BM);
        if (t == 0) {
    #pragma unroll
            for (int r = 0; r < 4; r++) {
                const int local = wm * 32 + (r >> 1) * 16 + (r & 1) * 8 + g;
                rv[local * 2 + wn] = best[r];
                ri[local * 2 + wn] = index[r];
            }
        }
        __syncthreads();
        for (int local = tid; local < KM_BM; local += KM_THREADS) {
            float v = rv[local * 2];
            int i = ri[local * 2];
            cg_better(v, i, rv[local * 2 + 1], ri[local * 2 + 1]);
            const long long row = row0 + local;
            if (row < n) out[row] = i;
        }
    }
    #endif

    // Lloyd's sums: every element of every point added to its centroid's row, and the point counted once. The
    // sums are fixed point (each element rounded to 2^-24, added as a 64-bit integer): integer addition gives the
    // same sum whatever order the atomics land in, so a build's centroids no longer depend on the GPU's
    // scheduling (fp32 atomics made two builds of one corpus differ; docs/PERFORMANCE.md, session 20). Room:
    // |x| · n < 2^39 (unit vectors: half a trillion points).
    #define KM_FIXED_SCALE 16777216.0f
    extern "C" __global__ void km_accumulate(const float* x, long long n, int d, const int* labels, unsigned long long* sums, int* counts) {
        const long long total = n * d;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / d;
            const int j = (int)(i - r * d);
            const int label = labels[r];
            atomicAdd(&sums[(long long)label * d + j], (unsigned long long)llrintf(x[i] * KM_FIXED_SCALE));
            if (j == 0) atomicAdd(&counts[label], 1);
        }
    }

    // The training sample gathered from rows already on the device: row i of dst is row idx[i] of src
    // (fp32, stride d; the CPU path's sample, drawn by the host, with no second copy of the rows).
    extern "C" __global__ void km_gather_rows(const float* src, const int* idx, long long n, int d, float* dst) {
        const long long total = n * d;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / d;
            const int j = (int)(i - r * d);
            dst[i] = src[(long long)idx[r] * d + j];
        }
    }

    // -0.5 |c|^2 of each fp32 row (stride d), summed in double in index order: the host's own sum, bit for bit (each
    // square of a float is exact in double, so a fused multiply-add rounds as the separate add would).
    extern "C" __global__ void km_half_sq_norms(const float* c, long long rows, int d, float* out) {
        for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x) {
            double s = 0.0;
            for (int j = 0; j < d; j++) {
                const double v = c[r * d + j];
                s += v * v;
            }
            out[r] = (float)(-0.5 * s);
        }
    }

    // km_gather_rows from act_t rows of KM_DP elements (the rows a device holds as bf16 for the assignment) to fp32
    // rows of stride d: row i of dst is row idx[i] of src, or row i where idx is null (every row, in order).
    extern "C" __global__ void km_gather_rows_act(const act_t* src, const int* idx, long long n, int d, float* dst) {
        const long long total = n * d;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / d;
            const int j = (int)(i - r * d);
            dst[i] = ld(src, (idx ? (long long)idx[r] : r) * KM_DP + j);
        }
    }

    // The residual codec's bytes of rows on the device, so that only codes and packed buckets come back: row r's
    // residual x − c[code r] in fp32 (the CPU's ck_residual_encode computes the same difference, so the same bits),
    // each value's bucket the number of the 2^nbits − 1 ascending cutoffs strictly below it (a binary search, as the
    // CPU's), 8 / nbits buckets a byte, the first in the lowest bits: d · nbits / 8 bytes a row, one thread a byte.
    extern "C" __global__ void km_residual_pack(const float* x, const int* codes, long long n, int d, const float* centroids,
                                                const float* cutoffs, int nbits, unsigned char* out) {
        const int per = 8 / nbits, bytes = d / per, half = 1 << (nbits - 1);
        const long long total = n * bytes;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / bytes;
            const int j = (int)(i - r * bytes);
            const float* xr = x + r * d + j * per;
            const float* c = centroids + (long long)codes[r] * d + j * per;
            unsigned byte = 0;
            for (int e = 0; e < per; e++) {
                const float v = xr[e] - c[e];
                int b = 0;
                for (int step = half; step > 0; step >>= 1) b += cutoffs[b + step - 1] < v ? step : 0;
                byte |= (unsigned)b << (e * nbits);
            }
            out[i] = (unsigned char)byte;
        }
    }

    // Each centroid moves to the mean of its points; an empty one stays where it is (as on the CPU).
    // (The sums are km_accumulate's fixed point.)
    extern "C" __global__ void km_update(float* centroids, const unsigned long long* sums, const int* counts, int k, int d) {
        const long long total = (long long)k * d;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
            const int count = counts[i / d];
            if (count > 0) centroids[i] = (float)((double)(long long)sums[i] / ((double)KM_FIXED_SCALE * (double)count));
        }
    }

    // ---- Coarse-to-fine assignment (fp32 FMA, portable): the GPU form of the CPU's grouped search. ----
    // Each vector scores the G group centres and keeps its p best groups (km_c2f_top, with per-group
    // counts); the (vector, probe) entries are bucketed by group (km_c2f_scan, km_c2f_scatter); each
    // block then scores one 128-entry tile of a group's entries against that group's centroids, stored
    // group by group (km_c2f_fine); the best of a vector's p probes is its code (km_c2f_reduce). Vectors
    // are fp32 rows of stride d; centres and centroids fp32 rows of stride d with their biases
    // (-0.5 |c|^2). An entry is v * p + r (probe r of vector v). Scores and ties as on the CPU: higher
    // score, then the smaller centroid index.
    #define KM_PMAX 8
    #define KM_GMAX 2048
    #define KM_CT (KM_DP <= 128 ? 32 : 8)
    #define KM_FINE_ROWS 128

    // A grouping's member table made on the device, as the host makes it (`KMeans.group`), in two kernels. This one (one
    // block): each group's member count (shared atomics), its start offsets[g] (offsets[groups] = k), and an empty
    // group's centre bias set to -inf, so the grouped search never probes it, as if the host had dropped it.
    extern "C" __global__ void __launch_bounds__(1024) km_group_offsets(const int* labels, int k, int groups, int* offsets, float* center_bias) {
        __shared__ int count[KM_GMAX];
        for (int g = threadIdx.x; g < groups; g += blockDim.x) count[g] = 0;
        __syncthreads();
        for (int j = threadIdx.x; j < k; j += blockDim.x) atomicAdd(&count[labels[j]], 1);
        __syncthreads();
        for (int g = threadIdx.x; g < groups; g += blockDim.x) {
            if (count[g] == 0) center_bias[g] = -CG_INF;
        }
        if (threadIdx.x == 0) {
            int run = 0;
            for (int g = 0; g < groups; g++) { offsets[g] = run; run += count[g]; }
            offsets[groups] = run;
        }
    }

    // Then one block of 256 threads a group g: the centroids labelled g listed from offsets[g] in increasing index order.
    // The labels are read 1,024 at a time (4 consecutive a thread), and each thread's matches placed by a block-wide
    // prefix sum of the matches before it (was one thread a group scanning every label: 2.5 ms at K = 32,768, session 29).
    extern "C" __global__ void __launch_bounds__(256) km_group_members(const int* labels, int k, const int* offsets, int* members) {
        __shared__ int scan[2][256];
        const int g = blockIdx.x, tid = threadIdx.x;
        int at = offsets[g];
        for (int j0 = 0; j0 < k; j0 += 1024) {
            const int j = j0 + tid * 4;
            int mine = 0;
            for (int e = 0; e < 4; e++) mine += j + e < k && labels[j + e] == g;
            // Inclusive sums over the threads (Hillis-Steele, two buffers).
            int buf = 0;
            scan[0][tid] = mine;
            __syncthreads();
            for (int step = 1; step < 256; step <<= 1) {
                scan[buf ^ 1][tid] = scan[buf][tid] + (tid >= step ? scan[buf][tid - step] : 0);
                buf ^= 1;
                __syncthreads();
            }
            int position = at + scan[buf][tid] - mine;
            for (int e = 0; e < 4; e++) {
                if (j + e < k && labels[j + e] == g) members[position++] = j + e;
            }
            at += scan[buf][255];
            __syncthreads();  // every thread has read this chunk's sums before the next chunk writes them
        }
    }

    // The p-th best score a thread keeps (ts[p - 1], its list sorted best first): a new score enters only above it.
    __device__ __forceinline__ float km_top_floor(const float* ts, int p) {
        float f = ts[0];
    #pragma unroll
        for (int r = 1; r < KM_PMAX; r++) {
            if (r < p) f = ts[r];
        }
        return f;
    }

    // Keeps a thread's best (score, group) pairs in KM_PMAX slots sorted best first, of which the caller reads the first p:
    // a score enters when it beats the p-th best, written to the last slot and bubbled up past every smaller one (the
    // slots past p hold no larger scores, since the list stays sorted); among equal scores the one offered first (the
    // smaller group) stays ahead. The first p slots are what keeping all KM_PMAX best would leave there, ties included.
    __device__ __forceinline__ void km_top_offer(float* ts, int* ti, float s, int id, int p) {
        if (s > km_top_floor(ts, p)) {
            ts[KM_PMAX - 1] = s;
            ti[KM_PMAX - 1] = id;
    #pragma unroll
            for (int j = KM_PMAX - 1; j > 0; j--) {
                if (ts[j] > ts[j - 1]) {
                    const float fs = ts[j]; ts[j] = ts[j - 1]; ts[j - 1] = fs;
                    const int fi = ti[j]; ti[j] = ti[j - 1]; ti[j - 1] = fi;
                }
            }
        }
    }

    // Rows c0 .. c0 + KM_CT - 1 (of `rows`) of a stride-d fp32 table into a zero-padded shared tile.
    __device__ __forceinline__ void km_load_tile(float (*tile)[KM_DP], const float* src, int c0, int rows, int d) {
        for (int e = threadIdx.x; e < KM_CT * KM_DP; e += blockDim.x) {
            const int r = e / KM_DP, q = e - r * KM_DP;
            tile[r][q] = (c0 + r < rows && q < d) ? src[(long long)(c0 + r) * d + q] : 0.0f;
        }
    }

    // The vector's values: up to 128 dimensions all KM_DP of them in registers, loaded once per thread
    // (16-byte loads when d is a multiple of 4; per-thread rows are not coalesced, so loading them once
    // rather than per tile is what keeps the L1 off the critical path); wider rows in chunks of 16 per tile.
    #define KM_XREG (KM_DP <= 128)
    #define KM_XN (KM_XREG ? KM_DP : 16)
    __device__ __forceinline__ void km_load_x(const float* xv, bool live, int d, float* xr) {
    #if KM_XREG
        if (live && (d & 3) == 0) {
    #pragma unroll
            for (int q = 0; q < KM_DP; q += 4) {
                float4 f;
                f.x = 0.0f; f.y = 0.0f; f.z = 0.0f; f.w = 0.0f;
                if (q < d) f = *(const float4*)(xv + q);
                xr[q] = f.x; xr[q + 1] = f.y; xr[q + 2] = f.z; xr[q + 3] = f.w;
            }
        } else {
    #pragma unroll
            for (int q = 0; q < KM_DP; q++) xr[q] = (live && q < d) ? xv[q] : 0.0f;
        }
    #endif
    }

    // acc[j] = x . tile row j for the KM_CT rows of the tile (16-byte broadcast reads of the tile); x is
    // one stride-d row (zero where !live), in `xr` when KM_XREG.
    __device__ __forceinline__ void km_tile_dots(const float* xv, bool live, int d, const float* xr, const float (*tile)[KM_DP], float* acc) {
    #pragma unroll
        for (int j = 0; j < KM_CT; j++) acc[j] = 0.0f;
    #if KM_XREG
    #pragma unroll
        for (int q = 0; q < KM_DP; q += 4) {
    #pragma unroll
            for (int j = 0; j < KM_CT; j++) {
                const float4 t = *(const float4*)&tile[j][q];
                acc[j] += xr[q] * t.x;
                acc[j] += xr[q + 1] * t.y;
                acc[j] += xr[q + 2] * t.z;
                acc[j] += xr[q + 3] * t.w;
            }
        }
    #else
        for (int q0 = 0; q0 < KM_DP; q0 += 16) {
            float xc[16];
    #pragma unroll
            for (int u = 0; u < 16; u++) xc[u] = (live && q0 + u < d) ? xv[q0 + u] : 0.0f;
    #pragma unroll
            for (int j = 0; j < KM_CT; j++) {
    #pragma unroll
                for (int u = 0; u < 16; u++) acc[j] += xc[u] * tile[j][q0 + u];
            }
        }
    #endif
    }

    // Writes a vector's p best groups to top[v * p + r] and counts each in the block's histogram, then adds the
    // block's histogram to the global counts (one atomic per group and block).
    __device__ __forceinline__ void km_c2f_count_top(const float* ts, const int* ti, bool live, long long v, int groups, int p,
            int* top, int* counts, int* hist) {
        if (live) {
    #pragma unroll
            for (int r = 0; r < KM_PMAX; r++) {
                if (r < p) {
                    top[v * p + r] = ti[r];
                    atomicAdd(&hist[ti[r]], 1);
                }
            }
        }
        __syncthreads();
        for (int g = threadIdx.x; g < groups; g += blockDim.x) {
            if (hist[g] > 0) atomicAdd(&counts[g], hist[g]);
        }
    }

    // One thread a vector: the p best of `groups` centres, written to top[v * p + r], and each chosen
    // group counted (a block histogram in shared memory, one global atomic per group and block).
    extern "C" __global__ void __launch_bounds__(128) km_c2f_top(const float* x, long long n, int d, const float* centers,
            const float* cbias, int groups, int p, int* top, int* counts) {
        __shared__ __align__(16) float Cs[KM_CT][KM_DP];
        __shared__ int hist[KM_GMAX];
        const int tid = threadIdx.x;
        for (int g = tid; g < groups; g += blockDim.x) hist[g] = 0;
        const long long v = (long long)blockIdx.x * blockDim.x + tid;
        const bool live = v < n;
        const float* xv = x + (live ? v : 0) * d;
        float xr[KM_XN];
        km_load_x(xv, live, d, xr);
        float ts[KM_PMAX];
        int ti[KM_PMAX];
    #pragma unroll
        for (int r = 0; r < KM_PMAX; r++) { ts[r] = -CG_INF; ti[r] = 0; }
        for (int c0 = 0; c0 < groups; c0 += KM_CT) {
            __syncthreads();
            km_load_tile(Cs, centers, c0, groups, d);
            __syncthreads();
            float acc[KM_CT];
            km_tile_dots(xv, live, d, xr, Cs, acc);
    #pragma unroll
            for (int j = 0; j < KM_CT; j++) {
                if (c0 + j < groups) km_top_offer(ts, ti, acc[j] + cbias[c0 + j], c0 + j, p);
            }
        }
        km_c2f_count_top(ts, ti, live, v, groups, p, top, counts, hist);
    }

    // One block of 256 threads: exclusive sums of the group counts (entry starts, copied to the
    // scatter cursors) and of their 128-entry tiles (the fine kernel's block of each tile).
    extern "C" __global__ void __launch_bounds__(256) km_c2f_scan(const int* counts, int groups, int* starts, int* cursor, int* tile_start) {
        __shared__ int part[256];
        __shared__ int part_tiles[256];
        const int tid = threadIdx.x;
        const int per = (groups + 255) / 256;
        const int g0 = min(groups, tid * per), g1 = min(groups, g0 + per);
        int s = 0, t = 0;
        for (int g = g0; g < g1; g++) { s += counts[g]; t += (counts[g] + KM_FINE_ROWS - 1) / KM_FINE_ROWS; }
        part[tid] = s;
        part_tiles[tid] = t;
        __syncthreads();
        if (tid == 0) {
            int run = 0, run_tiles = 0;
            for (int i = 0; i < 256; i++) {
                const int a = part[i], b = part_tiles[i];
                part[i] = run; part_tiles[i] = run_tiles;
                run += a; run_tiles += b;
            }
            starts[groups] = run;
            tile_start[groups] = run_tiles;
        }
        __syncthreads();
        s = part[tid];
        t = part_tiles[tid];
        for (int g = g0; g < g1; g++) {
            starts[g] = s;
            cursor[g] = s;
            tile_start[g] = t;
            s += counts[g];
            t += (counts[g] + KM_FINE_ROWS - 1) / KM_FINE_ROWS;
        }
    }

    // One block a group: each of its fine tiles' group into tile_group[tile], so a fine block finds its group in one load
    // (a binary search of tile_start was eight dependent loads at the head of every block; session 30).
    extern "C" __global__ void __launch_bounds__(128) km_c2f_tile_groups(const int* tile_start, int* tile_group) {
        const int g = blockIdx.x;
        for (int t = tile_start[g] + threadIdx.x; t < tile_start[g + 1]; t += blockDim.x) tile_group[t] = g;
    }

    // 256 vectors' entries a block into their groups' ranges of `list`: ranks within the block from a
    // shared histogram, one global atomic per group and block for the block's range.
    extern "C" __global__ void __launch_bounds__(256) km_c2f_scatter(const int* top, long long n, int p, int groups, int* cursor, int* list) {
        __shared__ int hist[KM_GMAX];
        const int tid = threadIdx.x;
        for (int g = tid; g < groups; g += blockDim.x) hist[g] = 0;
        __syncthreads();
        const long long e0 = (long long)blockIdx.x * 256 * p, total = n * p;
        int group[KM_PMAX], rank[KM_PMAX];
    #pragma unroll
        for (int j = 0; j < KM_PMAX; j++) {
            const long long e = e0 + tid + 256 * j;
            group[j] = -1;
            rank[j] = 0;
            if (j < p && e < total) {
                group[j] = top[e];
                rank[j] = atomicAdd(&hist[group[j]], 1);
            }
        }
        __syncthreads();
        for (int g = tid; g < groups; g += blockDim.x) {
            const int c = hist[g];
            if (c > 0) hist[g] = atomicAdd(&cursor[g], c);
        }
        __syncthreads();
    #pragma unroll
        for (int j = 0; j < KM_PMAX; j++) {
            if (group[j] >= 0) list[hist[group[j]] + rank[j]] = (int)(e0 + tid + 256 * j);
        }
    }

    // One block of KM_FINE_ROWS threads per 128-entry tile of a group's entries: the group's centroids
    // (rows goff[g] .. goff[g + 1] of the group-ordered table `gc`, original indices `gidx`) in tiles
    // through shared memory, one entry a thread; its best (score, centroid index) goes to the entry's slot.
    extern "C" __global__ void __launch_bounds__(KM_FINE_ROWS) km_c2f_fine(const float* x, int d, int p, const float* gc, const float* gbias,
            const int* gidx, const int* goff, const int* starts, const int* tile_start, const int* tile_group, int groups, const int* list,
            float* score, int* label) {
        __shared__ __align__(16) float Cs[KM_CT][KM_DP];
        __shared__ float Bs[KM_CT];
        __shared__ int Is[KM_CT];
        const int b = blockIdx.x;
        if (b >= tile_start[groups]) return;
        const int g = tile_group[b];
        const int e = starts[g] + (b - tile_start[g]) * KM_FINE_ROWS + threadIdx.x;
        const bool live = e < starts[g + 1];
        const int entry = live ? list[e] : 0;
        const float* xv = x + (long long)(entry / p) * d;
        float xr[KM_XN];
        km_load_x(xv, live, d, xr);
        float best = -CG_INF;
        int bi = 0x7fffffff;
        const int m0 = goff[g], m1 = goff[g + 1];
        for (int c0 = m0; c0 < m1; c0 += KM_CT) {
            __syncthreads();
            km_load_tile(Cs, gc, c0, m1, d);
            for (int j = threadIdx.x; j < KM_CT; j += blockDim.x) {
                Bs[j] = c0 + j < m1 ? gbias[c0 + j] : -CG_INF;
                Is[j] = c0 + j < m1 ? gidx[c0 + j] : 0x7fffffff;
            }
            __syncthreads();
            float acc[KM_CT];
            km_tile_dots(xv, live, d, xr, Cs, acc);
    #pragma unroll
            for (int j = 0; j < KM_CT; j++) {
                const float s = acc[j] + Bs[j];
                const int id = Is[j];
                if (s > best || (s == best && id < bi)) { best = s; bi = id; }
            }
        }
        if (live) { score[entry] = best; label[entry] = bi; }
    }

    #if CG_BF16 && KM_XREG
    // Tensor-core form of km_c2f_fine (bf16 builds, up to 128 dimensions): one block of four warps per 128-entry
    // tile of a group's entries. The entries' vectors (act_t rows of KM_DP, row list[e] / p) are gathered into
    // shared memory; the group's centroids (rows goff[g] .. goff[g + 1] of the group-ordered act_t table `gc`)
    // arrive in tiles of KM_FN; warp w scores its 32 entries x KM_FN centroids with m16n8k16 MMAs whose
    // accumulators start at the centroid's bias (-inf past the group's end) and keeps a running (best,
    // position) per entry, as km_assign_mma does. A group's members are stored in increasing index order
    // (uploadGroupTables sorts them), so the smallest position among equal scores is the smallest index.
    // Scores are fp32 sums of exact bf16 products: what the exhaustive bf16 search computes for the same pair.
    #define KM_FN 64
    // KM_FN rows of a group-ordered act_t table (rows c0 .. end - 1, zero past `end`) and their biases (-inf past `end`)
    // fetched into registers by a block of KM_FINE_ROWS threads (KM_CH / 2 16-byte pieces each, the bias in the first
    // KM_FN threads), then stored into a shared tile: the fetch of the next tile overlaps the MMAs on this one.
    #define KM_TPF (KM_FN * KM_CH / KM_FINE_ROWS)
    // Whether the next tile's fetch is held in registers across this tile's MMAs: up to 64 dimensions (4 pieces a
    // thread). Wider rows fetch each tile just before storing it (8 pieces and the MMAs' registers would spill).
    #define KM_PIPE (KM_TPF <= 4)
    __device__ __forceinline__ void km_fetch_rows(uint4* pf, float* pb, const unsigned short* c, const float* bias, int c0, int end) {
    #pragma unroll
        for (int u = 0; u < KM_TPF; u++) {
            const int i = threadIdx.x + u * KM_FINE_ROWS, r = i / KM_CH, ch = i - r * KM_CH;
            uint4 v;
            v.x = 0u; v.y = 0u; v.z = 0u; v.w = 0u;
            if (c0 + r < end) v = *(const uint4*)(c + (long long)(c0 + r) * KM_DP + ch * 8);
            pf[u] = v;
        }
        *pb = (int)threadIdx.x < KM_FN && c0 + (int)threadIdx.x < end ? bias[c0 + threadIdx.x] : -CG_INF;
    }
    __device__ __forceinline__ void km_put_rows(unsigned short* Bs, float* Bb, const uint4* pf, float pb) {
    #pragma unroll
        for (int u = 0; u < KM_TPF; u++) {
            const int i = threadIdx.x + u * KM_FINE_ROWS, r = i / KM_CH, ch = i - r * KM_CH;
            *(uint4*)&Bs[r * KM_SP + ch * 8] = pf[u];
        }
        if ((int)threadIdx.x < KM_FN) Bb[threadIdx.x] = pb;
    }

    // Tensor-core form of km_c2f_top: one block of four warps per 128 vectors (act_t rows of KM_DP), the group centres
    // (act_t rows, zero past `groups`) in tiles of KM_FN, the next fetched while this one is scored (KM_PIPE); warp w scores
    // its 32 vectors x KM_FN centres with m16n8k16 MMAs into shared memory, then each thread offers its vector's scores
    // (score + bias, group) to its p best, in increasing group order (so among equal scores the smaller group stays
    // ahead), as km_c2f_top does. Only the scores above the p-th best at the tile's start are offered, found first
    // with one compare each into a bit mask: most are below it, and offering each one was ~100 instructions per
    // vector and centre (the warp runs an offer whenever any lane's score enters; ncu, session 29).
    extern "C" __global__ void __launch_bounds__(KM_FINE_ROWS) km_c2f_top_mma(const unsigned short* x, long long n, const unsigned short* centers,
            const float* cbias, int groups, int p, int* top, int* counts) {
        extern __shared__ __align__(16) unsigned short km_smem[];
        unsigned short* As = km_smem;
        unsigned short* Bs = km_smem + KM_FINE_ROWS * KM_SP;
        float* S = (float*)(Bs + KM_FN * KM_SP);  // KM_FINE_ROWS rows of KM_FN + 1 scores (the 1: no bank conflicts row-wise)
        __shared__ float Bb[KM_FN];
        __shared__ int hist[KM_GMAX];
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, t = lane & 3;
        for (int g = tid; g < groups; g += KM_FINE_ROWS) hist[g] = 0;
        const long long v0 = (long long)blockIdx.x * KM_FINE_ROWS;
        uint4 pf[KM_TPF];
        float pb;
        km_fetch_rows(pf, &pb, centers, cbias, 0, groups);
        {
            // The block's 128 consecutive rows: every load issued before any store.
            uint4 rows[KM_CH];
    #pragma unroll
            for (int u = 0; u < KM_CH; u++) {
                const int i = tid + u * KM_FINE_ROWS, r = i / KM_CH, ch = i - r * KM_CH;
                rows[u].x = 0u; rows[u].y = 0u; rows[u].z = 0u; rows[u].w = 0u;
                if (v0 + r < n) rows[u] = *(const uint4*)(x + (v0 + r) * KM_DP + ch * 8);
            }
    #pragma unroll
            for (int u = 0; u < KM_CH; u++) {
                const int i = tid + u * KM_FINE_ROWS, r = i / KM_CH, ch = i - r * KM_CH;
                *(uint4*)&As[r * KM_SP + ch * 8] = rows[u];
            }
        }
        float ts[KM_PMAX];
        int ti[KM_PMAX];
    #pragma unroll
        for (int r = 0; r < KM_PMAX; r++) { ts[r] = -CG_INF; ti[r] = 0; }
        for (int c0 = 0; c0 < groups; c0 += KM_FN) {
            __syncthreads();
    #if !KM_PIPE
            if (c0 > 0) km_fetch_rows(pf, &pb, centers, cbias, c0, groups);
    #endif
            km_put_rows(Bs, Bb, pf, pb);
    #if KM_PIPE
            if (c0 + KM_FN < groups) km_fetch_rows(pf, &pb, centers, cbias, c0 + KM_FN, groups);
    #endif
            __syncthreads();
            float acc[2][8][4];
    #pragma unroll
            for (int i = 0; i < 2; i++) {
    #pragma unroll
                for (int j = 0; j < 8; j++) { acc[i][j][0] = 0.0f; acc[i][j][1] = 0.0f; acc[i][j][2] = 0.0f; acc[i][j][3] = 0.0f; }
            }
    #pragma unroll
            for (int ks = 0; ks < KM_KS; ks++) {
                unsigned a[2][4];
                km_a_frag(As, ks, warp, gq, t, a);
                km_mma_step(acc, a, Bs, 0, ks, lane);
            }
    #pragma unroll
            for (int i = 0; i < 2; i++) {
                const int r0 = warp * 32 + i * 16 + gq;
    #pragma unroll
                for (int j = 0; j < 8; j++) {
                    S[r0 * (KM_FN + 1) + j * 8 + 2 * t] = acc[i][j][0];
                    S[r0 * (KM_FN + 1) + j * 8 + 2 * t + 1] = acc[i][j][1];
                    S[(r0 + 8) * (KM_FN + 1) + j * 8 + 2 * t] = acc[i][j][2];
                    S[(r0 + 8) * (KM_FN + 1) + j * 8 + 2 * t + 1] = acc[i][j][3];
                }
            }
            __syncthreads();
            // Columns past `groups` have bias -inf (km_fetch_rows), so they never pass the floor.
            const float* row = S + tid * (KM_FN + 1);
            const float floor = km_top_floor(ts, p);
            unsigned want[KM_FN / 32];
    #pragma unroll
            for (int h = 0; h < KM_FN / 32; h++) {
                want[h] = 0u;
    #pragma unroll
                for (int j = 0; j < 32; j++) {
                    if (row[h * 32 + j] + Bb[h * 32 + j] > floor) want[h] |= 1u << j;
                }
            }
    #pragma unroll
            for (int h = 0; h < KM_FN / 32; h++) {
                while (want[h] != 0u) {
                    const int j = h * 32 + __ffs(want[h]) - 1;
                    want[h] &= want[h] - 1u;
                    km_top_offer(ts, ti, row[j] + Bb[j], c0 + j, p);
                }
            }
        }
        km_c2f_count_top(ts, ti, v0 + tid < n, v0 + tid, groups, p, top, counts, hist);
    }

    extern "C" __global__ void __launch_bounds__(KM_FINE_ROWS) km_c2f_fine_mma(const unsigned short* x, int p, const unsigned short* gc,
            const float* gbias, const int* gidx, const int* goff, const int* starts, const int* tile_start, const int* tile_group, int groups,
            const int* list, float* score, int* label) {
        extern __shared__ __align__(16) unsigned short km_smem[];
        unsigned short* As = km_smem;
        unsigned short* Bs = km_smem + KM_FINE_ROWS * KM_SP;
        __shared__ float Bb[KM_FN];
        const int b = blockIdx.x;
        if (b >= tile_start[groups]) return;
        const int g = tile_group[b];
        const int e0 = starts[g] + (b - tile_start[g]) * KM_FINE_ROWS, e1 = starts[g + 1];
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, t = lane & 3;
        const int m0 = goff[g], m1 = goff[g + 1];
        // The group's first centroid tile is fetched while the entries' rows are gathered (a thread a row, all its loads
        // issued before any store): the block's loads wait on memory once, not once per loop step.
        uint4 pf[KM_TPF];
        float pb;
        km_fetch_rows(pf, &pb, gc, gbias, m0, m1);
        {
            const bool live = e0 + tid < e1;
            const long long v = live ? list[e0 + tid] / p : 0;
            uint4 rows[KM_CH];
    #pragma unroll
            for (int ch = 0; ch < KM_CH; ch++) {
                rows[ch].x = 0u; rows[ch].y = 0u; rows[ch].z = 0u; rows[ch].w = 0u;
                if (live) rows[ch] = *(const uint4*)(x + v * KM_DP + ch * 8);
            }
    #pragma unroll
            for (int ch = 0; ch < KM_CH; ch++) *(uint4*)&As[tid * KM_SP + ch * 8] = rows[ch];
        }
        float best[4];
        int index[4];
    #pragma unroll
        for (int r = 0; r < 4; r++) { best[r] = -CG_INF; index[r] = 0x7fffffff; }
        for (int c0 = m0; c0 < m1; c0 += KM_FN) {
            __syncthreads();
    #if !KM_PIPE
            if (c0 > m0) km_fetch_rows(pf, &pb, gc, gbias, c0, m1);
    #endif
            km_put_rows(Bs, Bb, pf, pb);
    #if KM_PIPE
            if (c0 + KM_FN < m1) km_fetch_rows(pf, &pb, gc, gbias, c0 + KM_FN, m1);
    #endif
            __syncthreads();
            float acc[2][8][4];
    #pragma unroll
            for (int j = 0; j < 8; j++) {
                const float b0 = Bb[j * 8 + 2 * t], b1 = Bb[j * 8 + 2 * t + 1];
    #pragma unroll
                for (int i = 0; i < 2; i++) { acc[i][j][0] = b0; acc[i][j][1] = b1; acc[i][j][2] = b0; acc[i][j][3] = b1; }
            }
    #pragma unroll
            for (int ks = 0; ks < KM_KS; ks++) {
                unsigned a[2][4];
                km_a_frag(As, ks, warp, gq, t, a);
                km_mma_step(acc, a, Bs, 0, ks, lane);
            }
            // Positions, not indices: tiles come in increasing position, so the smallest position wins among equal scores.
            km_fold_best(acc, best, index, c0 + 2 * t);
        }
        // The four lanes of a row; lane t = 0 writes the entry's best score and centroid index.
    #pragma unroll
        for (int r = 0; r < 4; r++) cg_best_across_lanes(best[r], index[r], 4);
        if (t == 0) {
    #pragma unroll
            for (int r = 0; r < 4; r++) {
                const int e = e0 + warp * 32 + (r >> 1) * 16 + (r & 1) * 8 + gq;
                if (e < e1) {
                    const int entry = list[e];
                    score[entry] = best[r];
                    label[entry] = gidx[index[r]];
                }
            }
        }
    }
    #endif

    // Each vector's code: the best of its p probes' results (higher score, then the smaller index).
    extern "C" __global__ void km_c2f_reduce(const float* score, const int* label, long long n, int p, int* out) {
        for (long long v = blockIdx.x * (long long)blockDim.x + threadIdx.x; v < n; v += (long long)gridDim.x * blockDim.x) {
            float best = score[v * p];
            int bi = label[v * p];
            for (int r = 1; r < p; r++) {
                const float s = score[v * p + r];
                const int id = label[v * p + r];
                if (s > best || (s == best && id < bi)) { best = s; bi = id; }
            }
            out[v] = bi;
        }
    }
    """#
}
