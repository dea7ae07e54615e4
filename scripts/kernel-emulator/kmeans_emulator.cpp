// CPU emulator of the k-means CUDA kernels (see run.sh beside this).
// CPU emulation of the k-means CUDA kernels: one std::thread per CUDA thread, one block at a time,
// barriers for __syncthreads / warp shuffles / the warp-level MMA.
#include <algorithm>
#include <mutex>
#include "warp_emulation.h"
struct float2 { float x, y; };
static std::mutex atomic_lock;
alignas(16) static unsigned char emu_dynamic_shared[300 * 1024];
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> g(atomic_lock); float o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { std::lock_guard<std::mutex> g(atomic_lock); int o = *p; *p = o + v; return o; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { std::lock_guard<std::mutex> g(atomic_lock); unsigned long long o = *p; *p = o + v; return o; }
using std::min;
#include "kernels.inc"

static float round_bf16(float v) { unsigned u = __float_as_uint(v); u += 0x7fff + ((u >> 16) & 1); return __uint_as_float(u & 0xffff0000u); }

// Coarse-to-fine assignment (km_c2f_*): groups of the centroids around G centres, each vector's p best
// centres, then the best centroid of those groups; against the same search in double precision.
// Checks that failed; main's exit status (run.sh stops at the first configuration that fails).
static int failures = 0;

static void coarse_to_fine(const std::vector<float>& x, const std::vector<float>& c, int n, int d, int k, int groupSize = 16) {
    const int G = std::max(2, k / groupSize), p = std::min(5, G - 1);
    std::vector<float> centers(G * d);
    for (int g = 0; g < G; g++) for (int q = 0; q < d; q++) centers[g * d + q] = c[(g * 7 % k) * d + q];
    auto score = [&](const float* a, const float* b) { double dot = 0, nn = 0; for (int q = 0; q < d; q++) { dot += (double)a[q] * b[q]; nn += (double)b[q] * b[q]; } return dot - 0.5 * nn; };
    // members: each centroid in its nearest centre's group, in increasing index order
    std::vector<std::vector<int>> members(G);
    for (int j = 0; j < k; j++) {
        int bg = 0; double bs = -1e300;
        for (int g = 0; g < G; g++) { double s = score(&c[j * d], &centers[g * d]); if (s > bs) { bs = s; bg = g; } }
        members[bg].push_back(j);
    }
    // empty groups dropped (as the host side does)
    std::vector<int> used;
    for (int g = 0; g < G; g++) if (!members[g].empty()) used.push_back(g);
    const int U = used.size();
    std::vector<float> ucenters(U * d), cbias(U), gc, gbias;
    std::vector<int> gidx, goff(1, 0);
    for (int u = 0; u < U; u++) {
        double nn = 0;
        for (int q = 0; q < d; q++) { ucenters[u * d + q] = centers[used[u] * d + q]; nn += (double)centers[used[u] * d + q] * centers[used[u] * d + q]; }
        cbias[u] = (float)(-0.5 * nn);
        for (int j : members[used[u]]) {
            double m = 0;
            for (int q = 0; q < d; q++) { gc.push_back(c[j * d + q]); m += (double)c[j * d + q] * c[j * d + q]; }
            gbias.push_back((float)(-0.5 * m)); gidx.push_back(j);
        }
        goff.push_back(gidx.size());
    }
    const int pp = std::min(p, U);
    // One run of the grouped search: top (vectors' p best centres), list (entries bucketed by group), out (codes).
    struct Run { std::vector<int> top, list, out; };
    auto search = [&](bool tensorCore) {
        Run r{std::vector<int>(n * pp, -1), std::vector<int>(n * pp, -1), std::vector<int>(n, -1)};
        std::vector<int> counts(U, 0), starts(U + 1, -1), cursor(U, -1), tile_start(U + 1, -1), label(n * pp, -1);
        std::vector<float> sc(n * pp, NAN);
        const int tiles = (n * pp + 127) / 128 + U;
        std::vector<int> tile_group(tiles, -1);
    #if CG_BF16 && KM_XREG
        if (tensorCore) {
            // The tensor-core path reads act_t rows (the vectors and the group-ordered centroids, KM_DP wide).
            std::vector<act_t> xa(n * CG_KM_DP), gca(k * CG_KM_DP), ca(U * CG_KM_DP);
            launch(3, 256, [&] { km_convert_rows(x.data(), xa.data(), n, d); });
            launch(3, 256, [&] { km_convert_rows(gc.data(), gca.data(), k, d); });
            launch(3, 256, [&] { km_convert_rows(ucenters.data(), ca.data(), U, d); });
            launch((n + 127) / 128, 128, [&] { km_c2f_top_mma(xa.data(), n, ca.data(), cbias.data(), U, pp, r.top.data(), counts.data()); });
            launch(1, 256, [&] { km_c2f_scan(counts.data(), U, starts.data(), cursor.data(), tile_start.data()); });
            launch(U, 128, [&] { km_c2f_tile_groups(tile_start.data(), tile_group.data()); });
            launch((n + 255) / 256, 256, [&] { km_c2f_scatter(r.top.data(), n, pp, U, cursor.data(), r.list.data()); });
            launch(tiles, 128, [&] { km_c2f_fine_mma(xa.data(), pp, gca.data(), gbias.data(), gidx.data(), goff.data(), starts.data(), tile_start.data(), tile_group.data(), U, r.list.data(), sc.data(), label.data()); });
            launch(2, 64, [&] { km_c2f_reduce(sc.data(), label.data(), n, pp, r.out.data()); });
            return r;
        }
    #endif
        launch((n + 127) / 128, 128, [&] { km_c2f_top(x.data(), n, d, ucenters.data(), cbias.data(), U, pp, r.top.data(), counts.data()); });
        launch(1, 256, [&] { km_c2f_scan(counts.data(), U, starts.data(), cursor.data(), tile_start.data()); });
            launch(U, 128, [&] { km_c2f_tile_groups(tile_start.data(), tile_group.data()); });
        launch((n + 255) / 256, 256, [&] { km_c2f_scatter(r.top.data(), n, pp, U, cursor.data(), r.list.data()); });
        launch(tiles, 128, [&] { km_c2f_fine(x.data(), d, pp, gc.data(), gbias.data(), gidx.data(), goff.data(), starts.data(), tile_start.data(), tile_group.data(), U, r.list.data(), sc.data(), label.data()); });
        launch(2, 64, [&] { km_c2f_reduce(sc.data(), label.data(), n, pp, r.out.data()); });
        return r;
    };
    // reference in double
    std::vector<int> want(n), exactWant(n);
    std::vector<std::vector<int>> wantTop(n);
    for (int i = 0; i < n; i++) {
        std::vector<std::pair<double, int>> cs;
        for (int u = 0; u < U; u++) cs.push_back({score(&x[i * d], &ucenters[u * d]) , u});
        std::stable_sort(cs.begin(), cs.end(), [](auto& a, auto& b) { return a.first > b.first; });
        for (int r = 0; r < pp; r++) wantTop[i].push_back(cs[r].second);
        double bs = -1e300; int bi = -1;
        for (int r = 0; r < pp; r++) for (int j : members[used[cs[r].second]]) { double s = score(&x[i * d], &c[j * d]); if (s > bs || (s == bs && j < bi)) { bs = s; bi = j; } }
        want[i] = bi;
        double es = -1e300; int ei = 0;
        for (int j = 0; j < k; j++) { double s = score(&x[i * d], &c[j * d]); if (s > es) { es = s; ei = j; } }
        exactWant[i] = ei;
    }
    for (int tensorCore = 0; tensorCore < 2; tensorCore++) {
    #if !(CG_BF16 && KM_XREG)
        if (tensorCore) break;
    #endif
        const Run r = search(tensorCore);
        int wrong = 0, exact = 0, topWrong = 0;
        for (int i = 0; i < n; i++) {
            for (int q = 0; q < pp; q++) if (r.top[i * pp + q] != wantTop[i][q]) topWrong++;
            if (r.out[i] != want[i]) { if (wrong < 5) printf("  c2f%s row %d: got %d want %d\n", tensorCore ? " (tensor cores)" : "", i, r.out[i], want[i]); wrong++; }
            exact += r.out[i] == exactWant[i];
        }
        int listBad = 0;
        std::vector<int> seen(n * pp, 0);
        for (int e : r.list) { if (e < 0 || e >= n * pp) listBad++; else seen[e]++; }
        for (int s2 : seen) if (s2 != 1) listBad++;
        printf("c2f%s d=%d n=%d k=%d groups=%d probes=%d: %d / %d differ from the double-precision coarse-to-fine search, %d probe slots differ, %d list errors; %d / %d equal the exhaustive argmax\n",
               tensorCore ? " (tensor cores: km_c2f_top_mma, km_c2f_fine_mma)" : "", d, n, k, U, pp, wrong, n, topWrong, listBad, exact, n);
        failures += wrong > 0 || topWrong > 0 || listBad > 0;
    }
}

int main(int argc, char** argv) {
    const int d = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    const int DP = CG_KM_DP, KP = (k + 127) / 128 * 128;
    std::mt19937 rng(d * 7 + n);
    std::uniform_real_distribution<float> U(-1.7f, 1.7f);
    std::vector<float> x(n * d), c(k * d);
    for (auto& v : x) v = round_bf16(U(rng));
    for (auto& v : c) v = round_bf16(U(rng));
    // "ties": every centroid repeats one of the first 50 exactly (equal scores within and across
    // tiles: the smallest index must win).
    // "c2f": only the coarse-to-fine kernels, with groups of ~70 centroids (several tiles per group).
    if (argc > 4 && !strcmp(argv[4], "c2f")) { coarse_to_fine(x, c, n, d, k, 70); return failures ? 1 : 0; }
    // "c2fmany": groups of ~16 centroids, so over 64 groups (several centre tiles of the tensor-core top, the last partial).
    if (argc > 4 && !strcmp(argv[4], "c2fmany")) { coarse_to_fine(x, c, n, d, k, 16); return failures ? 1 : 0; }
    if (argc > 4) for (int j = 50; j < k; j++) for (int q = 0; q < d; q++) c[j * d + q] = c[(j % 50) * d + q];
    std::vector<act_t> xa(n * DP), ca(KP * DP);
    std::vector<float> bias(KP);
    launch(3, 256, [&] { km_convert_rows(x.data(), xa.data(), n, d); });
    launch((KP + 3) / 4, 128, [&] { km_prepare_f32(c.data(), k, KP, d, 1, ca.data(), bias.data()); });
    // reference
    std::vector<int> ref(n);
    for (int i = 0; i < n; i++) {
        double best = -1e300; int bi = 0;
        for (int j = 0; j < k; j++) {
            double dot = 0, nn = 0;
            for (int q = 0; q < d; q++) { dot += (double)x[i * d + q] * c[j * d + q]; nn += (double)c[j * d + q] * c[j * d + q]; }
            double s = dot - 0.5 * nn;
            if (s > best) { best = s; bi = j; }
        }
        ref[i] = bi;
    }
    auto compare = [&](const char* name, std::vector<int>& out) {
        int wrong = 0;
        for (int i = 0; i < n; i++) if (out[i] != ref[i]) { if (wrong < 5) printf("  %s row %d: got %d want %d\n", name, i, out[i], ref[i]); wrong++; }
        printf("%s d=%d n=%d k=%d: %d / %d differ\n", name, d, n, k, wrong, n);
        failures += wrong > 0;
    };
    std::vector<int> out(n, -1);
    launch((n + 63) / 64, 256, [&] { km_assign_plain(xa.data(), n, ca.data(), bias.data(), KP, out.data()); });
    compare("plain", out);
#if CG_BF16
    std::fill(out.begin(), out.end(), -1);
    const int BM = 32 * CG_KM_WM;
    launch((n + BM - 1) / BM, 64 * CG_KM_WM, [&] { km_assign_mma(xa.data(), n, ca.data(), bias.data(), KP, out.data()); });
    compare("mma", out);
#endif
    // Lloyd update from the reference labels
    std::vector<unsigned long long> sums(k * d, 0);  // km_accumulate's fixed-point slots
    std::vector<float> cen = c;
    std::vector<int> counts(k, 0);
    launch(4, 256, [&] { km_accumulate(x.data(), n, d, ref.data(), sums.data(), counts.data()); });
    launch(4, 256, [&] { km_update(cen.data(), sums.data(), counts.data(), k, d); });
    double err = 0; int empty = 0;
    for (int j = 0; j < k; j++) {
        int cnt = 0; std::vector<double> s(d, 0);
        for (int i = 0; i < n; i++) if (ref[i] == j) { cnt++; for (int q = 0; q < d; q++) s[q] += x[i * d + q]; }
        if (!cnt) empty++;
        for (int q = 0; q < d; q++) { double want = cnt ? s[q] / cnt : c[j * d + q]; err = std::max(err, fabs(want - cen[j * d + q])); }
    }
    printf("update: max abs error %.2e (%d empty kept)\n", err, empty);
    failures += !(err < 1e-4);  // fixed-point sums in 2^-24 steps
    // Device-resident sample: rows gathered by index (repeats and the last row included), exact copies.
    {
        const int m = n / 2 + 3;
        std::vector<int> idx(m);
        for (int i = 0; i < m; i++) idx[i] = (int)((i * 7919LL + 13) % n);
        idx[0] = n - 1; idx[m - 1] = idx[1];
        std::vector<float> g(m * d, NAN);
        launch(3, 256, [&] { km_gather_rows(x.data(), idx.data(), m, d, g.data()); });
        int bad = 0;
        for (int i = 0; i < m; i++) for (int q = 0; q < d; q++) if (g[i * d + q] != x[idx[i] * d + q]) bad++;
        printf("gather d=%d rows=%d: %d / %d values differ\n", d, m, bad, m * d);
        failures += bad > 0;
        // The same rows from the act_t copy (x holds bf16 values, so exact), by index and all in order (no index).
        std::vector<float> ga(m * d, NAN), all(n * d, NAN);
        launch(3, 256, [&] { km_gather_rows_act(xa.data(), idx.data(), m, d, ga.data()); });
        launch(3, 256, [&] { km_gather_rows_act(xa.data(), nullptr, n, d, all.data()); });
        bad = 0;
        for (int i = 0; i < m; i++) for (int q = 0; q < d; q++) if (ga[i * d + q] != x[idx[i] * d + q]) bad++;
        for (int i = 0; i < n * d; i++) if (all[i] != x[i]) bad++;
        printf("gather from act_t rows d=%d rows=%d and %d in order: %d values differ\n", d, m, n, bad);
        failures += bad > 0;
        // The grouped search's biases: -0.5 |c|^2 summed in double, as the host computed them.
        std::vector<float> norms(k, NAN);
        launch(2, 64, [&] { km_half_sq_norms(c.data(), k, d, norms.data()); });
        bad = 0;
        for (int j = 0; j < k; j++) {
            double sum = 0;
            for (int q = 0; q < d; q++) sum += (double)c[j * d + q] * (double)c[j * d + q];
            if (norms[j] != (float)(-0.5 * sum)) bad++;
        }
        printf("half squared norms d=%d rows=%d: %d differ from the host's\n", d, k, bad);
        failures += bad > 0;
        // A grouping's member table (km_group_offsets, km_group_members): labels of k centroids in G groups, two of them empty (one the
        // last); members listed group by group in increasing index order, offsets 0..k, empty groups' bias -inf. Also
        // 2,500 centroids: three 1,024-label chunks, the last partial, so each group's run carries over chunks.
        for (const int K : {k, 2500}) {
            const int k = K, G = std::max(3, k / 7 > 60 ? 37 : k / 7);
            std::vector<int> glabel(k), offsets(G + 1, -1), gmembers(k, -1);
            for (int j = 0; j < k; j++) {
                int g = (int)((j * 2654435761u) % (unsigned)G);
                if (g == 1 || g == G - 1) g = 0;
                glabel[j] = g;
            }
            std::vector<float> gbias(G, 0.25f);
            launch(1, 1024, [&] { km_group_offsets(glabel.data(), k, G, offsets.data(), gbias.data()); });
            launch(G, 256, [&] { km_group_members(glabel.data(), k, offsets.data(), gmembers.data()); });
            std::vector<int> want_off(1, 0), want_members;
            for (int g = 0; g < G; g++) {
                for (int j = 0; j < k; j++) if (glabel[j] == g) want_members.push_back(j);
                want_off.push_back((int)want_members.size());
            }
            bad = 0;
            for (int g = 0; g <= G; g++) bad += offsets[g] != want_off[g];
            for (int j = 0; j < k; j++) bad += gmembers[j] != want_members[j];
            for (int g = 0; g < G; g++) bad += (want_off[g + 1] == want_off[g]) ? !(gbias[g] < -1e38f) : gbias[g] != 0.25f;
            printf("group members k=%d groups=%d: %d offsets, members or biases wrong\n", k, G, bad);
            failures += bad > 0;
        }
    }
    // Residual packing (km_residual_pack): every bit width with whole bytes a row, against the codec's definition
    // (bucket = cutoffs strictly below x − c[code], 8 / nbits a byte from the lowest bits); cutoffs include residuals
    // met exactly (equal is not below) and a repeated value.
    for (int nbits : {1, 2, 4, 8}) {
        if (d * nbits % 8) continue;
        const int ncut = (1 << nbits) - 1, per = 8 / nbits, bytes = d / per;
        std::vector<float> cut(ncut);
        for (int i = 0; i < ncut; i++) cut[i] = -1.2f + 2.4f * (i + 1) / (ncut + 1);
        cut[ncut / 2] = x[d + 3] - c[ref[1] * d + 3];
        if (ncut > 2) cut[ncut / 2 + 1] = cut[ncut / 2];
        std::sort(cut.begin(), cut.end());
        std::vector<unsigned char> got((size_t)n * bytes, 0xA5), want((size_t)n * bytes);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < bytes; j++) {
                unsigned byte = 0;
                for (int e = 0; e < per; e++) {
                    const float v = x[i * d + j * per + e] - c[ref[i] * d + j * per + e];
                    unsigned b = 0;
                    for (int t = 0; t < ncut; t++) b += cut[t] < v;
                    byte |= b << (e * nbits);
                }
                want[(size_t)i * bytes + j] = (unsigned char)byte;
            }
        launch(3, 256, [&] { km_residual_pack(x.data(), ref.data(), n, d, c.data(), cut.data(), nbits, got.data()); });
        int bad = 0;
        for (size_t i = 0; i < got.size(); i++) bad += got[i] != want[i];
        printf("residual pack d=%d n=%d nbits=%d: %d / %zu bytes differ\n", d, n, nbits, bad, got.size());
        failures += bad > 0;
    }
    if (argc <= 4) coarse_to_fine(x, c, n, d, k);
    if (failures) printf("FAIL: %d check(s) above\n", failures);
    return failures ? 1 : 0;
}
