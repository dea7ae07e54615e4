// The calling thread's CPU affinity mask, counted (UsableCores in the Tensor module): glibc declares
// sched_getaffinity only under _GNU_SOURCE, which Swift's Glibc import does not define.
#define _GNU_SOURCE
#include <sched.h>
#include "CKernels.h"

int ck_affinity_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
#else
    return -1;
#endif
}
