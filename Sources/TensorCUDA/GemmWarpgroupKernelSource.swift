/// A bf16 GEMM on Hopper's warpgroup MMA (`wgmma`, sm_90a) whose epilogue does what cuBLASLt's cannot:
/// the exact (erf) GELU, and GeGLU (`gelu(a) · g` of the two halves of the up-projection). Its own module,
/// `gemm-wgmma`, compiled only for GPUs of compute capability 9.0 (as sm_90a, the architecture `wgmma` needs).
///
/// Why it exists: with cuBLASLt these activations are passes of their own over the GEMM's whole output, a
/// read and a write of tokens × 1536 bf16 per layer: MiniLM's exact GELU ~50 device-ms of ~415 a pass, Ettin's
/// GeGLU ~28 of ~275 (docs/PERFORMANCE.md, sessions 12 and 23). The `mma.sync` kernels of this backend could
/// carry them but run at 27–40 % of the tensor pipe (session 23: `ldmatrix` bound); `wgmma` reads both
/// operands from shared memory itself, asynchronously, as cuBLASLt's Hopper kernels do.
///
/// The kernel: a block of two warpgroups (256 threads) computes a 128-row × 128-column tile of `x · wᵀ`,
/// warpgroup g rows 64g…64g+63; the K dimension in 64-wide steps through three shared-memory stages filled by
/// `cp.async` two steps ahead, each stage's rows in the 128-byte swizzled layout `wgmma`'s descriptors read.
/// The accumulators (64 fp32 a thread) get bias and activation, are rounded to bf16 into shared memory and
/// leave in 16-byte rows.
extension KernelSource {
    /// The kernel's name in its module.
    static let warpgroupGemmKernel = "gemm_wgmma"
    /// Output rows and weight rows a block takes (64 rows per warpgroup, two warpgroups); input columns per pipeline
    /// step; threads.
    static let warpgroupGemmTile = (rows: 128, weightRows: 128, depth: 64, threads: 256)
    /// Three stages of a 128 × 64 input tile and a 128 × 64 weight tile (32 KiB each), plus 1 KiB to align them to
    /// the 1,024 bytes the swizzle pattern repeats over.
    static let warpgroupGemmSharedBytes = 3 * 2 * 128 * 64 * 2 + 1024

    static let gemmWarpgroup = common + warpgroupMMA + #"""

    #if CG_BF16
    #if defined(CG_HAS_WGMMA)
    #ifndef WG_ERFF
    #define WG_ERFF 0
    #endif
    // The exact GELU x·Φ(x) = x·(1 + erf(x/√2))/2, erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, about two
    // units in the last place of fp32's erf, four orders of magnitude under the bf16 rounding of the result): a dozen
    // instructions and two special-function ops, no branch, against ~35 and a divergent branch for erff. The epilogue
    // computes one per output element, as many as the GEMM has tensor-core steps to hide them behind. WG_ERFF 1: erff.
    __device__ __forceinline__ float wg_gelu(float x) {
    #if WG_ERFF
        return gelu_erf(x);
    #else
        const float a = fabsf(x) * 0.7071067811865476f;
        const float t = __fdividef(1.0f, fmaf(0.3275911f, a, 1.0f));
        float p = fmaf(1.061405429f, t, -1.453152027f);
        p = fmaf(p, t, 1.421413741f);
        p = fmaf(p, t, -0.284496736f);
        p = fmaf(p, t, 0.254829592f);
        const float e = 1.0f - p * t * __expf(-a * a);
        return 0.5f * x * (1.0f + copysignf(e, x));
    #endif
    }
    // Two warpgroups per block, each taking 64 rows of the block's tile against the same 128 weight rows (blocks of one
    // warpgroup and 64 rows, three per multiprocessor, measured slower: docs/PERFORMANCE.md, session 24).
    #define WG_THREADS 256
    #define WG_BM 128
    #define WG_BN 128
    #define WG_BK 64
    #define WG_STAGE ((WG_BM + WG_BN) * WG_BK)
    #ifndef WG_SHARED_ARRAY
    extern __shared__ __align__(16) unsigned short wg_smem[];
    #endif

    // One pipeline stage: rows row0… of x (columns k0…k0+63), then the block's 128 weight rows (the same columns), each
    // 16-byte chunk c of a row r at chunk c ^ (r % 8) of its 128-byte row. Rows of x past n are zero. geglu: the weight
    // rows are 64 of the first half (a) from wrow0 and the 64 matching ones of the second (g), m / 2 further on.
    __device__ __forceinline__ void wg_issue_stage(unsigned short* stage, const unsigned short* x, const unsigned short* w,
                                                   int n, int m, int k, int row0, int wrow0, int k0, int geglu) {
        unsigned short* ws = stage + WG_BM * WG_BK;
    #pragma unroll
        for (int i = 0; i < WG_BM * WG_BK / 8 / WG_THREADS; i++) {
            const int idx = threadIdx.x + i * WG_THREADS, r = idx >> 3, c = idx & 7;
            const int row = row0 + r;
            const bool valid = row < n;
            cp_async16(stage + r * WG_BK + ((c ^ (r & 7)) << 3), x + (long long)(valid ? row : 0) * k + k0 + c * 8, valid);
            const int wr = geglu ? (r < 64 ? wrow0 + r : (m >> 1) + wrow0 + r - 64) : wrow0 + r;
            cp_async16(ws + r * WG_BK + ((c ^ (r & 7)) << 3), w + (long long)wr * k + k0 + c * 8, true);
        }
    }

    // The output tile in shared memory, rows padded so that a warp's 4-byte stores land in distinct banks.
    #define WG_LD (WG_BN + 8)
    // Accumulator d[4j + e] of lane l in warp v of warpgroup g: row 64g + 16v + l / 4 (+ 8 for e ≥ 2), column
    // 8j + 2 (l % 4) + (e % 2); r0 is the first of those rows, q2 = 2 (l % 4). KIND as `activate`'s.
    template <int KIND>
    __device__ __forceinline__ void wg_store(unsigned short* smem, const float (&d)[64], const unsigned short* bias, int col0, int r0, int q2) {
    #pragma unroll
        for (int j = 0; j < 16; j++) {
            const int c = j * 8 + q2;
            const float b0 = bias ? bf16_to_float(bias[col0 + c]) : 0.0f, b1 = bias ? bf16_to_float(bias[col0 + c + 1]) : 0.0f;
            float v[4] = {d[4 * j] + b0, d[4 * j + 1] + b1, d[4 * j + 2] + b0, d[4 * j + 3] + b1};
    #pragma unroll
            for (int e = 0; e < 4; e++) v[e] = KIND == 1 ? wg_gelu(v[e]) : (KIND == 2 ? gelu_tanh(v[e]) : v[e]);
            *(unsigned*)&smem[r0 * WG_LD + c] = pack_bf16(v[0], v[1]);
            *(unsigned*)&smem[(r0 + 8) * WG_LD + c] = pack_bf16(v[2], v[3]);
        }
    }
    // GeGLU: the tile's weight rows were 64 of a (accumulators j < 8) and the matching 64 of g (j ≥ 8).
    __device__ __forceinline__ void wg_store_geglu(unsigned short* smem, const float (&d)[64], const unsigned short* bias, int half,
                                                   int col0, int r0, int q2) {
    #pragma unroll
        for (int j = 0; j < 8; j++) {
            const int c = j * 8 + q2;
            float ba0 = 0.0f, ba1 = 0.0f, bg0 = 0.0f, bg1 = 0.0f;
            if (bias) {
                ba0 = bf16_to_float(bias[col0 + c]); ba1 = bf16_to_float(bias[col0 + c + 1]);
                bg0 = bf16_to_float(bias[half + col0 + c]); bg1 = bf16_to_float(bias[half + col0 + c + 1]);
            }
            const float* ga = &d[4 * j];
            const float* gg = &d[4 * (j + 8)];
            *(unsigned*)&smem[r0 * WG_LD + c] = pack_bf16(wg_gelu(ga[0] + ba0) * (gg[0] + bg0), wg_gelu(ga[1] + ba1) * (gg[1] + bg1));
            *(unsigned*)&smem[(r0 + 8) * WG_LD + c] = pack_bf16(wg_gelu(ga[2] + ba0) * (gg[2] + bg0), wg_gelu(ga[3] + ba1) * (gg[3] + bg1));
        }
    }

    // The block's output tile from its accumulators: bias and activation (or GeGLU), rounded to bf16 into shared memory,
    // then out in 16-byte rows; rows past n are not stored.
    __device__ __forceinline__ void wg_epilogue(unsigned short* smem, const float (&d)[64], const unsigned short* bias, unsigned short* out,
                                                int n, int m, int row0, int col0, int kind, int geglu) {
        const int lane = threadIdx.x & 31, warp = (threadIdx.x >> 5) & 3, group = threadIdx.x >> 7;
        const int r0 = group * 64 + warp * 16 + (lane >> 2), q2 = (lane & 3) * 2;
        // One instantiation per epilogue: with the kind a run-time value every element computed every activation.
        if (geglu) wg_store_geglu(smem, d, bias, m >> 1, col0, r0, q2);
        else if (kind == 1) wg_store<1>(smem, d, bias, col0, r0, q2);
        else if (kind == 2) wg_store<2>(smem, d, bias, col0, r0, q2);
        else wg_store<0>(smem, d, bias, col0, r0, q2);
        __syncthreads();
        const int outCols = geglu ? (m >> 1) : m, chunks = (geglu ? WG_BN / 2 : WG_BN) / 8;
        for (int idx = threadIdx.x; idx < WG_BM * chunks; idx += WG_THREADS) {
            const int r = idx / chunks, c = idx % chunks, row = row0 + r;
            if (row < n) *(uint4*)(out + (long long)row * outCols + col0 + c * 8) = *(const uint4*)&smem[r * WG_LD + c * 8];
        }
    }

    // out = epilogue(x[n × k] · w[m × k]ᵀ + bias), bf16 in and out, fp32 accumulators, one rounding at the end;
    // bias may be null.
    //   geglu = 0: out is n × m, activation `kind` (0 none, 1 exact GELU, 2 tanh GELU) after the bias.
    //   geglu = 1: w's rows are two halves [a | g] of m / 2 each and out is n × m / 2,
    //              out[:, j] = gelu(x·w[j]ᵀ + bias[j]) · (x·w[m/2 + j]ᵀ + bias[m/2 + j]) (exact GELU).
    // Needs k % 64 == 0 and m % 128 == 0; n arbitrary. Grid: (output column tiles, row tiles), the column tiles
    // of one row tile side by side so its input rows are read from L2 after the first.
    extern "C" __global__ void __launch_bounds__(WG_THREADS) gemm_wgmma(
            const unsigned short* x, const unsigned short* w, const unsigned short* bias, unsigned short* out,
            int n, int m, int k, int kind, int geglu) {
        const unsigned misalign = (unsigned)__cvta_generic_to_shared(wg_smem) & 1023u;
        unsigned short* smem = wg_smem + ((1024u - misalign) & 1023u) / 2;
        const int row0 = blockIdx.y * WG_BM, col0 = blockIdx.x * (geglu ? WG_BN / 2 : WG_BN);
        const int steps = k / WG_BK, group = threadIdx.x >> 7;

        float d[64];
    #pragma unroll
        for (int i = 0; i < 64; i++) d[i] = 0.0f;
        // Each step's MMAs are waited for before the next step: the copies run two steps ahead.
        wg_issue_stage(smem, x, w, n, m, k, row0, col0, 0, geglu);
        cp_async_commit();
        if (steps > 1) wg_issue_stage(smem + WG_STAGE, x, w, n, m, k, row0, col0, WG_BK, geglu);
        cp_async_commit();
        for (int s = 0; s < steps; s++) {
            cp_async_wait_one();   // this thread's copies of step s have landed
            wg_proxy_fence();
            __syncthreads();       // everyone's; and every warpgroup has waited for its MMAs of step s − 1
            // Step s + 2 goes into the stage step s − 1 used.
            if (s + 2 < steps) wg_issue_stage(smem + ((s + 2) % 3) * WG_STAGE, x, w, n, m, k, row0, col0, (s + 2) * WG_BK, geglu);
            cp_async_commit();
            const unsigned short* a = smem + (s % 3) * WG_STAGE + group * 64 * WG_BK;
            const unsigned short* b = smem + (s % 3) * WG_STAGE + WG_BM * WG_BK;
            wg_fence();
    #pragma unroll
            for (int kk = 0; kk < WG_BK / 16; kk++) wg_mma_64x128x16(d, wg_desc(a + kk * 16), wg_desc(b + kk * 16), 1);
            wg_commit();
            wg_wait_all();
            wg_hold(d);
        }
        __syncthreads();   // every warpgroup is done reading the stages: they become the output tile

        wg_epilogue(smem, d, bias, out, n, m, row0, col0, kind, geglu);
    }

    #endif
    #endif
    """#
}
