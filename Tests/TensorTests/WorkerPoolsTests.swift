import Foundation
import Testing
@testable import Tensor

/// The worker pools' width: the core budget rule (pure function of cores and reserved threads), its
/// environment override, and the process-wide narrowing that a cold index applies while it streams.
@Suite struct WorkerPoolsTests {
    @Test func theBudgetKeepsTheReservedThreadsCoresOnLargeMachinesOnly() {
        // 2-core CI and this box, 4-core laptops: nothing kept back.
        #expect(CoreBudget.poolWidth(cores: 2, reservedThreads: 1) == 2)
        #expect(CoreBudget.poolWidth(cores: 4, reservedThreads: 2) == 4)
        #expect(CoreBudget.poolWidth(cores: 7, reservedThreads: 5) == 7)
        // The GPU machines: 16 cores with 4 keyword shards (5 writers), 64 cores likewise.
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5) == 11)
        #expect(CoreBudget.poolWidth(cores: 64, reservedThreads: 5) == 59)
        // One writer (a single keyword table): one core kept.
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 1) == 15)
        // Never below half the cores, never above them, nothing reserved: all.
        #expect(CoreBudget.poolWidth(cores: 8, reservedThreads: 5) == 4)
        #expect(CoreBudget.poolWidth(cores: 10, reservedThreads: 9) == 5)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 0) == 16)
        #expect(CoreBudget.poolWidth(cores: 0, reservedThreads: 3) == 1)
    }

    @Test func theEnvironmentOverridesTheRule() {
        let key = CoreBudget.environmentVariable
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [:]) == 11)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: "8"]) == 8)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: " 12 "]) == 12)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: "0"]) == 16)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: "99"]) == 16)
        #expect(CoreBudget.poolWidth(cores: 2, reservedThreads: 1, environment: [key: "1"]) == 1)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: "-3"]) == 11)
        #expect(CoreBudget.poolWidth(cores: 16, reservedThreads: 5, environment: [key: "many"]) == 11)
    }

    @Test func narrowingIsNestedAndRestored() throws {
        // Its own stack: the process's is narrowed by any cold index another test runs meanwhile.
        let pools = WorkerPools.Narrowing()
        #expect(pools.width(cores: 16) == 16)
        pools.narrowed(to: 4) {
            #expect(pools.width(cores: 16) == 4)
            // A wider nested call does not widen; the narrowest wins, and never above the cores.
            pools.narrowed(to: 12) { #expect(pools.width(cores: 16) == 4) }
            pools.narrowed(to: 2) { #expect(pools.width(cores: 16) == 2) }
            #expect(pools.width(cores: 3) == 3)
            #expect(pools.width(cores: 16) == 4)
        }
        #expect(pools.width(cores: 16) == 16)
        // Another thread sees the width while it is narrowed (the pipeline's threads are not the caller).
        let seen = pools.narrowed(to: 3) { () -> Int in
            let box = SeenWidth()
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread { box.value = pools.width(cores: 16); done.signal() }
            done.wait()
            return box.value
        }
        #expect(seen == 3)
        // A throwing body restores the width too; at least 1.
        #expect(throws: CancellationError.self) { try pools.narrowed(to: 1) { throw CancellationError() } }
        #expect(pools.width(cores: 16) == 16)
        pools.narrowed(to: 0) { #expect(pools.width(cores: 16) == 1) }
        #expect(pools.width(cores: 0) == 1)
        // The process's width is within the usable cores whatever else runs.
        #expect(WorkerPools.width >= 1 && WorkerPools.width <= UsableCores.count)
    }
}

private final class SeenWidth: @unchecked Sendable {
    var value = 0
}
