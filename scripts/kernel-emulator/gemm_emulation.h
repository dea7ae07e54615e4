// Shared by the GEMM emulators (gemm_emulator.cpp, resident_gemm_emulator.cpp, warpgroup_gemm_emulator.cpp): the gemm module holds both kernels,
// and gemm_resident's dynamic shared memory (extern __shared__ on a GPU) is this static array here, one block
// running at a time.
#pragma once
#include "async_copy_emulation.h"
#define GR_SHARED_ARRAY 1
alignas(16) static unsigned short gr_smem[3 * 64 * (256 + 8)];

// The GEMM emulators' verdict: every output element against its double-precision reference (NaN = never written, the
// output being poisoned with NaN first) and the guard row after the output (anything else there = written past the end).
struct OutputCheck {
    double num = 0, den = 0;
    long unwritten = 0, overrun = 0;
    void element(float got, double want) {
        if (std::isnan(got)) unwritten++;
        num += (got - want) * (got - want); den += want * want;
    }
    void guard(const unsigned short* row, int width) { for (int c = 0; c < width; c++) if (row[c] != 0x7fc0) overrun++; }
    double rel() const { return sqrt(num / den); }
    bool ok() const { return unwritten == 0 && overrun == 0 && rel() < 5e-3; }
    // Prints "PASS|FAIL <what>: rel err …" and returns the exit status.
    int report(const char* what) const {
        printf("%s %s: rel err %.2e, unwritten %ld, written past the end %ld\n", ok() ? "PASS" : "FAIL", what, rel(), unwritten, overrun);
        return ok() ? 0 : 1;
    }
};
