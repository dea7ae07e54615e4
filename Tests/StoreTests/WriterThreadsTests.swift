import Foundation
import Testing
@testable import Store

/// The store's own writer threads: every part of a write runs once per run, part i ≥ 1 always on the same
/// thread of its own (never the caller's), each part's usage is its own thread's, the threads go away with
/// their owner, and a sharded insert reports the usage figures of those threads.
@Suite struct WriterThreadsTests {
    private final class Record: @unchecked Sendable {
        let lock = NSLock()
        var runs: [[Int: pthread_t]] = []
        var repeated = 0
        func note(run: Int, part: Int) {
            let thread = pthread_self()
            lock.withLock {
                while runs.count <= run { runs.append([:]) }
                if runs[run][part] != nil { repeated += 1 }
                runs[run][part] = thread
            }
        }
    }

    private final class Names: @unchecked Sendable {
        private let lock = NSLock()
        private var names: [Int: String] = [:]
        func set(_ part: Int, _ name: String) { lock.withLock { names[part] = name } }
        var all: [Int: String] { lock.withLock { names } }
    }

    @Test func everyPartRunsOnceEachRunOnItsOwnThread() {
        let threads = WriterThreads(count: 4, name: "test-writer")
        let record = Record()
        let caller = pthread_self()
        for run in 0..<50 {
            let usage = threads.run { part in record.note(run: run, part: part) }
            #expect(usage.count == 4)
        }
        #expect(record.runs.count == 50 && record.repeated == 0)
        let first = record.runs[0]
        #expect(first.count == 4 && first[0] == caller)
        // Parts 1…3: three distinct threads, none the caller's, the same ones in every run.
        #expect(Set((1...3).compactMap { first[$0] }).count == 3 && !(1...3).contains { first[$0] == caller })
        for parts in record.runs { #expect(parts == first) }
    }

    /// Each writer thread carries its name in the kernel (what `top -H` and `perf` show), cut to the
    /// kernel's 15 bytes; the caller's thread keeps its own.
    @Test func writerThreadsCarryTheirNamesInTheKernel() {
        #if os(Linux)
        let threads = WriterThreads(count: 3, name: "test-named-writer")
        let names = Names()
        let readComm: () -> String = {
            ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let callerName = readComm()
        _ = threads.run { part in
            let comm = readComm()
            names.set(part, comm)
        }
        let seen = names.all
        #expect(seen[1] == "test-named-writ" && seen[2] == "test-named-writ")
        #expect(seen[0] == callerName)
        let short = WriterThreads(count: 2, name: "w")
        _ = short.run { part in if part == 1 { names.set(9, readComm()) } }
        #expect(names.all[9] == "w-1")
        #endif
    }

    @Test func eachPartsUsageIsItsOwnThreadsCPU() {
        let threads = WriterThreads(count: 3, name: "test-usage")
        // Only part 2 works: its CPU must show, the idle parts' must stay far below it.
        let usage = threads.run { part in
            guard part == 2 else { return }
            var x: UInt64 = 1
            for i in 0..<20_000_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
            if x == 42 { print(x) }
        }
        #expect(usage[2].cpu > 0)
        #expect(usage[0].cpu < usage[2].cpu && usage[1].cpu < usage[2].cpu)
        #expect(usage[2].system <= usage[2].cpu + 10_000_000)
        let summary = ThreadUsage.summary(usage)
        #expect(summary.busiest == usage[2].cpu)
        #expect(summary.total.cpu == usage.reduce(0) { $0 + $1.cpu })
    }

    @Test func aSinglePartRunsOnTheCallerWithoutThreads() {
        let threads = WriterThreads(count: 1, name: "test-single")
        let caller = Thread.current
        let ran = LockedValue(false)
        _ = threads.run { part in ran.set(part == 0 && Thread.current == caller) }
        #expect(ran.value)
    }

    @Test func threadsEndWithTheirOwner() throws {
        let before = try taskCount()
        for _ in 0..<8 {
            let threads = WriterThreads(count: 5, name: "test-release")
            _ = threads.run { _ in }
        }
        // 32 threads were started; once their owners are gone they return (polled: they exit asynchronously).
        var after = try taskCount()
        for _ in 0..<200 where after > before + 4 {
            Thread.sleep(forTimeInterval: 0.02)
            after = try taskCount()
        }
        #expect(after <= before + 4)
    }

    @Test func schedstatWaitIsTheSecondField() {
        #expect(ThreadUsage.parseRunQueueWait(schedstat: Array("1838202 445566 12\n".utf8)) == 445566)
        #expect(ThreadUsage.parseRunQueueWait(schedstat: Array("10 20".utf8)) == 20)
        #expect(ThreadUsage.parseRunQueueWait(schedstat: Array("10".utf8)) == 0)
        #expect(ThreadUsage.parseRunQueueWait(schedstat: Array("".utf8)) == 0)
        #expect(ThreadUsage.parseRunQueueWait(schedstat: Array("garbage here".utf8)) == 0)
    }

    @Test func aShardedInsertReportsItsWriterThreadsUsage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 3)
        #expect(store.writerThreadCount == 4)
        try store.insert(syntheticCorpus(count: 200))
        let seconds = Dictionary(uniqueKeysWithValues: store.insertStages.map { ($0.stage, $0.seconds) })
        let cpu = seconds["rows + keyword index, thread cpu"] ?? -1, busiest = seconds["rows + keyword index, busiest thread cpu"] ?? -1
        #expect(cpu > 0 && busiest > 0 && busiest <= cpu)
        #expect((seconds["rows + keyword index, thread system cpu"] ?? -1) >= 0)
        #expect((seconds["rows + keyword index, latest part start"] ?? -1) >= 0)
        #expect((seconds["commit, thread cpu"] ?? -1) > 0)
        #expect(try store.bm25(query: "parse", limit: 500, within: nil).count > 0)
        let single = try TemporaryDirectory()
        defer { single.cleanup() }
        #expect(try MetadataStore(path: single.database, readOnly: false, keywordShards: 1).writerThreadCount == 1)
    }

    @Test func aPartsWallCountsItsWaitsButNotTheOtherParts() {
        let threads = WriterThreads(count: 3, name: "test-wall")
        // Part 1 sleeps 30 ms (wall, almost no CPU); the others return at once.
        let usage = threads.run { part in if part == 1 { Thread.sleep(forTimeInterval: 0.03) } }
        #expect(usage[1].wall >= 30_000_000 && usage[1].cpu < usage[1].wall)
        #expect(usage[0].wall < usage[1].wall && usage[2].wall < usage[1].wall)
    }

    @Test func theUnsynchronisedLaneIsTheSlowestPartsOwnTotal() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try MetadataStore(path: dir.database, readOnly: false, keywordShards: 3)
        let corpus = syntheticCorpus(count: 300)
        var perWrite = 0.0, unsynchronised = 0.0
        for (n, slice) in [corpus[0..<100], corpus[100..<200], corpus[200..<300]].enumerated() {
            try store.insert(Array(slice))
            let seconds = Dictionary(uniqueKeysWithValues: store.insertStages.map { ($0.stage, $0.seconds) })
            let slowest = try #require(seconds["rows + keyword index, slowest part"])
            let growth = try #require(seconds["rows + keyword index, slowest part, parts unsynchronised"])
            // A first write's largest total is its slowest part; later ones grow it by at most their slowest.
            if n == 0 { #expect(abs(growth - slowest) < 1e-9) }
            #expect(growth >= 0 && growth <= slowest + 1e-9)
            perWrite += slowest
            unsynchronised += growth
        }
        #expect(unsynchronised > 0 && unsynchronised <= perWrite + 1e-9)
    }

    @Test func postedPartsRunInOrderAndARunWaitsBehindThem() {
        let threads = WriterThreads(count: 3, name: "test-post")
        let order = LockedValue<[String]>([])
        func note(_ label: String) { order.set(order.value + [label]) }
        let first = threads.post(part: 1) { Thread.sleep(forTimeInterval: 0.03); note("post 1a") }
        let second = threads.post(part: 1) { note("post 1b") }
        let usage = threads.run { part in if part == 1 { note("run 1") } }
        #expect(usage.count == 3)
        // The run's part 1 came after both posted parts of thread 1, in the order posted.
        #expect(order.value.filter { $0.hasSuffix("1") || $0.hasPrefix("post") } == ["post 1a", "post 1b", "run 1"])
        #expect(threads.wait(first).wall >= 30_000_000 && threads.wait(second).wall < 30_000_000)
    }

    private func taskCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
    }
}
