// See CBLAS.h: BLAS through dlopen, loaded by the first call that needs it.
#define _GNU_SOURCE
#include "CBLAS.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define HIDDEN __attribute__((visibility("hidden")))

typedef void (*Sgemm)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, int, int, int, float, const float *, int,
                      const float *, int, float, float *, int);
typedef void (*SetThreads)(int);
typedef char *(*CoreName)(void);
typedef int (*Shutdown)(void);

static struct {
    Sgemm sgemm;
    SetThreads set_threads;
    CoreName core_name;
} api;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static atomic_int loaded;

// OpenBLAS's pthread build starts a worker thread per extra core as it loads, and each worker spins in a
// sched_yield loop (about 2^28 cycles, ~0.1 s) waiting for a GEMM to share. colgrep never hands OpenBLAS more
// than one thread (CPUBackend and PLAID split their own work), so on a small machine those spinners only take
// CPU from the real work (~50 ms of a one-shot search on 2 cores). Right after loading: join the idle workers
// (blas_thread_shutdown_), record one thread as the pool size (blas_num_threads) and set one thread for GEMMs
// (openblas_set_num_threads(1)). Raising the count later (the benchmarks' PlaidRuntime.setBLASThreads) still
// starts the workers it needs. The three go together: a pool size of one with the GEMM thread count left at
// the core count would queue work for a worker that does not exist; a BLAS without all three is left alone.
static void stop_idle_workers(void *library) {
    Shutdown shutdown = (Shutdown)dlsym(library, "blas_thread_shutdown_");
    int *pool_size = (int *)dlsym(library, "blas_num_threads");
    if (!shutdown || !pool_size || !api.set_threads) return;
    shutdown();
    *pool_size = 1;
    api.set_threads(1);
}

static void load(void) {
    static const char *const names[] = {
#if defined(__APPLE__)
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
#else
        "libopenblas.so.0", "libopenblas.so", "libblas.so.3",
#endif
    };
    void *library = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !library; i++)
        library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (library) api.sgemm = (Sgemm)dlsym(library, "cblas_sgemm");
    if (!library || !api.sgemm) {
        fprintf(stderr,
                "colgrep: cannot load a BLAS library with cblas_sgemm (tried %s: %s): install OpenBLAS "
                "(e.g. apt install libopenblas0, or run scripts/setup.sh)\n",
                names[0], library ? "no cblas_sgemm" : dlerror());
        exit(70);
    }
    api.set_threads = (SetThreads)dlsym(library, "openblas_set_num_threads");
    api.core_name = (CoreName)dlsym(library, "openblas_get_corename");
    stop_idle_workers(library);
    atomic_store(&loaded, 1);
}

static inline void ensure_loaded(void) {
    if (!atomic_load_explicit(&loaded, memory_order_acquire)) pthread_once(&load_once, load);
}

HIDDEN void cblas_sgemm(const CBLAS_ORDER order, const CBLAS_TRANSPOSE trans_a, const CBLAS_TRANSPOSE trans_b,
                        const int m, const int n, const int k, const float alpha, const float *a, const int lda,
                        const float *b, const int ldb, const float beta, float *c, const int ldc) {
    ensure_loaded();
    api.sgemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

HIDDEN void openblas_set_num_threads(int threads) {
    ensure_loaded();
    if (api.set_threads) api.set_threads(threads);
}

HIDDEN char *openblas_get_corename(void) {
    ensure_loaded();
    return api.core_name ? api.core_name() : NULL;
}

HIDDEN int cblas_lazy_is_loaded(void) { return atomic_load(&loaded); }
