import Dispatch
import Synchronization

/// The CPU backend's intra-op parallelism: work is split into parts that run on the system's worker pool
/// (GCD), never on more than `threads` threads at once.
/// BLAS calls made inside a part run single-threaded (see `CPUBackend.init`), so threads never multiply.
///
/// Parts are claimed, not dealt: each of the `threads` workers takes the next unclaimed part until none is
/// left. GCD's pool is shared with the rest of the process (a cold index tokenizes, pools and writes beside
/// the encoder), so some of an operation's workers may start late; with a fixed part per worker the whole
/// operation then waits for the late one, at every operation; with claims, the workers that started take its
/// part. Range work keeps one part per thread (`oversplit` 1): cutting it 4 per thread was measured on 16
/// cores (session 10, one H200 host, CPU encode of an Ettin-shaped model) to cost 16-26 % more CPU for the
/// same wall (likely: each int8 GEMM part streams the whole packed weight; not profiled further).
public struct IntraOpPool: Sendable {
    public let threads: Int
    /// Parts per thread for range work.
    static let oversplit = 1

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Parts for `count` items: one when single-threaded, else up to `oversplit` per thread, each at least
    /// `grain` long where `count` allows. Part boundaries depend only on the arguments, never on which
    /// thread ran which part, so results are the same from run to run.
    static func partCount(_ count: Int, grain: Int, threads: Int) -> Int {
        threads == 1 ? 1 : min(threads * oversplit, max(1, count / max(grain, 1)))
    }

    /// Runs `body` on contiguous, disjoint sub-ranges covering `0..<count`, in parallel.
    /// `grain` is the smallest range worth a part of its own.
    public func forEachRange(_ count: Int, grain: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = Self.partCount(count, grain: grain, threads: threads)
        if parts == 1 { body(0..<count); return }
        let claims = PartClaims()
        DispatchQueue.concurrentPerform(iterations: min(threads, parts)) { _ in
            while true {
                let part = claims.next()
                if part >= parts { break }
                body(count * part / parts ..< count * (part + 1) / parts)
            }
        }
    }

    /// Runs `body(worker, task)` for every task, `tasks` given with their relative costs. Tasks are taken
    /// longest first by whichever worker is free, so uneven sequences balance even when a worker starts late.
    /// `worker` is in `0..<threads` and no two concurrent calls share one (per-worker scratch is safe).
    public func forEachTask(costs: [Int], _ body: @Sendable (_ worker: Int, _ task: Int) -> Void) {
        guard !costs.isEmpty else { return }
        let workers = min(threads, costs.count)
        if workers == 1 { for task in costs.indices { body(0, task) }; return }
        let order = costs.indices.sorted { costs[$0] > costs[$1] || (costs[$0] == costs[$1] && $0 < $1) }
        let claims = PartClaims()
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                let next = claims.next()
                if next >= order.count { break }
                body(worker, order[next])
            }
        }
    }
}

/// The next unclaimed part of one parallel operation.
private final class PartClaims: Sendable {
    private let claimed = Atomic<Int>(0)
    func next() -> Int { claimed.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// A raw pointer handed to worker threads that write disjoint parts of one buffer.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
