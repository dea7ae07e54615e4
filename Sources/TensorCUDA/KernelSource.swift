/// The CUDA C source of every kernel the CUDA backend launches, compiled at run time by NVRTC.
///
/// Kept to the subset of CUDA C that HIP's hiprtc also accepts: no headers, no CUDA runtime calls,
/// bf16 handled as `unsigned short` with explicit conversions. The only inline PTX is in the blocks
/// marked "TENSOR-CORE MMA" (one instruction; an AMD port swaps it for an MFMA builtin) and
/// "TENSOR-CORE SHARED LOADS" (`ldmatrix`; an AMD port reads the same fragments with plain loads).
///
/// Two modules are built from this text: the element-wise "core" (per precision) and "attention"
/// (per precision and head dimension, `CG_HEAD_DIM`), so a model's start-up compiles only what it uses.
enum KernelSource {
    /// Names of the kernels in the core module.
    static let coreKernels = [
        "convert_f32_to_act", "convert_act_to_f32", "gather_rows", "epilogue", "add_elementwise",
        "layer_norm", "l2_normalize", "geglu", "half_squared_norms", "row_argmax",
    ]
    /// Kernels that exist only in the bf16 build of the core module (16-byte vector paths).
    static let bf16CoreKernels = ["layer_norm_vec8", "layer_norm_vec8_narrow", "geglu_vec8", "gather_rows_vec8", "epilogue_vec8",
                                  "embed_layer_norm"]
    /// Head dimensions with a tensor-core attention kernel in bf16.
    static let tensorCoreHeadDims: Set<Int> = [32, 64]

    static let common = #"""
    #ifndef CG_BF16
    #define CG_BF16 0
    #endif
    #if CG_BF16
    typedef unsigned short act_t;
    #else
    typedef float act_t;
    #endif
    // No math.h under NVRTC/hiprtc: infinity spelled from its bit pattern.
    #define CG_INF __int_as_float(0x7f800000)

    __device__ __forceinline__ float bf16_to_float(unsigned short h) {
        return __uint_as_float(((unsigned int)h) << 16);
    }
    // Round to nearest even, NaN kept NaN: the same rounding PyTorch uses for .to(bfloat16).
    __device__ __forceinline__ unsigned short float_to_bf16(float f) {
        unsigned int u = __float_as_uint(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)0x7fc0;
        u += 0x7fffu + ((u >> 16) & 1u);
        return (unsigned short)(u >> 16);
    }
    __device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
    __device__ __forceinline__ float ld(const unsigned short* p, long long i) { return bf16_to_float(p[i]); }
    __device__ __forceinline__ void st(float* p, long long i, float v) { p[i] = v; }
    __device__ __forceinline__ void st(unsigned short* p, long long i, float v) { p[i] = float_to_bf16(v); }

    #if CG_BF16 && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    // ---- BEGIN BF16 PAIR ROUNDING (replaceable inline PTX, one instruction for what float_to_bf16 does to
    // two values in ~12 integer operations; the same round-to-nearest-even, NaN stays NaN. On AMD, and before
    // sm_80, pack_bf16 below uses float_to_bf16) ----
    __device__ __forceinline__ unsigned cvt_bf16x2(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
    // ---- END BF16 PAIR ROUNDING ----
    #define CG_HAS_CVT_BF16X2 1
    #endif
    // Two values rounded to bf16, `lo` in the low half. The softmax's probabilities and RoPE's outputs in the
    // attention kernel go through here: the integer form was a large share of that kernel's instructions.
    __device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    #ifdef CG_HAS_CVT_BF16X2
        return cvt_bf16x2(lo, hi);
    #else
        return (unsigned)float_to_bf16(lo) | ((unsigned)float_to_bf16(hi) << 16);
    #endif
    }
    // Eight bf16 values in one 16-byte access (the widest a thread can load).
    __device__ __forceinline__ void unpack8(uint4 u, float* f) {
        f[0] = __uint_as_float(u.x << 16); f[1] = __uint_as_float(u.x & 0xffff0000u);
        f[2] = __uint_as_float(u.y << 16); f[3] = __uint_as_float(u.y & 0xffff0000u);
        f[4] = __uint_as_float(u.z << 16); f[5] = __uint_as_float(u.z & 0xffff0000u);
        f[6] = __uint_as_float(u.w << 16); f[7] = __uint_as_float(u.w & 0xffff0000u);
    }
    __device__ __forceinline__ uint4 pack8(const float* f) {
        uint4 u;
        u.x = pack_bf16(f[0], f[1]); u.y = pack_bf16(f[2], f[3]); u.z = pack_bf16(f[4], f[5]); u.w = pack_bf16(f[6], f[7]);
        return u;
    }
    // RoPE on 8 columns of a head's first half (a) and the matching 8 of its second half (b), bf16 in and
    // out; cosSin holds (cos, sin) pairs for those 8 columns of this row. Shared by both attention variants.
    __device__ __forceinline__ void rope_rotate8(uint4& a, uint4& b, const float* cosSin) {
        float x1[8], x2[8];
        unpack8(a, x1); unpack8(b, x2);
        const float4* cs = (const float4*)cosSin;
    #pragma unroll
        for (int k = 0; k < 4; k++) {
            const float4 v = cs[k];
            const float y0 = x1[2 * k] * v.x - x2[2 * k] * v.y, z0 = x2[2 * k] * v.x + x1[2 * k] * v.y;
            const float y1 = x1[2 * k + 1] * v.z - x2[2 * k + 1] * v.w, z1 = x2[2 * k + 1] * v.z + x1[2 * k + 1] * v.w;
            x1[2 * k] = y0; x2[2 * k] = z0; x1[2 * k + 1] = y1; x2[2 * k + 1] = z1;
        }
        a = pack8(x1); b = pack8(x2);
    }

    __device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
    __device__ __forceinline__ float gelu_tanh(float x) {
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    // kind: 0 none, 1 exact GELU, 2 tanh GELU (Activation in Tensor/Backend.swift).
    __device__ __forceinline__ float activate(float x, int kind) {
        return kind == 1 ? gelu_erf(x) : (kind == 2 ? gelu_tanh(x) : x);
    }
    __device__ __forceinline__ float warp_sum(float v) {
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        return v;
    }
    // The better of two (score, index) candidates: the higher score, then the smaller index (the nearest-centroid
    // kernels' tie rule, in both k-means modules).
    __device__ __forceinline__ void cg_better(float& v, int& i, float ov, int oi) {
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
    // The best (score, index) of a group of `lanes` consecutive lanes (a power of two, a constant at the call), left in
    // every lane of the group.
    __device__ __forceinline__ void cg_best_across_lanes(float& v, int& i, int lanes) {
    #pragma unroll
        for (int o = 1; o < lanes; o <<= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, v, o);
            const int oi = __shfl_xor_sync(0xffffffffu, i, o);
            cg_better(v, i, ov, oi);
        }
    }
    // Rotary embedding (NeoX half rotation) of the pair (i, i + half) at position pos; the table
    // holds (cos, sin) for every position and frequency, computed once on the host.
    __device__ __forceinline__ void rope_rotate(const float* table, int half, int pos, int i, float& x1, float& x2) {
        const float c = table[((long long)pos * half + i) * 2];
        const float s = table[((long long)pos * half + i) * 2 + 1];
        const float y1 = x1 * c - x2 * s;
        const float y2 = x2 * c + x1 * s;
        x1 = y1; x2 = y2;
    }
    #if CG_BF16
    // ---- BEGIN TENSOR-CORE MMA (replaceable inline PTX, shared by the attention and k-means modules;
    // on AMD use an MFMA builtin) ----
    // D = A(16x16, row) * B(16x8, col) + D with bf16 inputs and fp32 accumulators.
    __device__ __forceinline__ void mma_bf16_16816(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                                   unsigned b0, unsigned b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
    // ---- END TENSOR-CORE MMA ----
    // ---- BEGIN TENSOR-CORE SHARED LOADS (replaceable inline PTX `ldmatrix`, shared by the attention and
    // k-means modules; on AMD, 16-bit shared loads in the layout described here) ----
    // Four 8x8 bf16 matrices from shared memory in one instruction; lane l gives the address of row l % 8
    // of matrix l / 8 (16 contiguous bytes). Plain: register j of lane l holds matrix j's row l / 4,
    // columns 2 (l % 4) and 2 (l % 4) + 1 (low half first). Transposed: register j holds rows 2 (l % 4)
    // and 2 (l % 4) + 1 of column l / 4.
    __device__ __forceinline__ void ldsm_x4(unsigned* r, const unsigned short* row) {
        const unsigned a = (unsigned)__cvta_generic_to_shared(row);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    }
    __device__ __forceinline__ void ldsm_x4_trans(unsigned* r, const unsigned short* row) {
        const unsigned a = (unsigned)__cvta_generic_to_shared(row);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    }
    // ---- END TENSOR-CORE SHARED LOADS ----
    #endif
    #if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    // ---- BEGIN ASYNC SHARED COPIES (replaceable inline PTX `cp.async`, shared by the attention and gemm modules:
    // 16 bytes from global to shared memory without passing through registers, zero-filled when `valid` is false;
    // groups of them committed and waited for. On AMD, or before sm_80, the plain copies below: the same data,
    // fetched synchronously) ----
    __device__ __forceinline__ void cp_async16(unsigned short* dst, const unsigned short* src, bool valid) {
        const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(d), "l"(src), "r"(valid ? 16 : 0));
    }
    __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
    // Waits until at most the latest committed group is still in flight (this thread's copies).
    __device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
    // Waits until every committed group has landed (this thread's copies).
    __device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
    // ---- END ASYNC SHARED COPIES ----
    #else
    __device__ __forceinline__ void cp_async16(unsigned short* dst, const unsigned short* src, bool valid) {
        uint4 v;
        v.x = 0u; v.y = 0u; v.z = 0u; v.w = 0u;
        if (valid) v = *(const uint4*)src;
        *(uint4*)dst = v;
    }
    __device__ __forceinline__ void cp_async_commit() {}
    __device__ __forceinline__ void cp_async_wait_one() {}
    __device__ __forceinline__ void cp_async_wait_all() {}
    #endif
    """#

    static let core = common + #"""

    extern "C" __global__ void convert_f32_to_act(const float* src, act_t* dst, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
            st(dst, i, src[i]);
    }

    extern "C" __global__ void convert_act_to_f32(const act_t* src, float* dst, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
            dst[i] = ld(src, i);
    }

    // out[r, :] = table[ids[r], :]; ids were checked against the table's row count on the host.
    extern "C" __global__ void gather_rows(const act_t* table, const int* ids, act_t* out, int rows, int cols) {
        const int r = blockIdx.x;
        if (r >= rows) return;
        const long long src = (long long)ids[r] * cols, dst = (long long)r * cols;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) out[dst + c] = table[src + c];
    }

    // y = act(y + bias) + residual, in place on a GEMM's output (bias and residual may be null).
    extern "C" __global__ void epilogue(act_t* y, const act_t* bias, const act_t* residual, long long rows, int cols, int kind) {
        const long long n = rows * cols;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
            float v = ld(y, i);
            if (bias) v += ld(bias, i % cols);
            v = activate(v, kind);
            if (residual) v += ld(residual, i);
            st(y, i, v);
        }
    }

    extern "C" __global__ void add_elementwise(const act_t* a, const act_t* b, act_t* out, long long n) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
            st(out, i, ld(a, i) + ld(b, i));
    }

    // One warp per row. Rows of up to 1024 columns stay in registers (one read of x); wider rows
    // are read three times from global memory.
    extern "C" __global__ void layer_norm(const act_t* x, const act_t* w, const act_t* b, act_t* y, int rows, int cols, float eps) {
        const int lane = threadIdx.x & 31;
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (row >= rows) return;
        const long long base = (long long)row * cols;
        if (cols <= 1024) {
            float v[32];
            float sum = 0.0f;
    #pragma unroll
            for (int i = 0; i < 32; i++) {
                const int c = lane + i * 32;
                v[i] = c < cols ? ld(x, base + c) : 0.0f;
                sum += v[i];
            }
            const float mean = warp_sum(sum) / cols;
            float sq = 0.0f;
    #pragma unroll
            for (int i = 0; i < 32; i++) {
                const int c = lane + i * 32;
                if (c < cols) { const float d = v[i] - mean; sq += d * d; }
            }
            const float inv = 1.0f / sqrtf(warp_sum(sq) / cols + eps);
    #pragma unroll
            for (int i = 0; i < 32; i++) {
                const int c = lane + i * 32;
                if (c < cols) {
                    float o = (v[i] - mean) * inv * ld(w, c);
                    if (b) o += ld(b, c);
                    st(y, base + c, o);
                }
            }
        } else {
            float sum = 0.0f;
            for (int c = lane; c < cols; c += 32) sum += ld(x, base + c);
            const float mean = warp_sum(sum) / cols;
            float sq = 0.0f;
            for (int c = lane; c < cols; c += 32) { const float d = ld(x, base + c) - mean; sq += d * d; }
            const float inv = 1.0f / sqrtf(warp_sum(sq) / cols + eps);
            for (int c = lane; c < cols; c += 32) {
                float o = (ld(x, base + c) - mean) * inv * ld(w, c);
                if (b) o += ld(b, c);
                st(y, base + c, o);
            }
        }
    }

    // x / max(||x||, 1e-12) per row, as torch.nn.functional.normalize. One warp per row.
    extern "C" __global__ void l2_normalize(const act_t* x, act_t* y, int rows, int cols) {
        const int lane = threadIdx.x & 31;
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (row >= rows) return;
        const long long base = (long long)row * cols;
        float sq = 0.0f;
        for (int c = lane; c < cols; c += 32) { const float v = ld(x, base + c); sq += v * v; }
        const float inv = 1.0f / fmaxf(sqrtf(warp_sum(sq)), 1e-12f);
        for (int c = lane; c < cols; c += 32) st(y, base + c, ld(x, base + c) * inv);
    }

    // ModernBERT's gated MLP: input [a | g], output gelu(a) * g.
    extern "C" __global__ void geglu(const act_t* x, act_t* y, long long rows, int half) {
        const long long n = rows * half;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / half;
            const int c = (int)(i - r * half);
            const long long src = r * 2 * half + c;
            st(y, i, gelu_erf(ld(x, src)) * ld(x, src + half));
        }
    }

    // -0.5 * ||c||^2 per centroid row: the bias that turns x·c into a nearest-in-L2 score.
    extern "C" __global__ void half_squared_norms(const act_t* c, float* out, int rows, int cols) {
        const int lane = threadIdx.x & 31;
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (row >= rows) return;
        float sq = 0.0f;
        for (int k = lane; k < cols; k += 32) { const float v = ld(c, (long long)row * cols + k); sq += v * v; }
        sq = warp_sum(sq);
        if (lane == 0) out[row] = -0.5f * sq;
    }

    #if CG_BF16
    // The rows of a bf16 matrix in memory, 16-byte chunk c of row r at a time: what layer_norm_rows normalizes.
    struct StoredRows {
        const unsigned short* x;
        int cols;
        __device__ __forceinline__ uint4 chunk(int r, int c) const { return ((const uint4*)(x + (long long)r * cols))[c]; }
    };
    // Layer norm of ROWS bf16 rows from row0 (one warp; rows whose width is a multiple of 8, at most SLOTS · 256), the
    // rows read through `x.chunk(row, chunk)` (StoredRows, or EmbeddingRows below): 16-byte loads and stores, lane l
    // taking 16-byte chunks l, l + 32, …. EARLY: the weight and bias are loaded with the rows, before the first
    // reduction (more registers); otherwise while storing. Per row the same arithmetic in the same order whatever
    // SLOTS, ROWS and EARLY are (chunks past the row's end add zeros), so every instance gives the same values.
    template <int SLOTS, int ROWS, bool EARLY, class Rows>
    __device__ __forceinline__ void layer_norm_rows(const Rows& x, const unsigned short* w, const unsigned short* b,
                                                    unsigned short* y, int rows, int cols, float eps, int row0, int lane) {
        const int chunks = cols >> 3;
        uint4 zero;
        zero.x = 0u; zero.y = 0u; zero.z = 0u; zero.w = 0u;
        uint4 raw[ROWS][SLOTS], wr[SLOTS], br[SLOTS];
    #pragma unroll
        for (int i = 0; i < SLOTS; i++) {
            const int c = lane + i * 32;
    #pragma unroll
            for (int j = 0; j < ROWS; j++) {
                raw[j][i] = zero;
                if (c < chunks && row0 + j < rows) raw[j][i] = x.chunk(row0 + j, c);
            }
            wr[i] = zero; br[i] = zero;
            if (EARLY && c < chunks) {
                wr[i] = ((const uint4*)w)[c];
                if (b) br[i] = ((const uint4*)b)[c];
            }
        }
    #pragma unroll
        for (int j = 0; j < ROWS; j++) {
            if (row0 + j >= rows) break;   // the same for every lane of the warp
            float v[SLOTS * 8];
            float sum = 0.0f;
    #pragma unroll
            for (int i = 0; i < SLOTS; i++) {
                unpack8(raw[j][i], &v[i * 8]);
    #pragma unroll
                for (int k = 0; k < 8; k++) sum += v[i * 8 + k];
            }
            const float mean = warp_sum(sum) / cols;
            float sq = 0.0f;
    #pragma unroll
            for (int i = 0; i < SLOTS; i++) {
                if (lane + i * 32 < chunks) {
    #pragma unroll
                    for (int k = 0; k < 8; k++) { const float d = v[i * 8 + k] - mean; sq += d * d; }
                }
            }
            const float inv = 1.0f / sqrtf(warp_sum(sq) / cols + eps);
            uint4* yr = (uint4*)(y + (long long)(row0 + j) * cols);
    #pragma unroll
            for (int i = 0; i < SLOTS; i++) {
                const int c = lane + i * 32;
                if (c < chunks) {
                    float wf[8], bf[8], o[8];
                    if (!EARLY) {
                        wr[i] = ((const uint4*)w)[c];
                        if (b) br[i] = ((const uint4*)b)[c];
                    }
                    unpack8(wr[i], wf);
                    unpack8(br[i], bf);
    #pragma unroll
                    for (int k = 0; k < 8; k++) o[k] = (v[i * 8 + k] - mean) * inv * wf[k] + bf[k];
                    yr[c] = pack8(o);
                }
            }
        }
    }
    // Layer norm for bf16 rows whose width is a multiple of 8 (≤ 1024): one row per warp, the weights read while
    // storing (loading them early too measured 36 instead of 31 device-ms a pass on Ettin's rows: more registers).
    extern "C" __global__ void layer_norm_vec8(const unsigned short* x, const unsigned short* w, const unsigned short* b,
                                               unsigned short* y, int rows, int cols, float eps) {
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (row >= rows) return;
        layer_norm_rows<4, 1, false>(StoredRows{x, cols}, w, b, y, rows, cols, eps, row, threadIdx.x & 31);
    }
    // The same for rows at most 512 wide, four rows per warp, every load issued before the first reduction: 27 instead
    // of 31 device-ms a pass on Ettin's 256-wide rows (one row per warp ran at 56 % of DRAM bandwidth under ncu),
    // 32 instead of 34 on MiniLM's 384-wide ones (session 12).
    extern "C" __global__ void layer_norm_vec8_narrow(const unsigned short* x, const unsigned short* w, const unsigned short* b,
                                                      unsigned short* y, int rows, int cols, float eps) {
        const int row0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * 4;
        if (row0 >= rows) return;
        layer_norm_rows<2, 4, true>(StoredRows{x, cols}, w, b, y, rows, cols, eps, row0, threadIdx.x & 31);
    }

    // An encoder's embedding rows before their layer norm: word row ids[r], plus position row positionIDs[r] when
    // `positions` is set (BERT; ModernBERT has none), the sum rounded to bf16 as add_elementwise stores it (pack8
    // rounds to nearest even, as float_to_bf16 does): exactly the chunk the separate add would have written.
    struct EmbeddingRows {
        const unsigned short* words;
        const unsigned short* positions;
        const int* ids;
        const int* positionIDs;
        int cols;
        __device__ __forceinline__ uint4 chunk(int r, int c) const {
            const uint4 word = ((const uint4*)(words + (long long)ids[r] * cols))[c];
            if (!positions) return word;
            float sum[8], position[8];
            unpack8(word, sum);
            unpack8(((const uint4*)(positions + (long long)positionIDs[r] * cols))[c], position);
    #pragma unroll
            for (int k = 0; k < 8; k++) sum[k] += position[k];
            return pack8(sum);
        }
    };
    // The embedding stage in one pass, for bf16 rows at most 512 wide: gather_rows_vec8 of the words (and of the
    // positions), add_elementwise, layer_norm_vec8_narrow, the same bits without writing the gathered rows or their
    // sum out (ids checked on the host). On an H100 the three passes cost ~26 of ~408 device-ms per MiniLM pass
    // (gather 18.0 ms over 136 calls, add 5.3, layer norm ~2.4); fused, MiniLM's tokens/s rose 1–3 % and Ettin's stayed
    // within the runs' spread (docs/PERFORMANCE.md, session 26). Four rows per warp, 16 per 128-thread block.
    extern "C" __global__ void embed_layer_norm(const unsigned short* words, const unsigned short* positions, const int* ids,
                                                const int* positionIDs, const unsigned short* w, const unsigned short* b,
                                                unsigned short* y, int rows, int cols, float eps) {
        const int row0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * 4;
        if (row0 >= rows) return;
        layer_norm_rows<2, 4, true>(EmbeddingRows{words, positions, ids, positionIDs, cols}, w, b, y, rows, cols, eps, row0,
                                    threadIdx.x & 31);
    }

    // GeGLU on bf16 rows whose half width is a multiple of 8: eight outputs per thread.
    extern "C" __global__ void geglu_vec8(const unsigned short* x, unsigned short* y, long long rows, int half) {
        const int chunks = half >> 3;
        const long long n = rows * chunks;
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
            const long long r = i / chunks;
            const int c = (int)(i - r * chunks);
            const unsigned short* src = x + r * 2 * half + (long long)c * 8;
            float a[8], g[8], o[8];
            unpack8(*(const uint4*)src, a);
            unpack8(*(const uint4*)(src + half), g);
    #pragma unroll
            for (int k = 0; k < 8; k++) o[k] = gelu_erf(a[k]) * g[k];
            *(uint4*)(y + r * half + (long long)c * 8) = pack8(o);
        }
    }

    // `epilogue` without a bias, eight values per 16-byte access (`n8` groups of 8): the exact GELU that
    // cuBLASLt's epilogues cannot compute (MiniLM's, over tokens × 1536 a layer), then the residual. The same
    // arithmetic as `epilogue`, so the same bf16 results.
    extern "C" __global__ void epilogue_vec8(unsigned short* y, const unsigned short* residual, long long n8, int kind) {
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n8; i += (long long)gridDim.x * blockDim.x) {
            float v[8];
            unpack8(((const uint4*)y)[i], v);
    #pragma unroll
            for (int k = 0; k < 8; k++) v[k] = activate(v[k], kind);
            if (residual) {
                float r[8];
                unpack8(((const uint4*)residual)[i], r);
    #pragma unroll
                for (int k = 0; k < 8; k++) v[k] += r[k];
            }
            ((uint4*)y)[i] = pack8(v);
        }
    }

    // Embedding rows copied 16 bytes at a time (bf16 rows whose width is a multiple of 8), one warp a
    // row: a 256-wide row is one 16-byte access per lane.
    extern "C" __global__ void gather_rows_vec8(const unsigned short* table, const int* ids, unsigned short* out, int rows, int cols) {
        const int lane = threadIdx.x & 31;
        const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (r >= rows) return;
        const uint4* src = (const uint4*)(table + (long long)ids[r] * cols);
        uint4* dst = (uint4*)(out + (long long)r * cols);
        for (int c = lane; c < (cols >> 3); c += 32) dst[c] = src[c];
    }
    #endif

    // Index of the largest score per row (the smallest index among ties). One warp per row.
    extern "C" __global__ void row_argmax(const float* scores, int* out, int rows, int cols) {
        const int lane = threadIdx.x & 31;
        const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
        if (row >= rows) return;
        const float* s = scores + (long long)row * cols;
        float best = -CG_INF;
        int index = 0x7fffffff;
        for (int c = lane; c < cols; c += 32) {
            const float v = s[c];
            if (v > best) { best = v; index = c; }
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oi = __shfl_xor_sync(0xffffffffu, index, o);
            if (ob > best || (ob == best && oi < index)) { best = ob; index = oi; }
        }
        if (lane == 0) out[row] = index == 0x7fffffff ? 0 : index;
    }
    """#

    static let attentionScalarKernel = "attention_scalar"
    static let attentionTensorCoreKernel = "attention_mma"

    /// Attention over packed sequences, in two modules built per precision and head dimension: the
    /// scalar reference kernel (any head dimension, fp32 arithmetic) and the tensor-core kernel (bf16,
    /// head dimensions 32 and 64). They are separate because the scalar kernel's fully unrolled loops
    /// cost NVRTC 10–50 s, the tensor-core kernel's about 1 s: a bf16 model never compiles the former.
    /// `tiles` lists (sequence start, sequence end, first query row, 0) for every query tile, one 16-byte load
    /// a block (before, a sequence index whose bounds were a second, dependent load); grid = (tiles, heads).
    /// `window_half` < 0 means global attention.
    static let attentionScalar = common + #"""

    #ifndef CG_HEAD_DIM
    #define CG_HEAD_DIM 64
    #endif

    // Exact flash-style attention in fp32 arithmetic: one thread per query row, key/value tiles of 32
    // rows in shared memory, online softmax per tile. Any head dimension; the reference path.
    extern "C" __global__ void __launch_bounds__(64) attention_scalar(
            const act_t* qkv, act_t* out, const int4* tiles, const float* rope,
            int heads, int window_half, float scale) {
        const int HD = CG_HEAD_DIM, HALF = CG_HEAD_DIM / 2, TK = 32;
        __shared__ float Ks[32][CG_HEAD_DIM];
        __shared__ float Vs[32][CG_HEAD_DIM];
        const int h = blockIdx.y;
        const int4 tile = tiles[blockIdx.x];
        const int start = tile.x, end = tile.y, q0 = tile.z;
        const long long stride = 3LL * heads * HD;
        const int qi = q0 + (int)threadIdx.x;
        const bool active = qi < end;
        float q[CG_HEAD_DIM], acc[CG_HEAD_DIM];
    #pragma unroll
        for (int i = 0; i < HALF; i++) {
            float x1 = 0.0f, x2 = 0.0f;
            if (active) {
                const long long base = qi * stride + (long long)h * HD;
                x1 = ld(qkv, base + i); x2 = ld(qkv, base + i + HALF);
                if (rope) rope_rotate(rope, HALF, qi - start, i, x1, x2);
            }
            q[i] = x1 * scale; q[i + HALF] = x2 * scale;
            acc[i] = 0.0f; acc[i + HALF] = 0.0f;
        }
        int kbeg = start, kend = end;
        if (window_half >= 0) {
            kbeg = max(start, q0 - window_half);
            kend = min(end, q0 + 63 + window_half + 1);
        }
        float m = -CG_INF, l = 0.0f;
        for (int k0 = kbeg; k0 < kend; k0 += TK) {
            __syncthreads();
            for (int idx = threadIdx.x; idx < TK * HALF; idx += blockDim.x) {
                const int r = idx / HALF, i = idx % HALF, kj = k0 + r;
                float k1 = 0.0f, k2 = 0.0f, v1 = 0.0f, v2 = 0.0f;
                if (kj < kend) {
                    const long long base = kj * stride + (long long)heads * HD + (long long)h * HD;
                    k1 = ld(qkv, base + i); k2 = ld(qkv, base + i + HALF);
                    v1 = ld(qkv, base + (long long)heads * HD + i); v2 = ld(qkv, base + (long long)heads * HD + i + HALF);
                    if (rope) rope_rotate(rope, HALF, kj - start, i, k1, k2);
                }
                Ks[r][i] = k1; Ks[r][i + HALF] = k2; Vs[r][i] = v1; Vs[r][i + HALF] = v2;
            }
            __syncthreads();
            if (active) {
                float s[32];
                float tmax = -CG_INF;
    #pragma unroll
                for (int j = 0; j < TK; j++) {
                    const int kj = k0 + j;
                    float d = 0.0f;
    #pragma unroll
                    for (int c = 0; c < HD; c++) d += q[c] * Ks[j][c];
                    const bool ok = kj < kend && (window_half < 0 || abs(qi - kj) <= window_half);
                    s[j] = ok ? d : -CG_INF;
                    tmax = fmaxf(tmax, s[j]);
                }
                const float mnew = fmaxf(m, tmax);
                const float base = mnew == -CG_INF ? 0.0f : mnew;
                const float corr = expf(m - base);
                l *= corr;
    #pragma unroll
                for (int c = 0; c < HD; c++) acc[c] *= corr;
    #pragma unroll
                for (int j = 0; j < TK; j++) {
                    const float p = expf(s[j] - base);
                    l += p;
    #pragma unroll
                    for (int c = 0; c < HD; c++) acc[c] += p * Vs[j][c];
                }
                m = mnew;
            }
        }
        if (active) {
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            const long long o = (long long)qi * heads * HD + (long long)h * HD;
    #pragma unroll
            for (int c = 0; c < HD; c++) st(out, o + c, acc[c] * inv);
        }
    }

    """#

    /// The tensor-core attention module (see `attentionScalar`).
    static let attentionTensorCore = common + #"""

    #ifndef CG_HEAD_DIM
    #define CG_HEAD_DIM 64
    #endif

    #if CG_BF16 && (CG_HEAD_DIM == 64 || CG_HEAD_DIM == 32)
    // `rows` rows of one head's q or k (columns col0…col0+HD of qkv, rows row0…, zero from `limit` on)
    // into shared memory, rotated when `rope` is set: each thread takes the two 8-wide chunks that NeoX
    // rotary pairs (c and c + HD/2) with 16-byte loads, and the 16 (cos, sin) values of their
    // frequencies at position row − start. fp32 arithmetic, one bf16 rounding: the same values a separate
    // rotation pass would store.
    __device__ __forceinline__ void attention_load_qk(unsigned short (*dst)[CG_HEAD_DIM + 8], const unsigned short* qkv,
                                                      long long stride, int col0, int row0, int rows, int limit,
                                                      int start, const float* rope) {
        const int HALF = CG_HEAD_DIM / 2, CP = CG_HEAD_DIM / 16;
        for (int idx = threadIdx.x; idx < rows * CP; idx += blockDim.x) {
            const int r = idx / CP, c = idx % CP, row = row0 + r;
            uint4 a, b;
            a.x = 0u; a.y = 0u; a.z = 0u; a.w = 0u; b = a;
            if (row < limit) {
                const unsigned short* src = qkv + row * stride + col0 + c * 8;
                a = *(const uint4*)src;
                b = *(const uint4*)(src + HALF);
                if (rope) rope_rotate8(a, b, rope + ((long long)(row - start) * HALF + c * 8) * 2);
            }
            *(uint4*)&dst[r][c * 8] = a;
            *(uint4*)&dst[r][c * 8 + HALF] = b;
        }
    }

    #ifndef CG_ATT_PIPE
    #define CG_ATT_PIPE 0
    #endif
    #ifndef CG_ATT_MINB
    #define CG_ATT_MINB 1
    #endif
    // Pipelined variant (CG_ATT_PIPE 1): the next key/value tile's raw rows are fetched into registers
    // before this tile is scored and stored (k rotated) into the other of two shared buffers after it,
    // so global-memory latency overlaps the tensor-core work and a tile costs one barrier. 128 threads:
    // a thread holds HD/32 k chunk pairs and HD/16 v chunks.
    __device__ __forceinline__ void attention_fetch_kv(const unsigned short* qkv, long long stride, int kcol, int vcol,
                                                       int k0, int kend, uint4* kr, uint4* vr) {
        const int HALF = CG_HEAD_DIM / 2, CP = CG_HEAD_DIM / 16, CH = CG_HEAD_DIM / 8;
        uint4 zero;
        zero.x = 0u; zero.y = 0u; zero.z = 0u; zero.w = 0u;
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 32; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CP, c = idx % CP, row = k0 + r;
            kr[2 * p] = zero; kr[2 * p + 1] = zero;
            if (row < kend) {
                const unsigned short* src = qkv + row * stride + kcol + c * 8;
                kr[2 * p] = *(const uint4*)src;
                kr[2 * p + 1] = *(const uint4*)(src + HALF);
            }
        }
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 16; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CH, c = idx % CH, row = k0 + r;
            vr[p] = zero;
            if (row < kend) vr[p] = *(const uint4*)(qkv + row * stride + vcol + c * 8);
        }
    }
    __device__ __forceinline__ void attention_store_kv(unsigned short (*Kd)[CG_HEAD_DIM + 8], unsigned short (*Vd)[CG_HEAD_DIM + 8],
                                                       const uint4* kr, const uint4* vr, int k0, int kend, int start,
                                                       const float* rope) {
        const int HALF = CG_HEAD_DIM / 2, CP = CG_HEAD_DIM / 16, CH = CG_HEAD_DIM / 8;
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 32; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CP, c = idx % CP, row = k0 + r;
            uint4 a = kr[2 * p], b = kr[2 * p + 1];
            if (rope && row < kend) rope_rotate8(a, b, rope + ((long long)(row - start) * HALF + c * 8) * 2);
            *(uint4*)&Kd[r][c * 8] = a;
            *(uint4*)&Kd[r][c * 8 + HALF] = b;
        }
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 16; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CH, c = idx % CH;
            *(uint4*)&Vd[r][c * 8] = vr[p];
        }
    }

    #ifndef CG_ATT_ASYNC
    #define CG_ATT_ASYNC 0
    #endif
    #if CG_ATT_ASYNC && CG_ATT_PIPE
    #error "CG_ATT_ASYNC and CG_ATT_PIPE are two ways of prefetching the next key/value tile: pick one"
    #endif
    #if CG_ATT_ASYNC
    // Asynchronous variant (CG_ATT_ASYNC 1): the next 64-row key and value tiles are copied straight into the
    // other of two shared buffers while this tile is scored (no registers held for them, unlike CG_ATT_PIPE);
    // rows from `kend` on are zero.
    __device__ __forceinline__ void attention_issue_kv(unsigned short (*Kd)[CG_HEAD_DIM + 8], unsigned short (*Vd)[CG_HEAD_DIM + 8],
                                                       const unsigned short* qkv, long long stride, int kcol, int vcol, int k0, int kend) {
        const int CH = CG_HEAD_DIM / 8;
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 16; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CH, c = idx % CH, row = k0 + r;
            const bool valid = row < kend;
            const unsigned short* src = qkv + (valid ? row * stride : 0) + c * 8;
            cp_async16(&Kd[r][c * 8], src + kcol, valid);
            cp_async16(&Vd[r][c * 8], src + vcol, valid);
        }
    }
    // RoPE of a key tile where it landed in shared memory: the chunks and arithmetic of attention_load_qk, so
    // the same rotated values.
    __device__ __forceinline__ void attention_rope_tile(unsigned short (*Kd)[CG_HEAD_DIM + 8], int k0, int kend, int start, const float* rope) {
        const int HALF = CG_HEAD_DIM / 2, CP = CG_HEAD_DIM / 16;
    #pragma unroll
        for (int p = 0; p < CG_HEAD_DIM / 32; p++) {
            const int idx = threadIdx.x + p * 128, r = idx / CP, c = idx % CP, row = k0 + r;
            if (row >= kend) continue;
            uint4 a = *(const uint4*)&Kd[r][c * 8], b = *(const uint4*)&Kd[r][c * 8 + HALF];
            rope_rotate8(a, b, rope + ((long long)(row - start) * HALF + c * 8) * 2);
            *(uint4*)&Kd[r][c * 8] = a;
            *(uint4*)&Kd[r][c * 8 + HALF] = b;
        }
    }
    #endif

    #ifndef CG_ATT_MT
    #define CG_ATT_MT 1
    #endif
    // CG_ATT_BRANCHFREE 1: interior key tiles take the branch-free path (attention_scores<true>). It interleaves
    // the MMA chains but holds more registers (fewer blocks per multiprocessor): measured faster for head dim 32,
    // slower for 64 (docs/PERFORMANCE.md, session 11).
    #ifndef CG_ATT_BRANCHFREE
    #define CG_ATT_BRANCHFREE 1
    #endif
    // Shared rows: two 64-row key/value buffers per pipeline stage (CG_ATT_PIPE or CG_ATT_ASYNC: two stages); the query tile (64 · CG_ATT_MT rows) lives
    // at the start of the same space (CG_ATT_ASYNC: in the second stage) until its fragments are in registers.
    #define CG_ATT_KVROWS (128 * (CG_ATT_PIPE + CG_ATT_ASYNC + 1))
    #define CG_ATT_SROWS (64 * CG_ATT_MT > CG_ATT_KVROWS ? 64 * CG_ATT_MT : CG_ATT_KVROWS)

    // One 64-key tile's scores for a warp's row tiles, s = q·kᵀ (unscaled), −∞ in the 8-key blocks a row tile
    // cannot see (the sliding window's edges, keys past the sequence, row tiles past its end), whose MMAs are
    // skipped. FULL: every row tile sees every block of the tile (interior tiles: almost all of global
    // attention's), so there is no branch and the compiler interleaves the independent MMA chains.
    template <bool FULL>
    __device__ __forceinline__ void attention_scores(float (&s)[CG_ATT_MT][8][4], const unsigned (&qa)[CG_ATT_MT][CG_HEAD_DIM / 16][4],
                                                     unsigned short (*K)[CG_HEAD_DIM + 8], int k0, const int (&lo)[CG_ATT_MT],
                                                     const int (&hi)[CG_ATT_MT], int lane) {
    #pragma unroll
        for (int nb = 0; nb < 8; nb++) {
            bool vis[CG_ATT_MT];
            bool some = FULL;
    #pragma unroll
            for (int mt = 0; mt < CG_ATT_MT; mt++) {
                vis[mt] = FULL || (k0 + nb * 8 + 8 > lo[mt] && k0 + nb * 8 < hi[mt]);
                some = some || vis[mt];
                const float init = vis[mt] ? 0.0f : -CG_INF;
                s[mt][nb][0] = init; s[mt][nb][1] = init; s[mt][nb][2] = init; s[mt][nb][3] = init;
            }
            if (some) {
    #pragma unroll
                for (int kp = 0; kp < CG_HEAD_DIM / 32; kp++) {
                    unsigned kb[4];
                    ldsm_x4(kb, &K[nb * 8 + (lane & 7)][kp * 32 + (lane >> 3) * 8]);
    #pragma unroll
                    for (int mt = 0; mt < CG_ATT_MT; mt++) {
                        if (!vis[mt]) continue;
                        mma_bf16_16816(s[mt][nb], qa[mt][2 * kp][0], qa[mt][2 * kp][1], qa[mt][2 * kp][2], qa[mt][2 * kp][3], kb[0], kb[1]);
                        mma_bf16_16816(s[mt][nb], qa[mt][2 * kp + 1][0], qa[mt][2 * kp + 1][1], qa[mt][2 * kp + 1][2], qa[mt][2 * kp + 1][3], kb[2], kb[3]);
                    }
                }
            }
        }
    }

    // o += p·v for one 64-key tile, p = exp2(s·scale − b) (bf16 operands), row sums into l. A 16-key block that
    // no row of a row tile sees has p = 0 throughout: its MMAs are skipped. FULL as in attention_scores.
    template <bool FULL>
    __device__ __forceinline__ void attention_values(float (&o)[CG_ATT_MT][CG_HEAD_DIM / 8][4], float (&l)[CG_ATT_MT][2],
                                                     const float (&s)[CG_ATT_MT][8][4], const float (&b)[CG_ATT_MT][2],
                                                     unsigned short (*V)[CG_HEAD_DIM + 8], int k0, const int (&lo)[CG_ATT_MT],
                                                     const int (&hi)[CG_ATT_MT], int lane, float scale_log2) {
    #pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            bool vis[CG_ATT_MT];
            bool some = FULL;
            unsigned pa[CG_ATT_MT][4];
    #pragma unroll
            for (int mt = 0; mt < CG_ATT_MT; mt++) {
                vis[mt] = FULL || (k0 + kk * 16 + 16 > lo[mt] && k0 + kk * 16 < hi[mt]);
                some = some || vis[mt];
                pa[mt][0] = 0u; pa[mt][1] = 0u; pa[mt][2] = 0u; pa[mt][3] = 0u;
                if (!vis[mt]) continue;
                const float b0 = b[mt][0], b1 = b[mt][1];
                const float p00 = exp2f(fmaf(s[mt][2 * kk][0], scale_log2, -b0)), p01 = exp2f(fmaf(s[mt][2 * kk][1], scale_log2, -b0));
                const float p02 = exp2f(fmaf(s[mt][2 * kk][2], scale_log2, -b1)), p03 = exp2f(fmaf(s[mt][2 * kk][3], scale_log2, -b1));
                const float p10 = exp2f(fmaf(s[mt][2 * kk + 1][0], scale_log2, -b0)), p11 = exp2f(fmaf(s[mt][2 * kk + 1][1], scale_log2, -b0));
                const float p12 = exp2f(fmaf(s[mt][2 * kk + 1][2], scale_log2, -b1)), p13 = exp2f(fmaf(s[mt][2 * kk + 1][3], scale_log2, -b1));
                l[mt][0] += p00 + p01 + p10 + p11;
                l[mt][1] += p02 + p03 + p12 + p13;
                pa[mt][0] = pack_bf16(p00, p01); pa[mt][1] = pack_bf16(p02, p03);
                pa[mt][2] = pack_bf16(p10, p11); pa[mt][3] = pack_bf16(p12, p13);
            }
            if (!some) continue;
    #pragma unroll
            for (int np = 0; np < CG_HEAD_DIM / 16; np++) {
                unsigned vb[4];
                ldsm_x4_trans(vb, &V[kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][np * 16 + (lane >> 4) * 8]);
    #pragma unroll
                for (int mt = 0; mt < CG_ATT_MT; mt++) {
                    if (!vis[mt]) continue;
                    mma_bf16_16816(o[mt][2 * np], pa[mt][0], pa[mt][1], pa[mt][2], pa[mt][3], vb[0], vb[1]);
                    mma_bf16_16816(o[mt][2 * np + 1], pa[mt][0], pa[mt][1], pa[mt][2], pa[mt][3], vb[2], vb[3]);
                }
            }
        }
    }

    // Flash attention on tensor cores: 4 warps, each owning CG_ATT_MT consecutive 16-row MMA tiles of a
    // query tile of 64 · CG_ATT_MT rows; key/value tiles of 64 rows in shared memory (16-byte loads; RoPE
    // applied while loading, so no separate rotation pass over q and k), fragments read with ldmatrix. With
    // CG_ATT_MT 2 each key/value fragment read from shared memory feeds two MMAs, and each key/value tile is
    // fetched once per 128 query rows instead of 64. Online softmax in base 2 with the scale folded into one
    // FMA. Each warp works only on the 8-key blocks its row tiles can see (the sliding window's edges, a
    // sequence's last partial tile), skips the MMAs of a row tile past the sequence's end, and masks element
    // by element only in tiles that cross an edge; warps whose rows are all past the end only join the barriers.
    extern "C" __global__ void __launch_bounds__(128, CG_ATT_MINB) attention_mma(
            const unsigned short* qkv, unsigned short* out, const int4* tiles, const float* rope,
            int heads, int window_half, float scale_log2) {
        const int HD = CG_HEAD_DIM, CH = CG_HEAD_DIM / 8, MT = CG_ATT_MT, QR = 64 * CG_ATT_MT;
        __shared__ __align__(16) unsigned short S[CG_ATT_SROWS][CG_HEAD_DIM + 8];
        // Key buffer b at rows 128 b, value buffer b at rows 128 b + 64; the query tile at rows 0… first.
        unsigned short (*Qs)[CG_HEAD_DIM + 8] = S;
        const int h = blockIdx.y;
        const int4 tile = tiles[blockIdx.x];   // one load: the block's addresses wait on nothing else
        const int start = tile.x, end = tile.y, q0 = tile.z;
        const long long stride = 3LL * heads * HD;
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

        int kbeg = start, kend = end;
        if (window_half >= 0) {
            kbeg = max(start, q0 - window_half);
            kend = min(end, q0 + QR - 1 + window_half + 1);
        }
        // The keys row tile mt of this warp can see: [lo[mt], hi[mt]) (empty past the sequence's end).
        int lo[CG_ATT_MT], hi[CG_ATT_MT];
    #pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const int a = q0 + (warp * MT + mt) * 16;
            lo[mt] = kbeg; hi[mt] = kend;
            if (window_half >= 0) { lo[mt] = max(lo[mt], a - window_half); hi[mt] = min(hi[mt], a + 16 + window_half); }
            if (a >= end) hi[mt] = lo[mt];
        }
    #if CG_ATT_PIPE
        uint4 kr[CG_HEAD_DIM / 16], vr[CG_HEAD_DIM / 16];
        if (kbeg < kend) attention_fetch_kv(qkv, stride, heads * HD + h * HD, 2 * heads * HD + h * HD, kbeg, kend, kr, vr);
    #endif
    #if CG_ATT_ASYNC
        // The query rows and the first key/value tile in one round trip: q into the second buffer (free until the loop
        // puts the second tile there, after every warp has its q fragments), the tile into the first; q rotated where it
        // landed, as the key tiles are.
        Qs = S + 128;
        for (int idx = tid; idx < QR * CH; idx += 128) {
            const int r = idx / CH, c = idx % CH, row = q0 + r;
            const bool valid = row < end;
            cp_async16(&Qs[r][c * 8], qkv + (valid ? row * stride : 0) + h * HD + c * 8, valid);
        }
        if (kbeg < kend) attention_issue_kv(S, S + 64, qkv, stride, heads * HD + h * HD, 2 * heads * HD + h * HD, kbeg, kend);
        cp_async_commit();
        cp_async_wait_all();
        __syncthreads();
        if (rope) {
    #pragma unroll
            for (int mt = 0; mt < MT; mt++) attention_rope_tile(Qs + 64 * mt, q0 + 64 * mt, end, start, rope);
            __syncthreads();
        }
    #else
        attention_load_qk(Qs, qkv, stride, h * HD, q0, QR, end, start, rope);
        __syncthreads();
    #endif
        unsigned qa[CG_ATT_MT][HD / 16][4];
    #pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const int qr = (warp * MT + mt) * 16 + g;
    #pragma unroll
            for (int ks = 0; ks < HD / 16; ks++) {
                qa[mt][ks][0] = *(const unsigned*)&Qs[qr][ks * 16 + t * 2];
                qa[mt][ks][1] = *(const unsigned*)&Qs[qr + 8][ks * 16 + t * 2];
                qa[mt][ks][2] = *(const unsigned*)&Qs[qr][ks * 16 + t * 2 + 8];
                qa[mt][ks][3] = *(const unsigned*)&Qs[qr + 8][ks * 16 + t * 2 + 8];
            }
        }
    #if CG_ATT_PIPE
        __syncthreads();   // the query rows become key/value buffers
        if (kbeg < kend) attention_store_kv(S, S + 64, kr, vr, kbeg, kend, start, rope);
    #endif
        float o[CG_ATT_MT][HD / 8][4];
        float m[CG_ATT_MT][2], l[CG_ATT_MT][2];
    #pragma unroll
        for (int mt = 0; mt < MT; mt++) {
    #pragma unroll
            for (int nb = 0; nb < HD / 8; nb++) { o[mt][nb][0] = 0.0f; o[mt][nb][1] = 0.0f; o[mt][nb][2] = 0.0f; o[mt][nb][3] = 0.0f; }
            m[mt][0] = -CG_INF; m[mt][1] = -CG_INF; l[mt][0] = 0.0f; l[mt][1] = 0.0f;
        }

        for (int k0 = kbeg, buf = 0; k0 < kend; k0 += 64, buf ^= 1) {
    #if CG_ATT_ASYNC
            __syncthreads();   // every warp is done with the buffer the next tile goes into
            if (k0 + 64 < kend) attention_issue_kv(S + 128 * (buf ^ 1), S + 128 * (buf ^ 1) + 64, qkv, stride, heads * HD + h * HD,
                                                   2 * heads * HD + h * HD, k0 + 64, kend);
            cp_async_commit();
            cp_async_wait_one();   // this thread's copies of this tile have landed
            __syncthreads();       // everyone's
            unsigned short (*K)[CG_HEAD_DIM + 8] = S + 128 * buf;
            unsigned short (*V)[CG_HEAD_DIM + 8] = S + 128 * buf + 64;
            if (rope) {
                attention_rope_tile(K, k0, kend, start, rope);
                __syncthreads();
            }
    #elif CG_ATT_PIPE
            __syncthreads();
            const bool more = k0 + 64 < kend;
            if (more) attention_fetch_kv(qkv, stride, heads * HD + h * HD, 2 * heads * HD + h * HD, k0 + 64, kend, kr, vr);
            unsigned short (*K)[CG_HEAD_DIM + 8] = S + 128 * buf;
            unsigned short (*V)[CG_HEAD_DIM + 8] = S + 128 * buf + 64;
    #else
            __syncthreads();
            attention_load_qk(S, qkv, stride, heads * HD + h * HD, k0, 64, kend, start, rope);
            for (int idx = tid; idx < 64 * CH; idx += 128) {
                const int r = idx / CH, c = idx % CH, kj = k0 + r;
                uint4 vv;
                vv.x = 0u; vv.y = 0u; vv.z = 0u; vv.w = 0u;
                if (kj < kend) vv = *(const uint4*)(qkv + kj * stride + 2LL * heads * HD + h * HD + c * 8);
                *(uint4*)&S[64 + r][c * 8] = vv;
            }
            __syncthreads();
            unsigned short (*K)[CG_HEAD_DIM + 8] = S;
            unsigned short (*V)[CG_HEAD_DIM + 8] = S + 64;
            buf = 0;
    #endif
            bool seen[CG_ATT_MT];
            bool any = false, full = true;
    #pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                seen[mt] = k0 + 64 > lo[mt] && k0 < hi[mt];
                any = any || seen[mt];
                full = full && CG_ATT_BRANCHFREE && k0 >= lo[mt] && k0 + 64 <= hi[mt];
            }
            if (any) {
                float s[CG_ATT_MT][8][4];
                if (full) attention_scores<true>(s, qa, K, k0, lo, hi, lane);
                else attention_scores<false>(s, qa, K, k0, lo, hi, lane);
                float b[CG_ATT_MT][2];
    #pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    b[mt][0] = 0.0f; b[mt][1] = 0.0f;
                    if (!seen[mt]) continue;
                    const int a = q0 + (warp * MT + mt) * 16;
                    const bool edge = k0 + 64 > kend ||
                        (window_half >= 0 && (a + 15 - k0 > window_half || k0 + 63 - a > window_half));
                    if (edge) {
                        const int qi0 = a + g, qi1 = qi0 + 8;
    #pragma unroll
                        for (int nb = 0; nb < 8; nb++) {
    #pragma unroll
                            for (int e = 0; e < 2; e++) {
                                const int kj = k0 + nb * 8 + t * 2 + e;
                                const bool inside = kj < kend;
                                if (!(inside && (window_half < 0 || abs(qi0 - kj) <= window_half))) s[mt][nb][e] = -CG_INF;
                                if (!(inside && (window_half < 0 || abs(qi1 - kj) <= window_half))) s[mt][nb][2 + e] = -CG_INF;
                            }
                        }
                    }
                    float mx0 = -CG_INF, mx1 = -CG_INF;
    #pragma unroll
                    for (int nb = 0; nb < 8; nb++) {
                        mx0 = fmaxf(mx0, fmaxf(s[mt][nb][0], s[mt][nb][1]));
                        mx1 = fmaxf(mx1, fmaxf(s[mt][nb][2], s[mt][nb][3]));
                    }
                    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
                    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
                    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
                    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
                    const float mn0 = fmaxf(m[mt][0], mx0), mn1 = fmaxf(m[mt][1], mx1);
                    // Scores stay unscaled; exp2(s·scale − m·scale) is one FMA and one exp2 per score.
                    b[mt][0] = mn0 == -CG_INF ? 0.0f : mn0 * scale_log2;
                    b[mt][1] = mn1 == -CG_INF ? 0.0f : mn1 * scale_log2;
                    const float c0 = exp2f(m[mt][0] * scale_log2 - b[mt][0]), c1 = exp2f(m[mt][1] * scale_log2 - b[mt][1]);
                    l[mt][0] *= c0; l[mt][1] *= c1;
    #pragma unroll
                    for (int nb = 0; nb < HD / 8; nb++) { o[mt][nb][0] *= c0; o[mt][nb][1] *= c0; o[mt][nb][2] *= c1; o[mt][nb][3] *= c1; }
                    m[mt][0] = mn0; m[mt][1] = mn1;
                }
                if (full) attention_values<true>(o, l, s, b, V, k0, lo, hi, lane, scale_log2);
                else attention_values<false>(o, l, s, b, V, k0, lo, hi, lane, scale_log2);
            }
    #if CG_ATT_PIPE
            if (more) attention_store_kv(S + 128 * (buf ^ 1), S + 128 * (buf ^ 1) + 64, kr, vr, k0 + 64, kend, start, rope);
    #endif
        }
        const long long width = (long long)heads * HD;
    #pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float l0 = l[mt][0], l1 = l[mt][1];
            l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
            l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
            l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
            l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
            const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f;
            const float inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
            const int qi0 = q0 + (warp * MT + mt) * 16 + g, qi1 = qi0 + 8;
    #pragma unroll
            for (int nb = 0; nb < HD / 8; nb++) {
                const int col = h * HD + nb * 8 + t * 2;
                if (qi0 < end) *(unsigned*)&out[qi0 * width + col] = pack_bf16(o[mt][nb][0] * inv0, o[mt][nb][1] * inv0);
                if (qi1 < end) *(unsigned*)&out[qi1 * width + col] = pack_bf16(o[mt][nb][2] * inv1, o[mt][nb][3] * inv1);
            }
        }
    }
    #endif
    """#
}
