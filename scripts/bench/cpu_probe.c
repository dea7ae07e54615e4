// CPU speed probe (scripts/bench/store_lane_probe_device.sh): one thread runs a register-only LCG in chunks of 4M steps and prints, per chunk,
// the monotonic time (s) and the thread CPU nanoseconds the chunk took. CPU ns per chunk is immune to time
// slicing and to caches; it rises only if the core itself runs slower (clock, a busy hyperthread sibling on
// the host). Usage: probe SECONDS > log
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static double mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static long long tcpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
    double end = mono() + (argc > 1 ? atof(argv[1]) : 10);
    volatile uint64_t sink = 0; uint64_t x = 1;
    while (mono() < end) {
        long long c0 = tcpu();
        for (int i = 0; i < 4000000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
        sink += x;
        printf("%.4f %lld\n", mono(), tcpu() - c0);
    }
    return 0;
}
