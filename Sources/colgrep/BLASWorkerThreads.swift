#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS's pthread build starts a worker thread per extra core as soon as it loads, and each worker
/// spins in a `sched_yield` loop (about 2²⁸ cycles, ~0.1 s) waiting for a GEMM to share. colgrep never
/// hands OpenBLAS more than one thread (`CPUBackend` and PLAID split their own work), so on a small machine
/// those spinners only take CPU from the process's real work: ~50 ms of a one-shot search's CPU on
/// 2 cores.
enum BLASWorkerThreads {
    /// Joins OpenBLAS's idle workers (`blas_thread_shutdown_`), records one thread as its pool size
    /// (`blas_num_threads`) and sets one thread for GEMMs (`openblas_set_num_threads(1)`, which brings the
    /// server back with no worker). Every `CPUBackend` sets one thread again later, which then starts no
    /// new spinner; raising the count (the benchmarks' `PlaidRuntime.setBLASThreads`) still starts the
    /// workers it needs. The three steps go together: a pool size of one with the GEMM thread count left
    /// at the core count would queue work for a worker that does not exist. The symbols are looked up at
    /// run time; a BLAS without all three is left alone. Call before any thread uses BLAS.
    static func stopIdleWorkers() {
        #if os(Linux)
        guard let process = dlopen(nil, RTLD_NOW), let shutdown = dlsym(process, "blas_thread_shutdown_"),
              let poolSize = dlsym(process, "blas_num_threads"), let setThreads = dlsym(process, "openblas_set_num_threads") else { return }
        typealias Shutdown = @convention(c) () -> Int32
        typealias SetThreads = @convention(c) (Int32) -> Void
        _ = unsafeBitCast(shutdown, to: Shutdown.self)()
        poolSize.assumingMemoryBound(to: Int32.self).pointee = 1
        unsafeBitCast(setThreads, to: SetThreads.self)(1)
        #endif
    }
}
