import Synchronization
import Testing
@testable import Tensor

/// The intra-op pool's parts are claimed by whichever worker is free: every item must still run exactly once,
/// in the same parts every time, on at most `threads` threads, with per-worker scratch never shared.
@Suite struct IntraOpPoolTests {
    @Test(arguments: [1, 2, 3, 16])
    func rangesCoverEveryItemOnceInFixedParts(threads: Int) {
        let pool = IntraOpPool(threads: threads)
        for (count, grain) in [(0, 1), (1, 1), (7, 1), (7, 16), (100, 16), (1000, 1), (4096, 64), (4097, 16)] {
            let first = ranges(pool, count, grain), second = ranges(pool, count, grain)
            #expect(first == second, "parts differ between runs for \(count) items, grain \(grain)")
            var next = 0
            for range in first {
                #expect(range.lowerBound == next, "gap or overlap at \(next) for \(count) items")
                next = range.upperBound
            }
            #expect(next == count)
            let expected = count == 0 ? 0 : IntraOpPool.partCount(count, grain: grain, threads: threads)
            #expect(first.count == expected)
            #expect(first.count <= max(1, threads * IntraOpPool.oversplit))
            if first.count > 1 { #expect(first.allSatisfy { $0.count >= grain }, "a part shorter than the grain") }
        }
    }

    @Test func rangesRunOnAtMostThreadsAtOnce() {
        let pool = IntraOpPool(threads: 3)
        let active = Mutex((now: 0, most: 0))
        pool.forEachRange(3000, grain: 10) { _ in
            active.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            var spin = 0.0
            for i in 0..<20_000 { spin += Double(i) }
            precondition(spin > 0)
            active.withLock { $0.now -= 1 }
        }
        #expect(active.withLock { $0.most } <= 3)
    }

    @Test(arguments: [1, 2, 4])
    func tasksRunOnceWithUnsharedWorkers(threads: Int) {
        let pool = IntraOpPool(threads: threads)
        let costs = (0..<200).map { ($0 * 7919) % 97 }
        let state = Mutex((runs: [Int](repeating: 0, count: 200), busy: Set<Int>(), shared: false, badWorker: false))
        pool.forEachTask(costs: costs) { worker, task in
            state.withLock {
                if !$0.busy.insert(worker).inserted { $0.shared = true }
                if worker < 0 || worker >= threads { $0.badWorker = true }
                $0.runs[task] += 1
            }
            state.withLock { _ = $0.busy.remove(worker) }
        }
        let final = state.withLock { $0 }
        #expect(final.runs.allSatisfy { $0 == 1 }, "a task ran zero or several times")
        #expect(!final.shared, "two concurrent tasks were given the same worker (its scratch)")
        #expect(!final.badWorker)
    }

    private func ranges(_ pool: IntraOpPool, _ count: Int, _ grain: Int) -> [Range<Int>] {
        let seen = Mutex([Range<Int>]())
        pool.forEachRange(count, grain: grain) { range in seen.withLock { $0.append(range) } }
        return seen.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
    }
}
