/// A bf16 tensor-core GEMM for inputs exactly `residentGemmInputWidth` (256) wide, whose block keeps its
/// 128 input rows in registers and sweeps every output column: part of the gemm module (after
/// `KernelSource.gemm`'s kernel, sharing its helpers).
///
/// Why it exists: a ModernBERT layer of Ettin's size (hidden 256) spent ~20 % of its device time in the
/// passes around cuBLASLt's GEMMs (layer norm before the QKV and MLP-in GEMMs, GeGLU after the MLP-in
/// one), each a full read and write of the activations, and cuBLASLt fuses none of them. Here the block
/// reads its rows once, normalizes them once (the layer norm as a prologue), and the MLP-in GEMM writes
/// `gelu(a) · g` straight from its fp32 accumulators (the GeGLU as an epilogue): half the bytes written,
/// no pass left. The older `gemm_mma` re-read and re-normalized its 128 rows for every 64 output columns,
/// which is why fusing through it lost (session 8: 5× slower than cuBLASLt on these shapes).
///
/// Measured (session 23, one H100, docs/PERFORMANCE.md): correct, but its GEMM runs at ~140 µs per 65,536
/// rows × 768 × 256 against cuBLASLt's ~60 µs (`mma.sync` at ~27 % of the tensor pipe, warps waiting on
/// `ldmatrix`), so the MLP's fusion only breaks even and the QKV's loses: off by default
/// (`ResidentGemmFusion`).
extension KernelSource {
    /// The kernel's name in the gemm module.
    static let residentGemmKernel = "gemm_resident"
    /// The one input width it is compiled for (`GR_K`): ModernBERT-17M's hidden size.
    static let residentGemmInputWidth = 256
    /// Input rows per block, weight rows per shared-memory chunk (the output columns a chunk yields: all of
    /// them, or half with the GeGLU epilogue), and threads per block (`GR_THREADS`: 8 warps of 16 rows).
    static let residentGemmTile = (rows: 128, weightRows: 64, threads: 256)
    /// Dynamic shared memory of one block: three chunk buffers (the input tile takes two of them at first).
    static let residentGemmSharedBytes = 3 * 64 * (256 + 8) * 2

    static let gemmResident = #"""

    #if CG_BF16
    // out = epilogue(A · w[m × GR_K]ᵀ + bias), A = x[n × GR_K] or its rows' layer norm (ln_w non-null; the same
    // arithmetic in the same order as layer_norm_vec8, so A is bit-identical to that kernel's output), bf16 in and
    // out, fp32 accumulators, one rounding at the end. bias and ln_b may be null.
    //   geglu = 0: out is n × m.
    //   geglu = 1: w's rows are two halves [a | g] of m / 2 each and out is n × m / 2,
    //              out[:, j] = gelu(A·w[j]ᵀ + bias[j]) · (A·w[m/2 + j]ᵀ + bias[m/2 + j]) from the accumulators.
    // Needs m % 64 == 0; n arbitrary (rows past n are zero and never stored).
    // A block of 8 warps takes 128 rows; warp w owns rows 16w..16w+15 and holds their A fragments for all of GR_K in
    // registers (GR_K / 4 of them), so shared memory only ever feeds the weights. The weights arrive 64 rows (a chunk)
    // at a time in three shared buffers by cp.async, two chunks ahead of the one being multiplied; the input tile
    // first lands in buffers 1 and 2 beside chunk 0. Rows are padded by 8 elements so ldmatrix's eight 16-byte rows
    // land in distinct banks.
    #ifndef GR_K
    #define GR_K 256
    #endif
    #if GR_K != 256
    #error "gemm_resident's layer norm (layer_norm_lane8_256) takes rows of 256"
    #endif
    #define GR_THREADS 256
    #define GR_BM 128
    #define GR_BN 64
    #define GR_LD (GR_K + 8)
    #define GR_SLOT (GR_BN * GR_LD)
    #ifndef GR_SHARED_ARRAY
    extern __shared__ __align__(16) unsigned short gr_smem[];
    #endif
    // Weight rows of chunk c into buffer dst: rows 64c.. (geglu: 32 of each half, a's first).
    __device__ __forceinline__ void gr_issue_chunk(unsigned short* dst, const unsigned short* w, int m, int c, int geglu) {
        const int CH = GR_K / 8;
    #pragma unroll
        for (int i = 0; i < GR_BN * CH / GR_THREADS; i++) {
            const int idx = threadIdx.x + i * GR_THREADS, r = idx / CH, k8 = idx % CH;
            const int wr = geglu ? (r < 32 ? c * 32 + r : (m >> 1) + c * 32 + r - 32) : c * GR_BN + r;
            cp_async16(dst + r * GR_LD + k8 * 8, w + (long long)wr * GR_K + k8 * 8, true);
        }
    }

    // Layer norm of a 256-wide bf16 row held by a warp, lane l holding columns 8l…8l+7 (`raw`); `w8` and `b8` point at
    // those columns' weights and biases (b8 may be null). The arithmetic of layer_norm_rows in the same order, so the
    // same bits as layer_norm_vec8.
    __device__ __forceinline__ uint4 layer_norm_lane8_256(uint4 raw, const unsigned short* w8, const unsigned short* b8, float eps) {
        float v[8], wf[8], bf[8], o[8];
        unpack8(raw, v);
        float sum = 0.0f;
    #pragma unroll
        for (int k = 0; k < 8; k++) sum += v[k];
        const float mean = warp_sum(sum) / 256;
        float sq = 0.0f;
    #pragma unroll
        for (int k = 0; k < 8; k++) { const float d = v[k] - mean; sq += d * d; }
        const float inv = 1.0f / sqrtf(warp_sum(sq) / 256 + eps);
        unpack8(*(const uint4*)w8, wf);
    #pragma unroll
        for (int k = 0; k < 8; k++) bf[k] = 0.0f;
        if (b8) unpack8(*(const uint4*)b8, bf);
    #pragma unroll
        for (int k = 0; k < 8; k++) o[k] = (v[k] - mean) * inv * wf[k] + bf[k];
        return pack8(o);
    }
    // Two blocks per multiprocessor: 128 registers a thread (no spills) and 101 KiB of shared memory each.
    extern "C" __global__ void __launch_bounds__(GR_THREADS, 2) gemm_resident(
            const unsigned short* x, const unsigned short* w, const unsigned short* bias, unsigned short* out, int n, int m,
            const unsigned short* ln_w, const unsigned short* ln_b, float eps, int geglu) {
        unsigned short* slot0 = gr_smem;
        unsigned short* As = gr_smem + GR_SLOT;   // 128 rows × GR_LD: buffers 1 and 2
        const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
        const int r0 = blockIdx.x * GR_BM, wr = warp * 16, chunks = m / GR_BN;
        gr_issue_chunk(slot0, w, m, 0, geglu);
        {
            const int CH = GR_K / 8;
    #pragma unroll
            for (int i = 0; i < GR_BM * CH / GR_THREADS; i++) {
                const int idx = threadIdx.x + i * GR_THREADS, r = idx / CH, k8 = idx % CH;
                const bool valid = r0 + r < n;
                cp_async16(As + r * GR_LD + k8 * 8, x + (long long)(valid ? r0 + r : 0) * GR_K + k8 * 8, valid);
            }
        }
        cp_async_commit();
        cp_async_wait_all();
        __syncthreads();
        if (ln_w) {
            // Each warp normalizes its own 16 rows in place, lane l the row's 16-byte chunk l (GR_K is 256).
            for (int j = 0; j < 16; j++) {
                uint4* chunk = (uint4*)(As + (wr + j) * GR_LD + lane * 8);
                *chunk = layer_norm_lane8_256(*chunk, ln_w + lane * 8, ln_b ? ln_b + lane * 8 : 0, eps);
            }
            __syncwarp();
        }
        unsigned a[GR_K / 16][4];
    #pragma unroll
        for (int ks = 0; ks < GR_K / 16; ks++)
            ldsm_x4(a[ks], As + (wr + (lane & 7) + ((lane >> 3) & 1) * 8) * GR_LD + ks * 16 + (lane >> 4) * 8);
        __syncthreads();   // every warp has its fragments: buffers 1 and 2 take chunks from here on
        if (chunks > 1) { gr_issue_chunk(gr_smem + GR_SLOT, w, m, 1, geglu); cp_async_commit(); }
        const int width = geglu ? (m >> 1) : m;
        for (int c = 0; c < chunks; c++) {
            if (c + 1 < chunks) cp_async_wait_one(); else cp_async_wait_all();
            __syncthreads();   // chunk c is in; every warp is done with chunk c - 1, whose buffer chunk c + 2 takes
            if (c + 2 < chunks) { gr_issue_chunk(gr_smem + ((c + 2) % 3) * GR_SLOT, w, m, c + 2, geglu); cp_async_commit(); }
            const unsigned short* Bs = gr_smem + (c % 3) * GR_SLOT;
            float acc[8][4];
    #pragma unroll
            for (int ni = 0; ni < 8; ni++) { acc[ni][0] = 0.0f; acc[ni][1] = 0.0f; acc[ni][2] = 0.0f; acc[ni][3] = 0.0f; }
            // One k16 step at a time, each ldmatrix giving two 8-column tiles of it, so the MMAs of a step go to
            // different accumulators (measured no faster than two k16 halves of one tile per ldmatrix: the warps
            // wait on ldmatrix either way).
    #pragma unroll
            for (int ks = 0; ks < GR_K / 16; ks++) {
    #pragma unroll
                for (int np = 0; np < 4; np++) {
                    unsigned b[4];
                    ldsm_x4(b, Bs + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * GR_LD + ks * 16 + ((lane >> 3) & 1) * 8);
                    mma_bf16_16816(acc[2 * np], a[ks][0], a[ks][1], a[ks][2], a[ks][3], b[0], b[1]);
                    mma_bf16_16816(acc[2 * np + 1], a[ks][0], a[ks][1], a[ks][2], a[ks][3], b[2], b[3]);
                }
            }
    #pragma unroll
            for (int half = 0; half < 2; half++) {
                const int row = r0 + wr + g + half * 8;
                if (row >= n) continue;
                unsigned* dst = (unsigned*)(out + (long long)row * width);
                if (geglu) {
    #pragma unroll
                    for (int ni = 0; ni < 4; ni++) {
                        const int col = c * 32 + ni * 8 + t * 2;
                        float u0 = acc[ni][2 * half], u1 = acc[ni][2 * half + 1];
                        float g0 = acc[ni + 4][2 * half], g1 = acc[ni + 4][2 * half + 1];
                        if (bias) {
                            u0 += bf16_to_float(bias[col]); u1 += bf16_to_float(bias[col + 1]);
                            g0 += bf16_to_float(bias[(m >> 1) + col]); g1 += bf16_to_float(bias[(m >> 1) + col + 1]);
                        }
                        dst[col >> 1] = pack_bf16(gelu_erf(u0) * g0, gelu_erf(u1) * g1);
                    }
                } else {
    #pragma unroll
                    for (int ni = 0; ni < 8; ni++) {
                        const int col = c * GR_BN + ni * 8 + t * 2;
                        float v0 = acc[ni][2 * half], v1 = acc[ni][2 * half + 1];
                        if (bias) { v0 += bf16_to_float(bias[col]); v1 += bf16_to_float(bias[col + 1]); }
                        dst[col >> 1] = pack_bf16(v0, v1);
                    }
                }
            }
        }
    }
    #endif
    """#
}
