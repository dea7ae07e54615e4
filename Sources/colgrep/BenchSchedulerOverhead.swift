import ArgumentParser
import ColGrep
import Foundation
import Tensor

/// `colgrep bench scheduler-overhead`: what `EncodeScheduler` adds per pass with one lane, on the CPU
/// (issue #9: the N-device path with N = 1 must be no slower than calling the device directly). A
/// stand-in device returns one freshly allocated `length × dim` vector block per sequence at once, as
/// the GPU device's downloads do, so only the scheduler's own work and the outputs' memory differ.
/// Passes alternate: direct calls on this thread (outputs kept, as the scheduler keeps them), the
/// scheduler, and direct calls on a fresh second thread. Measured in a release build (2 loaded cores,
/// 20,000 sequences, 48-d): the scheduler's own work is not measurable against the outputs' memory —
/// 850 MB of per-sequence arrays a pass, whose cost depends on which thread's malloc arena serves them
/// (main thread 2.0 s, scheduler worker 0.57 s, fresh thread 1.75 s, in that run).
struct BenchSchedulerOverhead: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scheduler-overhead",
                                                    abstract: "EncodeScheduler with one lane against direct device calls (CPU stand-in device).")
    @Option(help: "Sequences per pass.") var sequences = 20_000
    @Option(help: "Floats per output row.") var dim = 48
    @Option(help: "Token budget per batch.") var budget = 65_536
    @Option(help: "Passes of each path (the median is reported).") var repeats = 5

    /// Encodes nothing: one output of `count × dim` floats per sequence.
    final class StandInDevice: EncodeDevice, @unchecked Sendable {
        let info = DeviceInfo(id: "stand-in", kind: .gpu)
        let dim: Int
        init(dim: Int) { self.dim = dim }
        func prepare() throws {}
        func encode(_ items: [[Int32]]) throws -> [[Float]] { items.map { [Float](repeating: 0.5, count: $0.count * dim) } }
    }

    func run() throws {
        var state: UInt64 = 7
        let items: [[Int32]] = (0..<sequences).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return [Int32](repeating: 3, count: 8 + Int((state >> 33) % 400))
        }
        let order = items.indices.sorted { items[$0].count > items[$1].count }
        var batches: [[[Int32]]] = [], current: [[Int32]] = [], used = 0
        for index in order {
            if used + items[index].count > budget, !current.isEmpty { batches.append(current); current = []; used = 0 }
            current.append(items[index]); used += items[index].count
        }
        if !current.isEmpty { batches.append(current) }
        let direct = StandInDevice(dim: dim)
        let scheduler = EncodeScheduler<[Int32], [Float]>(lanes: [EncodeLane(device: StandInDevice(dim: dim), end: .longest, tokenBudget: budget)],
                                                          policy: .failRun, profiler: Profiler(enabled: false))
        defer { scheduler.stop() }
        let fixed = batches, total = items.count
        let device = UncheckedBox(direct)
        @Sendable func directPass() throws {
            var kept: [[Float]] = []
            kept.reserveCapacity(total)
            for batch in fixed { kept += try device.value.encode(batch) }
            guard kept.count == total else { throw ValidationError("direct pass lost sequences") }
        }
        var times: [String: [(wall: Double, cpu: Double)]] = [:]
        func timed(_ name: String, _ body: () throws -> Void) rethrows {
            let wall = ContinuousClock.now, cpu = ProcessCPU.seconds()
            try body()
            times[name, default: []].append((seconds(ContinuousClock.now - wall), ProcessCPU.seconds() - cpu))
        }
        _ = try scheduler.encode(items, length: \.count)  // thread, queue and allocator warm-up
        for _ in 0..<max(1, repeats) {
            try timed("direct") { try directPass() }
            try timed("scheduler_1_lane") {
                guard try scheduler.encode(items, length: \.count).outputs.count == total else { throw ValidationError("scheduler lost sequences") }
            }
            try timed("direct_on_second_thread") {
                let task = BackgroundTask { try directPass() }
                try task.wait()
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var report: [String: Any] = ["sequences": total, "batches": batches.count, "dim": dim,
                                     "tokens": items.reduce(0) { $0 + $1.count }]
        for (name, runs) in times {
            report[name + "_ms"] = median(runs.map(\.wall)) * 1000
            report[name + "_cpu_ms"] = median(runs.map(\.cpu)) * 1000
        }
        report["scheduler_vs_direct_wall"] = median(times["direct"]!.map(\.wall)) / median(times["scheduler_1_lane"]!.map(\.wall))
        try printJSON(report)
    }
}
