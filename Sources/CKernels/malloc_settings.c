// glibc malloc's process-wide settings (ProcessMemorySettings in the ColGrep module): Swift's Glibc module
// does not include <malloc.h>, where mallopt and its option codes are declared.
#include "CKernels.h"
#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#endif

int ck_malloc_settings(int top_pad, int trim_threshold, int mmap_threshold) {
#if defined(__linux__) && defined(__GLIBC__)
    // mallopt returns 1 on success; the mmap threshold first, as setting the pad fixes it.
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TOP_PAD, top_pad) == 1 &&
           mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)top_pad; (void)trim_threshold; (void)mmap_threshold;
    return 0;
#endif
}
