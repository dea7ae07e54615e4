// The search's NEON bodies (the exact stage's token loop in Sources/CKernels/maxsim_neon.c, the codes stage's
// ck_code_maxsum_u8 in maxsim.c) against the scalar bodies, bit for bit, for a machine
// without ARM hardware: scripts/neon/check.sh cross-compiles this file with the kernels for 64-bit ARM and runs it
// under qemu-aarch64. The shapes are those of Plaid's SearchKernelCheck (which runs the same comparison inside the
// Swift tests on an ARM machine): int8 query values at ±127, levels up to 63, 1/2/4 bits, dimensions whose group count
// is odd, query lengths with a half block or more than one 32-token step, stored or derived norms, many tokens on
// one centroid. Exit status 1 on any difference.
#define _GNU_SOURCE
#include "CKernels.h"
#include "CKernelsAssign.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 1;
static unsigned next(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(state >> 33);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next() % 1000001) / 1000000.0f; }
static int compare_codes(const void *a, const void *b) { return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b; }

int main(void) {
    if (!ck_search_isa_available(CK_ISA_NEON)) {
        printf("this build has no NEON body (not 64-bit ARM)\n");
        return 1;
    }
    const long dims[] = {20, 36, 44, 48, 64, 128}, bits[] = {1, 2, 4}, lengths[] = {1, 7, 8, 9, 16, 23, 32, 40, 65, 80};
    long cases = 0, failures = 0;
    for (int di = 0; di < 6; di++)
        for (int bi = 0; bi < 3; bi++)
            for (int li = 0; li < 10; li++)
                for (int stored = 0; stored < 2; stored++) {
                    long dim = dims[di], nbits = bits[bi], nq = lengths[li];
                    if (dim * nbits % 8) continue;
                    long k = 24, docs = 5, count = 300, dp = (dim + 31) / 32 * 32, nqp = (nq + 7) / 8 * 8, bytes = dim * nbits / 8;
                    int8_t *q = calloc((size_t)(nqp * dp), 1);
                    for (long t = 0; t < nq; t++)
                        for (long d = 0; d < dim; d++)
                            q[t * dp + d] = next() % 4 == 0 ? (next() % 2 ? 127 : -127) : (int8_t)((int)(next() % 255) - 127);
                    float *scale = calloc((size_t)nqp, sizeof(float)), *offset = calloc((size_t)nqp, sizeof(float));
                    for (long t = 0; t < nq; t++) {
                        scale[t] = uniform(0.0001f, 0.01f);
                        offset[t] = uniform(-0.5f, 0.5f);
                    }
                    uint8_t lut[16] = {0};
                    long levels = 1L << nbits;
                    for (long i = 0; i < levels; i++) lut[i] = (uint8_t)(i * 63 / (levels - 1));
                    float *centroids = malloc((size_t)(k * dim) * sizeof(float)), *ctable = malloc((size_t)(k * nqp) * sizeof(float));
                    for (long i = 0; i < k * dim; i++) centroids[i] = uniform(-0.3f, 0.3f);
                    for (long i = 0; i < k * nqp; i++) ctable[i] = uniform(-1, 1);
                    uint16_t *codes = malloc((size_t)count * sizeof(uint16_t));
                    uint32_t *owners = malloc((size_t)count * sizeof(uint32_t));
                    uint8_t *packed = malloc((size_t)(count * bytes));
                    float *norms = malloc((size_t)count * sizeof(float));
                    for (long i = 0; i < count; i++) codes[i] = (uint16_t)(next() % 3 == 0 ? 0 : next() % k);
                    qsort(codes, (size_t)count, sizeof(uint16_t), compare_codes);
                    for (long i = 0; i < count; i++) {
                        owners[i] = next() % docs;
                        norms[i] = uniform(0.5f, 1.5f);
                    }
                    for (long i = 0; i < count * bytes; i++) packed[i] = next() % 3 == 0 ? 0xFF : (uint8_t)next();
                    int16_t *c16 = malloc((size_t)(k * dp) * sizeof(int16_t));
                    float *cscale = malloc((size_t)k * sizeof(float)), *csum = malloc((size_t)k * sizeof(float));
                    ck_exact_centroids_build_scalar(centroids, k, dim, dp, c16, cscale, csum);
                    ck_residual_query Q = {dim, dp, nq, nqp, nbits, q, scale, offset, lut, -0.02f, 0.0007f, centroids, ctable};
                    ck_exact_centroids C = {c16, cscale, csum};
                    float *best = malloc((size_t)(docs * nqp) * sizeof(float)), expected[5], got[5];
                    ck_residual_maxsim_sorted_scalar(&Q, &C, docs, count, codes, owners, packed, stored ? norms : NULL, best, expected);
                    int ran = ck_residual_maxsim_sorted_with(CK_ISA_NEON, &Q, &C, docs, count, codes, owners, packed,
                                                             stored ? norms : NULL, best, got);
                    cases++;
                    for (long i = 0; i < docs; i++)
                        if (!ran || memcmp(&got[i], &expected[i], sizeof(float)) != 0) {
                            if (failures < 5)
                                printf("FAIL dim %ld, %ld bits, nq %ld, norms %s: document %ld: %.9g, scalar %.9g\n", dim, nbits, nq,
                                       stored ? "stored" : "derived", i, got[i], expected[i]);
                            failures++;
                            break;
                        }
                    free(q); free(scale); free(offset); free(centroids); free(ctable); free(codes); free(owners); free(packed);
                    free(norms); free(c16); free(cscale); free(csum); free(best);
                }
    printf("%s residual_maxsim_sorted neon vs scalar, %ld shapes, %ld differ\n", failures ? "FAIL" : "PASS", cases, failures);
    // The codes stage: ck_code_maxsum_u8 (NEON for widths that are multiples of 16) against the scalar body, tables
    // of K rows whose columns past `used` are zero, as the search builds them.
    long code_cases = 0, code_failures = 0;
    for (long used = 1; used <= 72; used += 5) {
        long width = (used + 31) / 32 * 32, k = 300;
        uint8_t *table = calloc((size_t)(k * width), 1);
        for (long c = 0; c < k; c++)
            for (long q = 0; q < used; q++) table[c * width + q] = next() % 5 == 0 ? 255 : (uint8_t)next();
        for (long count = 1; count <= 130; count += 13) {
            uint16_t codes[130];
            for (long i = 0; i < count; i++) codes[i] = (uint16_t)(next() % k);
            uint32_t got = ck_code_maxsum_u8(codes, count, table, width, used);
            uint32_t expected = ck_code_maxsum_u8_scalar(codes, count, table, width, used);
            code_cases++;
            if (got != expected) {
                if (code_failures < 5) printf("FAIL code_maxsum_u8 used %ld, %ld tokens: %u, scalar %u\n", used, count, got, expected);
                code_failures++;
            }
        }
        free(table);
    }
    printf("%s code_maxsum_u8 neon vs scalar, %ld shapes, %ld differ\n", code_failures ? "FAIL" : "PASS", code_cases, code_failures);
    return failures || code_failures ? 1 : 0;
}
