// CPU emulator of the bf16 layer-norm kernels (see run_layer_norm.sh beside this): layer_norm_vec8 (one row per
// warp) and layer_norm_vec8_narrow (four rows per warp, rows up to 512 wide) against double precision, and against
// each other bit for bit (the backend picks either by width; the fused GEMM prologue repeats their arithmetic).
// Output poisoned with NaN; widths 8…1024, row counts that leave partial warps and blocks, with and without bias.
#include "warp_emulation.h"
#define CG_BF16 1
#include "core.inc"

int main() {
    std::mt19937 rng(5);
    std::normal_distribution<float> N(0.5f, 2.0f);
    int bad = 0;
    for (int cols : {8, 256, 264, 384, 512, 776, 1024}) for (int rows : {1, 3, 16, 17, 45}) for (int hasBias : {0, 1}) {
        std::vector<unsigned short> x(rows * cols), w(cols), b(cols), one(rows * cols, 0x7fc0), four(rows * cols, 0x7fc0);
        for (auto& v : x) v = float_to_bf16(N(rng));
        for (auto& v : w) v = float_to_bf16(N(rng));
        for (auto& v : b) v = float_to_bf16(N(rng));
        const unsigned short* bias = hasBias ? b.data() : nullptr;
        launch((rows + 3) / 4, 128, [&] { layer_norm_vec8(x.data(), w.data(), bias, one.data(), rows, cols, 1e-5f); });
        const bool narrow = cols <= 512;
        if (narrow) launch((rows + 15) / 16, 128, [&] { layer_norm_vec8_narrow(x.data(), w.data(), bias, four.data(), rows, cols, 1e-5f); });
        double num = 0, den = 0;
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int c = 0; c < cols; c++) mean += bf16_to_float(x[r * cols + c]);
            mean /= cols;
            for (int c = 0; c < cols; c++) { const double d = bf16_to_float(x[r * cols + c]) - mean; var += d * d; }
            var /= cols;
            for (int c = 0; c < cols; c++) {
                const double ref = (bf16_to_float(x[r * cols + c]) - mean) / sqrt(var + 1e-5) * bf16_to_float(w[c]) + (hasBias ? bf16_to_float(b[c]) : 0);
                const double got = bf16_to_float(one[r * cols + c]);
                num += std::isnan(got) ? 1e30 : (got - ref) * (got - ref);
                den += ref * ref;
            }
        }
        const double rel = sqrt(num / den);
        const bool same = !narrow || memcmp(one.data(), four.data(), one.size() * 2) == 0;
        const bool ok = same && rel < 1e-2;
        bad += !ok;
        printf("%s layer_norm cols=%d rows=%d bias=%d: rel err %.2e%s\n", ok ? "PASS" : "FAIL", cols, rows, hasBias, rel,
               narrow ? (same ? ", four-row kernel identical" : ", four-row kernel DIFFERS") : "");
    }
    return bad ? 1 : 0;
}
