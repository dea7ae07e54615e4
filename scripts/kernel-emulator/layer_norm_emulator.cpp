// CPU emulator of the bf16 layer-norm kernels (see run_layer_norm.sh beside this): layer_norm_vec8 (one row per
// warp) and layer_norm_vec8_narrow (four rows per warp, rows up to 512 wide) against double precision, and against
// each other bit for bit (the backend picks either by width; the fused GEMM prologue repeats their arithmetic).
// Output poisoned with NaN; widths 8…1024, row counts that leave partial warps and blocks, with and without bias.
// Then embed_layer_norm (the fused embedding stage) against gather_rows_vec8 → add_elementwise → layer_norm_vec8_narrow
// run here too, bit for bit (embeddingChecks).
#include "warp_emulation.h"
#define CG_BF16 1
#include "core.inc"

// The backend's launch shapes: one row per warp (launchRowWarps) and a grid-stride loop of 256-thread blocks
// (launchElementwise, its grid capped here at 3 blocks so the stride is crossed).
static void gatherVec8(const std::vector<unsigned short>& table, const std::vector<int>& ids, std::vector<unsigned short>& out, int cols) {
    const int rows = (int)ids.size();
    launch((rows + 3) / 4, 128, [&] { gather_rows_vec8(table.data(), ids.data(), out.data(), rows, cols); });
}
static void addElementwise(const std::vector<unsigned short>& a, const std::vector<unsigned short>& b, std::vector<unsigned short>& out) {
    const long long n = (long long)out.size();
    launch(std::min<long long>((n + 255) / 256, 3), 256, [&] { add_elementwise(a.data(), b.data(), out.data(), n); });
}

// The fused embedding kernel against the three kernels it replaces, bit for bit, and against double precision:
// widths 128…512, row counts that leave partial warps and 16-row blocks, repeated ids and each table's last row,
// with and without positions (BERT, ModernBERT) and bias. Last, the comparison must catch a wrong position row.
static int embeddingChecks(std::mt19937& rng) {
    std::normal_distribution<float> N(0.3f, 1.5f);
    int bad = 0;
    auto run = [&](int cols, int rows, bool withPositions, bool hasBias, bool shiftPositions) {
        const int vocab = 61, positionRows = 40;
        std::vector<unsigned short> words(vocab * cols), positions(positionRows * cols), w(cols), b(cols);
        for (auto& v : words) v = float_to_bf16(N(rng));
        for (auto& v : positions) v = float_to_bf16(N(rng));
        for (auto& v : w) v = float_to_bf16(N(rng));
        for (auto& v : b) v = float_to_bf16(N(rng));
        std::vector<int> ids(rows), positionIDs(rows);
        for (int r = 0; r < rows; r++) {
            ids[r] = r % 7 == 3 ? vocab - 1 : (int)(rng() % 9);   // few distinct ids: many repeats
            positionIDs[r] = r % 11 == 5 ? positionRows - 1 : r % 23;
        }
        const unsigned short* bias = hasBias ? b.data() : nullptr;
        const size_t n = (size_t)rows * cols;
        std::vector<unsigned short> gathered(n, 0x7fc0), gatheredPositions(n, 0x7fc0), sum(n, 0x7fc0), separate(n, 0x7fc0), fused(n, 0x7fc0);
        gatherVec8(words, ids, gathered, cols);
        const std::vector<unsigned short>* normInput = &gathered;
        if (withPositions) {
            gatherVec8(positions, positionIDs, gatheredPositions, cols);
            addElementwise(gathered, gatheredPositions, sum);
            normInput = &sum;
        }
        launch((rows + 15) / 16, 128, [&] { layer_norm_vec8_narrow(normInput->data(), w.data(), bias, separate.data(), rows, cols, 1e-12f); });
        std::vector<int> fusedPositionIDs = positionIDs;
        if (shiftPositions) for (auto& p : fusedPositionIDs) p = (p + 1) % positionRows;
        launch((rows + 15) / 16, 128, [&] {
            embed_layer_norm(words.data(), withPositions ? positions.data() : nullptr, ids.data(), fusedPositionIDs.data(), w.data(), bias,
                             fused.data(), rows, cols, 1e-12f);
        });
        double num = 0, den = 0;
        for (int r = 0; r < rows; r++) {
            std::vector<double> x(cols);
            double mean = 0, var = 0;
            for (int c = 0; c < cols; c++) {
                x[c] = bf16_to_float(words[ids[r] * cols + c]) + (withPositions ? bf16_to_float(positions[positionIDs[r] * cols + c]) : 0.0);
                mean += x[c];
            }
            mean /= cols;
            for (int c = 0; c < cols; c++) var += (x[c] - mean) * (x[c] - mean);
            var /= cols;
            for (int c = 0; c < cols; c++) {
                const double ref = (x[c] - mean) / sqrt(var + 1e-12) * bf16_to_float(w[c]) + (hasBias ? bf16_to_float(b[c]) : 0);
                const double got = bf16_to_float(fused[r * cols + c]);
                num += std::isnan(got) ? 1e30 : (got - ref) * (got - ref);
                den += ref * ref;
            }
        }
        const double rel = sqrt(num / den);
        return std::make_pair(memcmp(separate.data(), fused.data(), n * 2) == 0, rel);
    };
    for (int cols : {128, 256, 384, 512}) for (int rows : {1, 5, 16, 45, 67}) for (int withPositions : {1, 0}) for (int hasBias : {1, 0}) {
        const auto [same, rel] = run(cols, rows, withPositions, hasBias, false);
        const bool ok = same && rel < 1e-2;
        bad += !ok;
        printf("%s embed_layer_norm cols=%d rows=%d positions=%d bias=%d: %s the three kernels, rel err %.2e\n", ok ? "PASS" : "FAIL",
               cols, rows, withPositions, hasBias, same ? "identical to" : "DIFFERS from", rel);
    }
    // The comparison is able to fail: the fused kernel reading each token's next position row must differ.
    const bool caught = !run(384, 45, true, true, true).first;
    bad += !caught;
    printf("%s embed_layer_norm with a wrong position row is %s\n", caught ? "PASS" : "FAIL", caught ? "caught" : "NOT caught");
    return bad;
}

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
    bad += embeddingChecks(rng);
    return bad ? 1 : 0;
}
