import ArgumentParser
import ColGrep
import Encoder
import Foundation
import Tensor
import TensorCUDA

/// The N-device code path against the direct single-GPU path (issue #9): the same sequences
/// encoded (a) by one thread calling the CUDA device's `encode` batch after batch, and (b) through
/// `EncodeScheduler` with the product's GPU lanes (`SharedModelLanes`: per GPU one model, each lane a
/// host thread with its own backend and streams). `lanes` runs put several lanes on GPU `ordinal`;
/// `gpus` runs put `lanesPerGPU` lanes on each of GPUs 0..<n. Both include the skiplist, the
/// per-sequence split and the downloads, and both keep every output until the pass ends (the scheduler
/// returns them all; session 2–3's direct path dropped each batch's outputs at once, so its memory was
/// reused while the scheduler's was fresh).
struct SchedulerComparison {
    let modelDirectory: URL
    let sequences: [[Int32]]
    let budget: Int
    let ordinal: Int
    let repeats: Int

    /// - Parameters:
    ///   - laneCounts: scheduler runs with this many lanes on GPU `ordinal`.
    ///   - gpuCounts: scheduler runs with `lanesPerGPU` lanes on each of GPUs `0..<n` (the product's path on
    ///     n GPUs), reported with their speed-up over one GPU with as many lanes and that over n (linear = 1).
    ///   - lanesPerGPU: the lane counts of the `gpuCounts` runs (every pair runs).
    func run(lanes laneCounts: [Int], gpus gpuCounts: [Int] = [], lanesPerGPU: [Int] = [1]) throws -> [String: Any] {
        let tokens = sequences.reduce(0) { $0 + $1.count }
        // Length-sorted, as the scheduler's GPU end takes them.
        let order = sequences.indices.sorted { sequences[$0].count > sequences[$1].count }
        var batches: [[[Int32]]] = [], current: [[Int32]] = [], used = 0
        for index in order {
            if used + sequences[index].count > budget, !current.isEmpty { batches.append(current); current = []; used = 0 }
            current.append(sequences[index]); used += sequences[index].count
        }
        if !current.isEmpty { batches.append(current) }

        let direct = BackendEncodeDevice(processor: .cuda(ordinal: ordinal), modelDirectory: modelDirectory, skipIDs: [], kernelCache: nil)
        try direct.prepare()
        for batch in batches.prefix(4) { _ = try direct.encode(batch) }
        // Each scheduler as (GPU ordinals, lanes per GPU): `count` lanes on this GPU, then every (n GPUs, lanes) pair.
        let counts = laneCounts.filter { $0 > 0 }
        let multiGPU = gpuCounts.filter { $0 > 0 }
        let perGPU = lanesPerGPU.filter { $0 > 0 }.isEmpty ? [1] : lanesPerGPU.filter { $0 > 0 }
        let pairs = perGPU.flatMap { lanes in multiGPU.map { (gpus: $0, lanes: lanes) } }
        let configurations = counts.map { (ordinals: [ordinal], lanes: $0) } + pairs.map { (ordinals: Array(0..<$0.gpus), lanes: $0.lanes) }
        let schedulers = try configurations.map { configuration -> EncodeScheduler<[Int32], HostMatrix> in
            let lanes = configuration.ordinals.flatMap { device in
                SharedModelLanes.cuda(ordinal: device, lanes: configuration.lanes, modelDirectory: modelDirectory, skipIDs: [],
                                      kernelCache: KernelCache(directory: KernelCache.defaultDirectory()))
                    .makeLanes().map { EncodeLane<[Int32], HostMatrix>(device: $0, end: .longest, tokenBudget: budget) }
            }
            let scheduler = EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false))
            let warm = try scheduler.encode(Array(sequences.prefix(64 * lanes.count)), length: \.count)
            guard warm.outputs.count == min(64 * lanes.count, sequences.count) else { throw ValidationError("scheduler lost sequences") }
            return scheduler
        }
        defer { schedulers.forEach { $0.stop() } }
        // Passes alternate between the paths, so clock and thermal drift hit every path alike.
        var directRates: [Double] = [], schedulerRates = [[Double]](repeating: [], count: configurations.count)
        for _ in 0..<repeats {
            var start = ContinuousClock.now
            // The direct path keeps every output until the pass ends, as the scheduler does (it returns them all).
            var kept: [HostMatrix] = []
            kept.reserveCapacity(sequences.count)
            for batch in batches { kept += try direct.encode(batch) }
            guard kept.count == sequences.count else { throw ValidationError("direct path lost sequences") }
            kept = []
            directRates.append(Double(tokens) / seconds(ContinuousClock.now - start))
            for (index, scheduler) in schedulers.enumerated() {
                start = ContinuousClock.now
                let result = try scheduler.encode(sequences, length: \.count)
                guard result.outputs.count == sequences.count else { throw ValidationError("scheduler lost sequences") }
                schedulerRates[index].append(Double(tokens) / seconds(ContinuousClock.now - start))
            }
        }
        let directRate = median(directRates)
        var report: [String: Any] = ["tokens": tokens, "batches": batches.count, "direct_one_thread_tok_s": directRate, "direct_keeps_outputs": true, "direct_all_tok_s": directRates]
        for (index, count) in counts.enumerated() {
            report["scheduler_\(count)_lanes_tok_s"] = median(schedulerRates[index])
            report["scheduler_\(count)_lanes_all_tok_s"] = schedulerRates[index]
            report["scheduler_\(count)_lanes_vs_direct"] = median(schedulerRates[index]) / directRate
        }
        let pairRates = pairs.indices.map { median(schedulerRates[counts.count + $0]) }
        let baseline = pairs.indices.first { pairs[$0] == (gpus: 1, lanes: 1) }.map { pairRates[$0] }
        for (index, pair) in pairs.enumerated() {
            // One lane per GPU keeps session 7's keys; more lanes get their own.
            let key = pair.lanes == 1 ? "gpus_\(pair.gpus)" : "gpus_\(pair.gpus)_lanes_\(pair.lanes)"
            let rate = pairRates[index]
            report[key + "_tok_s"] = rate
            report[key + "_all_tok_s"] = schedulerRates[counts.count + index]
            if let oneGPU = pairs.indices.first(where: { pairs[$0] == (gpus: 1, lanes: pair.lanes) }).map({ pairRates[$0] }) {
                report[key + "_speedup"] = rate / oneGPU
                report[key + "_of_linear"] = rate / oneGPU / Double(pair.gpus)
            }
            if let baseline { report[key + "_vs_1gpu_1lane"] = rate / baseline }
        }
        return report
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
