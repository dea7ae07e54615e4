// CPU emulator of the tensor-core attention kernel (see run_attention.sh beside this): one std::thread
// per CUDA thread, one block at a time; barriers for __syncthreads, warp shuffles, the warp-level MMA and
// ldmatrix (fragment layouts of the PTX ISA). Checks attention_mma against a double-precision reference
// on packed sequences, global and sliding-window, with and without RoPE; every output row must be written.
#include "warp_emulation.h"
#include "async_copy_emulation.h"
#include "kernels.inc"


int main(int argc, char** argv) {
    const int HD = CG_HEAD_DIM, H = 2, HALF = HD / 2;
    const int window = atoi(argv[1]);          // 0: global
    const bool use_rope = atoi(argv[2]) != 0;
    std::vector<int> lens;
    for (int i = 3; i < argc; i++) lens.push_back(atoi(argv[i]));
    std::vector<int> cu(1, 0);
    for (int l : lens) cu.push_back(cu.back() + l);
    const int T = cu.back(), S = (int)lens.size(), W = 3 * H * HD;
    std::mt19937 rng(HD * 131 + T + window);
    std::normal_distribution<float> N(0.0f, 1.5f);
    std::vector<unsigned short> qkv((size_t)T * W), out((size_t)T * H * HD, 0x7fc0);   // output poisoned with NaN
    for (auto& v : qkv) v = float_to_bf16(N(rng));
    const int P = 512;
    std::vector<float> rope((size_t)P * HALF * 2);
    for (int p = 0; p < P; p++) for (int i = 0; i < HALF; i++) {
        const float inv = 1.0f / powf(10000.0f, (float)(2 * i) / HD), angle = (float)p * inv;
        rope[(p * HALF + i) * 2] = cosf(angle); rope[(p * HALF + i) * 2 + 1] = sinf(angle);
    }
    std::vector<int4> tiles;
    // Query tiles of 64 · CG_ATT_MT rows, as CUDABackend.deviceLayout lists them: (start, end, first row, 0).
    for (int s = 0; s < S; s++) for (int q0 = cu[s]; q0 < cu[s + 1]; q0 += 64 * CG_ATT_MT) tiles.push_back({cu[s], cu[s + 1], q0, 0});
    const int wh = window ? window / 2 : -1;
    const float scale = 1.0f / sqrtf((float)HD);
    launch(tiles.size(), H, 128, [&] {
        attention_mma(qkv.data(), out.data(), tiles.data(), use_rope ? rope.data() : nullptr, H, wh, scale * 1.4426950408889634f);
    });
    // double-precision reference
    auto val = [&](int t, int part, int h, int c) { return (double)bf16_to_float(qkv[(size_t)t * W + part * H * HD + h * HD + c]); };
    auto rot = [&](int t, int part, int h, int pos, std::vector<double>& x) {
        for (int c = 0; c < HD; c++) x[c] = val(t, part, h, c);
        if (!use_rope) return;
        for (int i = 0; i < HALF; i++) {
            const double cs = rope[(pos * HALF + i) * 2], sn = rope[(pos * HALF + i) * 2 + 1], a = x[i], b = x[i + HALF];
            x[i] = a * cs - b * sn; x[i + HALF] = b * cs + a * sn;
        }
    };
    double num = 0, den = 0; long unwritten = 0;
    std::vector<double> q(HD), k(HD), acc(HD);
    for (int s = 0; s < S; s++) for (int h = 0; h < H; h++) for (int qi = cu[s]; qi < cu[s + 1]; qi++) {
        rot(qi, 0, h, qi - cu[s], q);
        std::vector<double> sc;
        std::vector<int> idx;
        double mx = -1e300;
        for (int kj = cu[s]; kj < cu[s + 1]; kj++) {
            if (wh >= 0 && abs(qi - kj) > wh) continue;
            rot(kj, 1, h, kj - cu[s], k);
            double d = 0;
            for (int c = 0; c < HD; c++) d += q[c] * k[c];
            sc.push_back(d * scale); idx.push_back(kj); mx = std::max(mx, d * scale);
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double l = 0;
        for (size_t j = 0; j < sc.size(); j++) { const double p = exp(sc[j] - mx); l += p; for (int c = 0; c < HD; c++) acc[c] += p * val(idx[j], 2, h, c); }
        for (int c = 0; c < HD; c++) {
            const double ref = acc[c] / l, got = bf16_to_float(out[(size_t)qi * H * HD + h * HD + c]);
            if (std::isnan(got)) unwritten++;
            num += (got - ref) * (got - ref); den += ref * ref;
        }
    }
    const double rel = sqrt(num / den);
    const bool ok = unwritten == 0 && rel < 1.2e-2;
    printf("%s attention_mma async=%d pipe=%d mt=%d hd=%d window=%d rope=%d tokens=%d: rel err %.2e, unwritten %ld\n", ok ? "PASS" : "FAIL", CG_ATT_ASYNC, CG_ATT_PIPE, CG_ATT_MT, HD, window, use_rope, T, rel, unwritten);
    return ok ? 0 : 1;
}
