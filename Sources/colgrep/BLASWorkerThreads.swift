#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS's pthread build starts a worker thread per extra core as soon as it loads, and each worker
/// spins in a `sched_yield` loop (about 2²⁸ cycles, ~0.1 s) waiting for a GEMM to share. colgrep never
/// hands OpenBLAS more than one thread (`CPUBackend` and PLAID split their own work), so on a small machine
/// those spinners only take CPU from the process's real work: ~50 ms of a one-shot search's CPU on
/// 2 cores. Stopping them at startup costs a join; OpenBLAS starts them again by itself if a caller later
/// raises its thread count (the benchmarks' `PlaidRuntime.setBLASThreads`).
enum BLASWorkerThreads {
    /// Joins OpenBLAS's idle workers (`blas_thread_shutdown_`, looked up at run time: a BLAS without it,
    /// or without workers, is left alone). Call before any thread uses BLAS.
    static func stopIdleWorkers() {
        #if os(Linux)
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "blas_thread_shutdown_") else { return }
        typealias Shutdown = @convention(c) () -> Int32
        _ = unsafeBitCast(symbol, to: Shutdown.self)()
        #endif
    }
}
