import ArgumentParser
import ColGrep
import Encoder
import Foundation
import Tensor

/// The N-device code path against the direct single-GPU path (issue #9): the same sequences
/// encoded (a) by one thread calling the CUDA device's `encode` batch after batch, and (b) through
/// `EncodeScheduler` with `lanes` CUDA lanes on the same GPU (one lane is the product's single-GPU
/// indexing path; several lanes stand in for several GPUs and overlap one lane's host work with
/// another's device work). Both include the skiplist, the per-sequence split and the downloads, and both
/// keep every output until the pass ends (the scheduler returns them all; session 2–3's direct path
/// dropped each batch's outputs at once, so its memory was reused while the scheduler's was fresh).
struct SchedulerComparison {
    let modelDirectory: URL
    let sequences: [[Int32]]
    let budget: Int
    let ordinal: Int
    let repeats: Int

    /// - Parameters:
    ///   - laneCounts: scheduler runs with this many lanes on GPU `ordinal`.
    ///   - gpuCounts: scheduler runs with one lane on each of GPUs `0..<n` (the product's path on n GPUs),
    ///     reported with their speed-up over one GPU and that over n (linear = 1).
    func run(lanes laneCounts: [Int], gpus gpuCounts: [Int] = []) throws -> [String: Any] {
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
        // Each scheduler's lanes as GPU ordinals: `count` lanes on this GPU, then one lane on each of n GPUs.
        let counts = laneCounts.filter { $0 > 0 }
        let multiGPU = gpuCounts.filter { $0 > 0 }
        let laneOrdinals = counts.map { [Int](repeating: ordinal, count: $0) } + multiGPU.map { Array(0..<$0) }
        let schedulers = try laneOrdinals.map { ordinals -> EncodeScheduler<[Int32], HostMatrix> in
            let lanes = ordinals.map { device in
                EncodeLane<[Int32], HostMatrix>(device: BackendEncodeDevice(processor: .cuda(ordinal: device), modelDirectory: modelDirectory,
                                                                            skipIDs: [], kernelCache: nil),
                                                end: .longest, tokenBudget: budget)
            }
            let scheduler = EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false))
            let warm = try scheduler.encode(Array(sequences.prefix(64)), length: \.count)
            guard warm.outputs.count == min(64, sequences.count) else { throw ValidationError("scheduler lost sequences") }
            return scheduler
        }
        defer { schedulers.forEach { $0.stop() } }
        // Passes alternate between the paths, so clock and thermal drift hit every path alike.
        var directRates: [Double] = [], schedulerRates = [[Double]](repeating: [], count: laneOrdinals.count)
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
        let oneGPU = multiGPU.firstIndex(of: 1).map { median(schedulerRates[counts.count + $0]) }
        for (index, count) in multiGPU.enumerated() {
            let rate = median(schedulerRates[counts.count + index])
            report["gpus_\(count)_tok_s"] = rate
            report["gpus_\(count)_all_tok_s"] = schedulerRates[counts.count + index]
            if let oneGPU {
                report["gpus_\(count)_speedup"] = rate / oneGPU
                report["gpus_\(count)_of_linear"] = rate / oneGPU / Double(count)
            }
        }
        return report
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
