// Ward merges of token pooling (Plaid's TokenPooler): the nearest-neighbour chain over one document's
// squared cosine distances.
//
// The reference scans an active list (original rows by index, then new clusters in creation order)
// and takes the first nearest in that order. Here each slot carries its place in that order as a key
// (a row's index; m + t for the cluster of merge t) and distances live in rows padded to a multiple of
// 16 with +inf on the diagonal and in every column no longer active, so a nearest-neighbour search is a
// vector minimum over one row, ties going to the smallest key. Same merges, in the same order, with the
// same arithmetic (PoolingEquivalenceTests hold it to the list scan); the list scans and their
// bookkeeping were ~85 % of pooling's CPU.

#include "CKernels.h"

#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CKW_SSE 1
#else
#define CKW_SSE 0
#endif

// Ward's update must round each operation as the reference's expression does: no fused multiply-add.
#pragma STDC FP_CONTRACT OFF

/// The smallest of `count` (a multiple of 16) floats, none of them NaN.
static float row_minimum(const float *row, long count) {
#if CKW_SSE
    __m128 a = _mm_set1_ps(INFINITY), b = a, c = a, d = a;
    for (long j = 0; j < count; j += 16) {
        a = _mm_min_ps(a, _mm_loadu_ps(row + j));
        b = _mm_min_ps(b, _mm_loadu_ps(row + j + 4));
        c = _mm_min_ps(c, _mm_loadu_ps(row + j + 8));
        d = _mm_min_ps(d, _mm_loadu_ps(row + j + 12));
    }
    a = _mm_min_ps(_mm_min_ps(a, b), _mm_min_ps(c, d));
    a = _mm_min_ps(a, _mm_movehl_ps(a, a));
    a = _mm_min_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
#else
    float low = INFINITY;
    for (long j = 0; j < count; j++) low = row[j] < low ? row[j] : low;
    return low;
#endif
}

/// Row `out` = Ward's Lance–Williams distance of the merge of x and y to every slot:
/// ((nx + nk)·dx + (ny + nk)·dy − nk·dxy) / (nx + ny + nk), term by term. +inf (inactive columns,
/// the diagonal, padding) stays +inf: every factor and divisor is positive and dxy finite.
static void ward_row(const float *rx, const float *ry, const float *size, float nx, float ny, float dxy, float *out,
                     long count) {
#if CKW_SSE
    const __m128 vx = _mm_set1_ps(nx), vy = _mm_set1_ps(ny), vd = _mm_set1_ps(dxy);
    for (long j = 0; j < count; j += 4) {
        __m128 nk = _mm_loadu_ps(size + j);
        __m128 left = _mm_mul_ps(_mm_add_ps(vx, nk), _mm_loadu_ps(rx + j));
        __m128 right = _mm_mul_ps(_mm_add_ps(vy, nk), _mm_loadu_ps(ry + j));
        __m128 top = _mm_sub_ps(_mm_add_ps(left, right), _mm_mul_ps(nk, vd));
        _mm_storeu_ps(out + j, _mm_div_ps(top, _mm_add_ps(_mm_add_ps(vx, vy), nk)));
    }
#else
    for (long j = 0; j < count; j++) {
        float nk = size[j];
        out[j] = ((nx + nk) * rx[j] + (ny + nk) * ry[j] - nk * dxy) / (nx + ny + nk);
    }
#endif
}

/// Of the slots whose distance in `row` equals `nearest` (at least one; padding and inactive slots hold
/// +inf, `nearest` is finite), the one earliest in the reference's order (smallest key); -1 if none.
static long first_at(const float *row, long count, float nearest, const long *key) {
    long best = -1;
#if CKW_SSE
    const __m128 target = _mm_set1_ps(nearest);
    for (long j = 0; j < count; j += 4) {
        int hits = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(row + j), target));
        while (hits) {
            long slot = j + __builtin_ctz((unsigned)hits);
            hits &= hits - 1;
            if (best < 0 || key[slot] < key[best]) best = slot;
        }
    }
#else
    for (long j = 0; j < count; j++)
        if (row[j] == nearest && (best < 0 || key[j] < key[best])) best = j;
#endif
    return best;
}

/// d[i, j] as the chain reads it: very far but finite where it is not finite.
static inline float finite_or_far(float x) { return isfinite(x) ? x : 1e30f; }

/// table[i, j] = table[j, i] = the smaller of d[i, j] and d[j, i] (a GEMM's rounding can make the two
/// halves differ, and the chain then cycles), each non-finite value first made 1e30; +inf on the
/// diagonal and in the padding columns.
static void symmetric_table(const float *d, long m, float *table, long stride) {
    long i0 = 0;
#if CKW_SSE
    // 4 × 4 blocks: the block of d and its mirror loaded by rows, the mirror transposed in registers.
    const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)), infinite = _mm_set1_ps(INFINITY),
                 far = _mm_set1_ps(1e30f);
    const long whole = m & ~3L;
    for (; i0 < whole; i0 += 4) {
        for (long j0 = i0; j0 < whole; j0 += 4) {
            __m128 a[4], b[4];
            for (int r = 0; r < 4; r++) {
                a[r] = _mm_loadu_ps(d + (i0 + r) * m + j0);
                b[r] = _mm_loadu_ps(d + (j0 + r) * m + i0);
            }
            _MM_TRANSPOSE4_PS(b[0], b[1], b[2], b[3]);
            for (int r = 0; r < 4; r++) {
                __m128 fa = _mm_cmplt_ps(_mm_and_ps(a[r], magnitude), infinite);
                __m128 fb = _mm_cmplt_ps(_mm_and_ps(b[r], magnitude), infinite);
                a[r] = _mm_or_ps(_mm_and_ps(fa, a[r]), _mm_andnot_ps(fa, far));
                b[r] = _mm_or_ps(_mm_and_ps(fb, b[r]), _mm_andnot_ps(fb, far));
                a[r] = _mm_min_ps(b[r], a[r]);  // b < a ? b : a
                _mm_storeu_ps(table + (i0 + r) * stride + j0, a[r]);
            }
            _MM_TRANSPOSE4_PS(a[0], a[1], a[2], a[3]);
            for (int r = 0; r < 4; r++) _mm_storeu_ps(table + (j0 + r) * stride + i0, a[r]);
        }
        // The columns past the last whole block, row by row.
        for (long i = i0; i < i0 + 4; i++) {
            for (long j = whole; j < m; j++) {
                float a = finite_or_far(d[i * m + j]), b = finite_or_far(d[j * m + i]), value = b < a ? b : a;
                table[i * stride + j] = value;
                table[j * stride + i] = value;
            }
        }
    }
#endif
    for (long i = i0; i < m; i++) {
        for (long j = i + 1; j < m; j++) {
            float a = finite_or_far(d[i * m + j]), b = finite_or_far(d[j * m + i]), value = b < a ? b : a;
            table[i * stride + j] = value;
            table[j * stride + i] = value;
        }
    }
    for (long i = 0; i < m; i++) {
        table[i * stride + i] = INFINITY;
        for (long j = m; j < stride; j++) table[i * stride + j] = INFINITY;
    }
}

int ck_ward_merges(const float *d, long m, long merges, int64_t *parent) {
    for (long i = 0; i < m; i++) parent[i] = i;
    if (m < 2 || merges < 1) return 0;
    const long stride = (m + 15) & ~15L;
    // Floats: the table and each slot's cluster size. Longs: each slot's key (its place in the reference's
    // order; -1 once merged away), the live rows and each one's place among them, the chain, and the clusters
    // in creation order with the key each was created under.
    float *floats = malloc(sizeof(float) * (size_t)(m * stride + stride));
    long *longs = malloc(sizeof(long) * (size_t)(4 * m + 1 + 2 * merges));
    if (!floats || !longs) {
        free(floats);
        free(longs);
        return -1;
    }
    float *table = floats, *size = floats + m * stride;
    long *key = longs, *live = key + m, *place = live + m, *chain = place + m, *created_slot = chain + m + 1,
         *created_key = created_slot + merges;
    // Symmetric (the smaller half: a GEMM's rounding can make them differ, and the chain then cycles),
    // non-finite distances very far but finite, +inf on the diagonal and in the padding.
    symmetric_table(d, m, table, stride);
    for (long j = 0; j < stride; j++) size[j] = 1;
    for (long i = 0; i < m; i++) { key[i] = i; live[i] = i; place[i] = i; }
    long chain_length = 0, created = 0, first_original = 0, first_created = 0, remaining = m, done = 0;
    while (done < merges && remaining > 1) {
        if (chain_length == 0) {
            // The first slot in reference order: the lowest original row not merged yet, else the oldest
            // cluster still alive under the key it was created with.
            while (first_original < m && key[first_original] != first_original) first_original++;
            if (first_original < m) {
                chain[chain_length++] = first_original;
            } else {
                while (key[created_slot[first_created]] != created_key[first_created]) first_created++;
                chain[chain_length++] = created_slot[first_created];
            }
        }
        long x, y;
        for (;;) {
            x = chain[chain_length - 1];
            const float *row = table + x * stride;
            float nearest = row_minimum(row, stride);
            long previous = chain_length > 1 ? chain[chain_length - 2] : -1;
            // The list scan starts from the previous link and only a strictly smaller distance replaces
            // it; among equal smaller ones the first in reference order wins.
            if (previous >= 0 && !(nearest < row[previous])) { y = previous; break; }
            y = first_at(row, stride, nearest, key);
            if (y < 0) { y = previous; break; }  // every distance +inf: cannot happen with finite input
            chain[chain_length++] = y;
        }
        if (y < 0) break;
        chain_length -= 2;
        long keep = key[x] < key[y] ? x : y, gone = keep == x ? y : x;
        ward_row(table + x * stride, table + y * stride, size, size[x], size[y], table[x * stride + y],
                 table + keep * stride, stride);
        const float *merged = table + keep * stride;
        // The mirrored column, in the rows still searched (a merged-away row is never read again).
        key[gone] = -1;
        live[place[gone]] = live[remaining - 1];
        place[live[remaining - 1]] = place[gone];
        for (long n = 0; n < remaining - 1; n++) {
            long k = live[n];
            table[k * stride + keep] = merged[k];
            table[k * stride + gone] = INFINITY;
        }
        size[keep] += size[gone];
        key[keep] = m + done;
        created_slot[created] = keep;
        created_key[created++] = m + done;
        parent[gone] = keep;
        remaining--;
        done++;
    }
    free(floats);
    free(longs);
    return 0;
}
