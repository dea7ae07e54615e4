import Dispatch

/// The CPU backend's intra-op parallelism: work is split into at most `threads` parts that run on the
/// system's worker pool (GCD), so an operation never uses more threads than asked for.
/// BLAS calls made inside a part run single-threaded (see `CPUBackend.init`), so threads never multiply.
public struct IntraOpPool: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Runs `body` on contiguous, disjoint sub-ranges covering `0..<count`, in parallel.
    /// `grain` is the smallest range worth a thread of its own.
    public func forEachRange(_ count: Int, grain: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = min(threads, max(1, count / max(grain, 1)))
        if parts == 1 { body(0..<count); return }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let start = count * part / parts, end = count * (part + 1) / parts
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body(worker, task)` for every task, `tasks` given with their relative costs: tasks are dealt
    /// to `threads` workers longest first, each to the least loaded worker, so uneven sequences balance.
    public func forEachTask(costs: [Int], _ body: @Sendable (_ worker: Int, _ task: Int) -> Void) {
        guard !costs.isEmpty else { return }
        let workers = min(threads, costs.count)
        if workers == 1 { for task in costs.indices { body(0, task) }; return }
        var load = [Int](repeating: 0, count: workers)
        var assigned = [[Int]](repeating: [], count: workers)
        for task in costs.indices.sorted(by: { costs[$0] > costs[$1] }) {
            let target = load.indices.min(by: { load[$0] < load[$1] })!
            load[target] += costs[task]
            assigned[target].append(task)
        }
        let plan = assigned
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for task in plan[worker] { body(worker, task) }
        }
    }
}

/// A raw pointer handed to worker threads that write disjoint parts of one buffer.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
