// A probe of one CPU's speed over time (session 17, issue #9; build: gcc -O2 -static -o core_probe core_probe.c;
// run: core_probe CPU alu|chase:MB SECONDS OUT.txt): pinned to one CPU, it runs fixed work in
// 5 ms windows and writes "t_seconds ops" per window. alu: a dependent multiply-add chain (no memory);
// chase:MB: a dependent pointer chase over MB of memory (cache / DRAM latency).
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    int cpu = atoi(argv[1]); const char *mode = argv[2]; double seconds = atof(argv[3]); FILE *out = fopen(argv[4], "w");
    cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set); sched_setaffinity(0, sizeof set, &set);
    size_t n = 0; uint64_t *next = NULL;
    if (!strncmp(mode, "chase:", 6)) {
        n = (size_t)atol(mode + 6) * 1024 * 1024 / 64; // one pointer per cache line
        next = aligned_alloc(64, n * 64);
        size_t *perm = malloc(n * sizeof *perm);
        for (size_t i = 0; i < n; i++) perm[i] = i;
        uint64_t s = 88172645463325252ull;
        for (size_t i = n - 1; i > 0; i--) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; size_t j = s % (i + 1); size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
        for (size_t i = 0; i < n; i++) next[perm[i] * 8] = perm[(i + 1) % n] * 8;
        free(perm);
    }
    double start = now(), end = start + seconds; uint64_t x = 1, p = 0;
    while (1) {
        double w0 = now(); if (w0 > end) break;
        uint64_t ops = 0;
        while (now() - w0 < 0.005) {
            if (next) { for (int i = 0; i < 256; i++) p = next[p]; }
            else { for (int i = 0; i < 4096; i++) x = x * 6364136223846793005ull + 1442695040888963407ull; }
            ops++;
        }
        fprintf(out, "%.4f %llu\n", w0, (unsigned long long)ops);
    }
    fprintf(out, "# %llu %llu\n", (unsigned long long)x, (unsigned long long)p);
    fclose(out); return 0;
}
