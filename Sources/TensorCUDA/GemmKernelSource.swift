/// Our own bf16 tensor-core GEMM with the whole `linear` epilogue fused (bias, exact or tanh GELU,
/// residual), compiled by NVRTC into its own module ("gemm", bf16 builds only).
///
/// Why it exists: cuBLASLt's first plan in a process costs 80–110 ms of one-time heuristic
/// initialisation (measured on an H200 host), more than a third of the warm start-up budget. This
/// kernel loads from the kernel cache in about a millisecond, so the first batches run on it while
/// cuBLASLt opens on another thread (`CUDABackend.matmulEngine`). Same HIP-compatible subset as the
/// other kernels: the only inline PTX is the shared MMA / `ldmatrix` spots of `KernelSource.common`.
extension KernelSource {
    /// The kernel's name in the gemm module.
    static let gemmKernel = "gemm_mma"
    /// Rows × columns of `out` one block computes (the launch grid is derived from these).
    static let gemmTile = (rows: 128, cols: 64)

    static let gemm = common + #"""

    #if CG_BF16
    // out[n × m] = act(A · w[m × k]ᵀ + bias[m]) + residual[n × m], bf16 in and out, fp32 accumulators, one
    // rounding at the end, where A is x[n × k] itself or, fused into the loads (a prologue: the intermediate
    // never goes through device memory):
    //   layer norm of x's rows (ln_w non-null): row statistics computed by the block first, with the same
    //     arithmetic, in the same order, as layer_norm_vec8, so A is bit-identical to that kernel's output;
    //   GeGLU of x[n × 2k] (gated = 1): A = gelu(x[:, :k]) · x[:, k:], as geglu_vec8.
    // A block of 4 warps computes a 128 × GM_BN tile of out (warp w: rows 64 (w / 2), columns GM_BN / 2 (w % 2));
    // K advances 32 at a time through two shared-memory buffers: the next step's tiles are fetched into
    // registers (16-byte loads) while this step multiplies, then stored into the other buffer, one barrier
    // per step. Rows are padded by 8 elements so ldmatrix's eight 16-byte rows land in distinct banks.
    // Needs k % 8 == 0 (whole 16-byte chunks); n, m and k otherwise arbitrary; bias, residual, ln_b may be
    // null; kind as `activate`.
    #define GM_BM 128
    #ifndef GM_BN
    #define GM_BN 64
    #endif
    #define GM_BK 32
    #define GM_LD (GM_BK + 8)
    #define GM_NI (GM_BN / 16)
    struct GemmPrologue {
        const unsigned short* ln_w;
        const unsigned short* ln_b;
        const float* mean;  // shared memory, one per row of the block's tile
        const float* inv;
        int gated;
    };
    __device__ __forceinline__ uint4 gemm_load_a(const unsigned short* x, int k, int row, int kk, int local, const GemmPrologue& p) {
        uint4 v;
        if (p.gated) {
            float a[8], g[8];
            const unsigned short* src = x + (long long)row * 2 * k + kk;
            unpack8(*(const uint4*)src, a);
            unpack8(*(const uint4*)(src + k), g);
    #pragma unroll
            for (int j = 0; j < 8; j++) a[j] = gelu_erf(a[j]) * g[j];
            return pack8(a);
        }
        v = *(const uint4*)(x + (long long)row * k + kk);
        if (p.ln_w) {
            float a[8], wf[8], bf[8];
            unpack8(v, a);
            unpack8(*(const uint4*)(p.ln_w + kk), wf);
            if (p.ln_b) { unpack8(*(const uint4*)(p.ln_b + kk), bf); } else {
    #pragma unroll
                for (int j = 0; j < 8; j++) bf[j] = 0.0f;
            }
            const float mean = p.mean[local], inv = p.inv[local];
    #pragma unroll
            for (int j = 0; j < 8; j++) a[j] = (a[j] - mean) * inv * wf[j] + bf[j];
            v = pack8(a);
        }
        return v;
    }
    __device__ __forceinline__ void gemm_fetch(const unsigned short* x, const unsigned short* w, int n, int m, int k,
                                               int r0, int c0, int k0, uint4* ar, uint4* br, const GemmPrologue& p) {
        const int tid = threadIdx.x;
    #pragma unroll
        for (int i = 0; i < 4; i++) {
            const int idx = tid + i * 128, r = idx >> 2, kk = k0 + (idx & 3) * 8;
            uint4 v;
            v.x = 0u; v.y = 0u; v.z = 0u; v.w = 0u;
            if (r0 + r < n && kk < k) v = gemm_load_a(x, k, r0 + r, kk, r, p);
            ar[i] = v;
        }
    #pragma unroll
        for (int i = 0; i < GM_BN / 32; i++) {
            const int idx = tid + i * 128, r = idx >> 2, kk = k0 + (idx & 3) * 8;
            uint4 v;
            v.x = 0u; v.y = 0u; v.z = 0u; v.w = 0u;
            if (c0 + r < m && kk < k) v = *(const uint4*)(w + (long long)(c0 + r) * k + kk);
            br[i] = v;
        }
    }
    __device__ __forceinline__ void gemm_store(unsigned short (*As)[GM_LD], unsigned short (*Bs)[GM_LD], const uint4* ar, const uint4* br) {
        const int tid = threadIdx.x;
    #pragma unroll
        for (int i = 0; i < 4; i++) { const int idx = tid + i * 128; *(uint4*)&As[idx >> 2][(idx & 3) * 8] = ar[i]; }
    #pragma unroll
        for (int i = 0; i < GM_BN / 32; i++) { const int idx = tid + i * 128; *(uint4*)&Bs[idx >> 2][(idx & 3) * 8] = br[i]; }
    }
    __device__ __forceinline__ float gemm_finish(float v, const unsigned short* bias, const unsigned short* residual,
                                                 int m, int row, int col, int kind) {
        if (bias) v += bf16_to_float(bias[col]);
        v = activate(v, kind);
        if (residual) v += bf16_to_float(residual[(long long)row * m + col]);
        return v;
    }

    extern "C" __global__ void __launch_bounds__(128) gemm_mma(
            const unsigned short* x, const unsigned short* w, const unsigned short* bias, const unsigned short* residual,
            unsigned short* out, int n, int m, int k, int kind,
            const unsigned short* ln_w, const unsigned short* ln_b, float eps, int gated) {
        __shared__ __align__(16) unsigned short As[2][GM_BM][GM_LD];
        __shared__ __align__(16) unsigned short Bs[2][GM_BN][GM_LD];
        __shared__ float row_mean[GM_BM], row_inv[GM_BM];
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
        const int c0 = blockIdx.x * GM_BN, r0 = blockIdx.y * GM_BM;
        const int wr = (warp >> 1) * 64, wc = (warp & 1) * (GM_BN / 2);
        GemmPrologue p;
        p.ln_w = ln_w; p.ln_b = ln_b; p.mean = row_mean; p.inv = row_inv; p.gated = gated;
        if (ln_w) {
            // Each warp: the statistics of 32 of the tile's rows, lanes over 16-byte chunks as in layer_norm_vec8.
            const int chunks = k >> 3;
            for (int lr = warp; lr < GM_BM; lr += 4) {
                float mean = 0.0f, inv = 0.0f;
                if (r0 + lr < n) {
                    const uint4* xr = (const uint4*)(x + (long long)(r0 + lr) * k);
                    float v[8], sum = 0.0f, sq = 0.0f;
                    for (int c = lane; c < chunks; c += 32) {
                        unpack8(xr[c], v);
    #pragma unroll
                        for (int j = 0; j < 8; j++) sum += v[j];
                    }
                    mean = warp_sum(sum) / k;
                    for (int c = lane; c < chunks; c += 32) {
                        unpack8(xr[c], v);
    #pragma unroll
                        for (int j = 0; j < 8; j++) { const float d = v[j] - mean; sq += d * d; }
                    }
                    inv = 1.0f / sqrtf(warp_sum(sq) / k + eps);
                }
                if (lane == 0) { row_mean[lr] = mean; row_inv[lr] = inv; }
            }
            __syncthreads();
        }
        float acc[4][GM_NI][4];
    #pragma unroll
        for (int mi = 0; mi < 4; mi++)
    #pragma unroll
            for (int ni = 0; ni < GM_NI; ni++) { acc[mi][ni][0] = 0.0f; acc[mi][ni][1] = 0.0f; acc[mi][ni][2] = 0.0f; acc[mi][ni][3] = 0.0f; }
        uint4 ar[4], br[GM_BN / 32];
        gemm_fetch(x, w, n, m, k, r0, c0, 0, ar, br, p);
        gemm_store(As[0], Bs[0], ar, br);
        __syncthreads();
        const int steps = (k + GM_BK - 1) / GM_BK;
        for (int s = 0; s < steps; s++) {
            const int buf = s & 1;
            const bool more = s + 1 < steps;
            if (more) gemm_fetch(x, w, n, m, k, r0, c0, (s + 1) * GM_BK, ar, br, p);
            // B fragments of the whole 32-deep step: registers 0, 1 for k 0–15, 2, 3 for k 16–31.
            unsigned b[GM_NI][4];
    #pragma unroll
            for (int ni = 0; ni < GM_NI; ni++) ldsm_x4(b[ni], &Bs[buf][wc + ni * 8 + (lane & 7)][(lane >> 3) * 8]);
    #pragma unroll
            for (int ks = 0; ks < 2; ks++) {
    #pragma unroll
                for (int mi = 0; mi < 4; mi++) {
                    unsigned a[4];
                    ldsm_x4(a, &As[buf][wr + mi * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][ks * 16 + (lane >> 4) * 8]);
    #pragma unroll
                    for (int ni = 0; ni < GM_NI; ni++) mma_bf16_16816(acc[mi][ni], a[0], a[1], a[2], a[3], b[ni][2 * ks], b[ni][2 * ks + 1]);
                }
            }
            if (more) gemm_store(As[buf ^ 1], Bs[buf ^ 1], ar, br);
            __syncthreads();
        }
        const bool pairs = (m & 1) == 0;
    #pragma unroll
        for (int mi = 0; mi < 4; mi++) {
    #pragma unroll
            for (int ni = 0; ni < GM_NI; ni++) {
                const int col = c0 + wc + ni * 8 + t * 2;
                if (col >= m) continue;
    #pragma unroll
                for (int half = 0; half < 2; half++) {
                    const int row = r0 + wr + mi * 16 + g + half * 8;
                    if (row >= n) continue;
                    const float v0 = gemm_finish(acc[mi][ni][2 * half], bias, residual, m, row, col, kind);
                    if (col + 1 < m) {
                        const float v1 = gemm_finish(acc[mi][ni][2 * half + 1], bias, residual, m, row, col + 1, kind);
                        if (pairs) {
                            *(unsigned*)&out[(long long)row * m + col] = pack_bf16(v0, v1);
                        } else {
                            out[(long long)row * m + col] = float_to_bf16(v0);
                            out[(long long)row * m + col + 1] = float_to_bf16(v1);
                        }
                    } else {
                        out[(long long)row * m + col] = float_to_bf16(v0);
                    }
                }
            }
        }
    }
    #endif
    """# + gemmResident
}
