import ArgumentParser
import Encoder
import Foundation
import Tensor
import TensorCUDA

/// `colgrep bench encoder-gpu`: the CUDA encoder on the synthetic workload's document lengths, timed
/// with the host-to-device copies of token ids and the device-to-host copies of the embeddings,
/// beside PyTorch CUDA bf16 eager and torch.compile run on the same lengths and weights in the same
/// invocation (`scripts/bench/gpu_encoder.py peers`). Results come back as one `HostRowBlock` per batch
/// (`ColBERTModel.embedRows`: fp32 rows copied by DMA into the backend's reused pinned arena), dropped once
/// encoded as a consumer drops each batch once pooled.
struct BenchEncoderGPU: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encoder-gpu", abstract: "CUDA encoder tokens/s against PyTorch eager and torch.compile.")
    @Option(help: "Model folder (scripts/bench/gpu_encoder.py make-model DIR makes the Ettin-17M-shaped one).") var model: String
    @Option(help: "JSON list of document lengths (scripts/bench/gpu_encoder.py lengths OUT).") var lengths: String
    @Option(help: "Token budget per packed batch.") var budget = 65536
    @Option(help: "Host threads feeding the GPU, each with its own backend and streams.") var streams = 2
    @Option(help: "bf16 or fp32.") var precision: CUDAPrecision = .bf16
    @Option(help: "CUDA device index.") var deviceIndex = 0
    @Option(help: "Timed passes over the workload (the median is reported).") var repeats = 3
    @Option(help: "Python that runs the PyTorch peers; empty to skip them.") var python = "python3"
    @Option(help: "The peers script.") var peers = "scripts/bench/gpu_encoder.py"
    @Option(help: "Also run the product's scheduler path with these lane counts on this GPU beside the direct path (e.g. 1,3; empty to skip).") var schedulerLanes = ""
    @Option(name: .customLong("scheduler-gpus"),
            help: "Also run the scheduler on each of GPUs 0..<n for these n (e.g. 1,2,4; issue #9), with the speed-up over one GPU.")
    var schedulerGPUs = ""
    @Option(name: .customLong("lanes-per-gpu"),
            help: "Encode lanes per GPU of the --scheduler-gpus runs, one run per count (e.g. 1,2; the product's default is 2).")
    var lanesPerGPU = "1"
    @Option(help: "How results come back: block (one reused pinned block per batch) or arrays (one fresh host array per batch, the earlier path).") var results = "block"
    @Flag(help: "Print JSON (the only output format).") var json = false

    func run() throws {
        guard let lengthValues = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lengths)))) as? [Int],
              !lengthValues.isEmpty, lengthValues.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(lengths): expected a JSON list of positive lengths")
        }
        guard results == "block" || results == "arrays" else { throw ValidationError("--results: block or arrays") }
        let arrays = results == "arrays"
        let engines = try (0..<max(1, streams)).map { _ -> (CUDABackend, ColBERTModel) in
            let backend = try CUDABackend(device: deviceIndex, precision: precision)
            let colbert = try ColBERTModel(modelDirectory: URL(fileURLWithPath: model), backend: backend)
            try backend.prepare(headDims: [colbert.backbone.config.headDim])
            return (backend, colbert)
        }
        let sequences = Self.randomSequences(lengths: lengthValues, vocabulary: engines[0].1.backbone.config.vocabSize)
        let batches = Self.packedBatches(sequences, budget: budget)
        let totalTokens = lengthValues.reduce(0, +)
        // The first pass over the workload, before any warm-up: what a one-shot index pays for plans, the pool, tables and
        // cuBLASLt's algorithm choices (timed, or loaded from the kernel cache: `cublaslt_timed` / `cublaslt_loaded`).
        let firstStart = ContinuousClock.now
        try Self.encodeAll(batches, engines: engines, arrays: arrays)
        let firstPassSeconds = seconds(ContinuousClock.now - firstStart)
        let tuningCounts = CUDABackend.cuBLASLtTuningCounts
        for (_, colbert) in engines { for batch in batches.prefix(4) { _ = try colbert.embedRows(batch) } }  // plans, pool, tables, result arena
        var rates: [Double] = []
        for _ in 0..<max(1, repeats) {
            let start = ContinuousClock.now
            try Self.encodeAll(batches, engines: engines, arrays: arrays)
            rates.append(Double(totalTokens) / seconds(ContinuousClock.now - start))
        }
        rates.sort()
        let ours = rates[rates.count / 2]
        // One single-stream pass with device events around every op: where the time goes.
        let (profiled, profiledModel) = engines[0]
        profiled.profiling = true
        for batch in batches { if arrays { _ = try profiledModel.embed(batch) } else { _ = try profiledModel.embedRows(batch) } }
        let profile = try profiled.profileReport()
        profiled.profiling = false
        let deviceMilliseconds = profile.reduce(0) { $0 + $1.milliseconds }
        var report: [String: Any] = [
            "backend": profiled.name, "docs": lengthValues.count, "tokens": totalTokens, "batches": batches.count,
            "budget": budget, "streams": engines.count, "results": results, "ours_tok_s": ours, "ours_all_tok_s": rates,
            "pool_mib": profiled.memoryPoolBytes.allocated >> 20,
            "profile_device_ms_per_pass": deviceMilliseconds,
            "profile": profile.map { ["op": $0.op, "ms": $0.milliseconds, "calls": $0.calls] },
            "cublaslt_tuning": CUDABackend.cuBLASLtTuningSummary,
            "first_pass_s": firstPassSeconds, "cublaslt_timed": tuningCounts.timed, "cublaslt_loaded": tuningCounts.loaded,
        ]
        let laneCounts = schedulerLanes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let gpuCounts = schedulerGPUs.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let perGPU = lanesPerGPU.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if !laneCounts.isEmpty || !gpuCounts.isEmpty {
            report["scheduler"] = try SchedulerComparison(modelDirectory: URL(fileURLWithPath: model), sequences: sequences, budget: budget,
                                                          ordinal: deviceIndex, repeats: repeats)
                .run(lanes: laneCounts, gpus: gpuCounts, lanesPerGPU: perGPU)
        }
        if !python.isEmpty { try addPeers(to: &report, ours: ours) }
        try printJSON(report)
    }

    /// Random ids of the given lengths (the content does not change the work).
    static func randomSequences(lengths: [Int], vocabulary: Int) -> [[Int32]] {
        var random = SeededGenerator(seed: 11)
        return lengths.map { n in (0..<n).map { _ in Int32.random(in: 5..<Int32(min(50000, vocabulary)), using: &random) } }
    }

    /// Length-sorted token-budget batches.
    static func packedBatches(_ sequences: [[Int32]], budget: Int) -> [PackedBatch] {
        let order = sequences.indices.sorted { sequences[$0].count > sequences[$1].count }
        var batches: [PackedBatch] = []
        var current: [[Int32]] = [], tokens = 0
        for index in order {
            let n = sequences[index].count
            if tokens + n > budget, !current.isEmpty { batches.append(PackedBatch(sequences: current)); current = []; tokens = 0 }
            current.append(sequences[index])
            tokens += n
        }
        if !current.isEmpty { batches.append(PackedBatch(sequences: current)) }
        return batches
    }

    /// Every batch encoded once; worker threads (one engine each) take batches from a shared counter,
    /// so one thread's host work (ids in, vectors out) overlaps another's device work.
    static func encodeAll(_ batches: [PackedBatch], engines: [(CUDABackend, ColBERTModel)], arrays: Bool) throws {
        let shared = UncheckedBox((next: 0, error: nil as Error?))
        let lock = NSLock()
        let models = UncheckedBox(engines.map(\.1))
        DispatchQueue.concurrentPerform(iterations: engines.count) { worker in
            let colbert = models.value[worker]
            while true {
                lock.lock()
                let index = shared.value.next
                shared.value.next += 1
                let failed = shared.value.error != nil
                lock.unlock()
                if index >= batches.count || failed { return }
                do {
                    if arrays { _ = try colbert.embed(batches[index]) } else { _ = try colbert.embedRows(batches[index]) }
                } catch {
                    lock.lock(); shared.value.error = error; lock.unlock()
                    return
                }
            }
        }
        if let error = shared.value.error { throw error }
    }

    private func addPeers(to report: inout [String: Any], ours: Double) throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-peers-\(getpid()).json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, peers, "peers", model, lengths, out.path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let peer = (try? JSONSerialization.jsonObject(with: Data(contentsOf: out))) as? [String: Any] else {
            report["peers_error"] = "\(python) \(peers) exited with status \(process.terminationStatus)"
            return
        }
        report["peers"] = peer
        for (key, value) in peer where key.hasSuffix("_tok_s") {
            if let rate = value as? Double { report["ratio_vs_" + key.replacingOccurrences(of: "_tok_s", with: "")] = ours / rate }
        }
    }
}
