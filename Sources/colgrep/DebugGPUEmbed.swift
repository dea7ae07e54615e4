import ArgumentParser
import Encoder
import Foundation
import Tensor
import TensorCUDA

/// `colgrep debug gpu-embed`: encodes token-id sequences (JSON `[[Int]]`) with a ColBERT model on the
/// chosen backend, writes the unit vectors as raw little-endian f32 (the input of the parity check
/// against transformers + the PyLate head, `scripts/bench/gpu_encoder.py compare`), and prints the
/// start-up timeline as JSON: every step with its start and end in ms since the process started,
/// process start → first batch encoded.
struct DebugGPUEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpu-embed", abstract: "Encode token ids on a backend; write raw f32 vectors.")
    @Option(help: "Model folder (config.json, model.safetensors, Dense folders).") var model: String
    @Option(help: "JSON file with a list of token-id lists.") var ids: String
    @Option(help: "Output file (raw f32, tokens × dimension).") var out: String
    @Option(help: "cuda or cpu.") var device: ComputeDeviceChoice = .cuda
    @Option(help: "CUDA device index (among those CUDA_VISIBLE_DEVICES leaves visible).") var deviceIndex = 0
    @Option(help: "bf16 or fp32 on CUDA; on the CPU, fp32 forces fp32 weights (otherwise the CPU default, auto).") var precision: CUDAPrecision = .bf16
    @Flag(help: "CUDA: open the GPU (driver, context, kernels) on a second thread from the start, while this one reads the ids. cuBLASLt always opens on a thread of its own; the first batches run on our own GEMM meanwhile.") var overlap = false

    func run() throws {
        var timeline = StartupTimeline()
        let opening: BackgroundTask<any Backend>? = overlap && device == .cuda
            ? BackgroundTask { [device, deviceIndex, precision] in try makeBackend(device, device: deviceIndex, precision: precision) }
            : nil
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: ids)) } catch { throw ValidationError("cannot read \(ids): \(error.localizedDescription)") }
        guard let sequences = (try? JSONSerialization.jsonObject(with: data)) as? [[Int]] else {
            throw ValidationError("\(ids): expected a JSON list of token-id lists")
        }
        let batch = PackedBatch(sequences: sequences.map { $0.map { Int32(truncatingIfNeeded: $0) } })
        timeline.lap("read ids")
        let modelURL = URL(fileURLWithPath: model)
        let backend: any Backend
        if let opening {
            backend = try opening.wait()
            timeline.add("backend (libraries, context, core kernels) on a second thread", start: opening.started, end: opening.finished)
            timeline.lap("waited for the backend")
        } else {
            backend = try makeBackend(device, device: deviceIndex, precision: precision)
            timeline.lap("backend (libraries, context, core kernels)")
        }
        let cuda = backend as? CUDABackend
        let colbert = try ColBERTModel(modelDirectory: modelURL, backend: backend)
        if let cuda { try cuda.synchronize() }
        timeline.lap("model load + weight upload")
        let upload = cuda?.uploadTiming
        if let cuda { try cuda.prepare(headDims: [colbert.backbone.config.headDim]); timeline.lap("attention kernels") }
        let ownBefore = cuda?.ownMatmulCount ?? 0
        let embeddings = try colbert.embed(batch)
        let ownGEMMs = (cuda?.ownMatmulCount ?? 0) - ownBefore
        timeline.lap("first batch encoded (\(batch.tokenCount) tokens, ids in, vectors out; \(ownGEMMs) GEMMs on our own kernel)")
        let total = secondsSinceProcessStart()
        // Again through the block path (`embedRows`: one reused pinned block on CUDA): same vectors.
        let block = try colbert.embedRows(batch)
        timeline.lap("same batch again (warm, as one block)")
        var blockDifference: Float = block.rows == embeddings.rows ? 0 : .infinity
        for s in 0..<min(block.groupCount, batch.sequenceCount) where block.rows == embeddings.rows {
            let base = batch.range(of: s).lowerBound * embeddings.cols
            block.withGroup(s) { group in
                for (i, value) in group.enumerated() { blockDifference = max(blockDifference, abs(value - embeddings.values[base + i])) }
            }
        }
        do {
            try embeddings.values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: out)) }
        } catch {
            throw ValidationError("cannot write \(out): \(error.localizedDescription)")
        }
        var report: [String: Any] = ["backend": backend.name, "tokens": batch.tokenCount, "dimension": embeddings.cols,
                                     "overlap": opening != nil, "steps": timeline.steps, "first_batch_own_gemms": ownGEMMs,
                                     "block_vs_array_max_abs_difference": blockDifference.isFinite ? Double(blockDifference) : "\(blockDifference)" as Any]
        if let cuda {
            report["cuda_startup"] = cuda.startupSteps.map { ["step": $0.step, "ms": $0.seconds * 1000] }
            report["weights_upload_host_ms"] = (upload?.hostSeconds ?? 0) * 1000
            report["weights_upload_pinned_allocation_ms"] = (upload?.pinnedAllocationSeconds ?? 0) * 1000
        }
        if let age = timeline.processAgeAtMain { report["process_start_to_main_ms"] = age * 1000 }
        if let total { report["process_start_to_first_batch_ms"] = total * 1000 }
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
        // One line per step, readable in the device log: start → end ms since process start.
        for step in timeline.steps {
            let start = step["start_ms"] as? Double ?? 0, end = step["end_ms"] as? Double ?? 0
            FileHandle.standardError.write(Data("timeline \(Int(start.rounded()))→\(Int(end.rounded())) ms (\(Int((end - start).rounded())) ms) \(step["step"] as? String ?? "")\n".utf8))
        }
    }
}

/// Start-up steps with their start and end in ms since the process started (the process's age at
/// `main` from /proc, 10 ms resolution, plus a monotonic clock from there).
struct StartupTimeline {
    let processAgeAtMain = secondsSinceProcessStart()
    let mainClock = ContinuousClock.now
    private var last = ContinuousClock.now
    private(set) var steps: [[String: Any]] = []

    private func ms(_ instant: ContinuousClock.Instant) -> Double { ((processAgeAtMain ?? 0) + seconds(instant - mainClock)) * 1000 }

    /// A step from the end of the previous lap to now (on this thread).
    mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        add(name, start: last, end: now)
        last = now
    }

    /// A step that ran elsewhere (another thread) between two instants.
    mutating func add(_ name: String, start: ContinuousClock.Instant, end: ContinuousClock.Instant) {
        steps.append(["step": name, "start_ms": ms(start), "end_ms": ms(end), "ms": seconds(end - start) * 1000])
    }
}

/// Work started on its own thread now; `wait` returns its result (or throws its error).
final class BackgroundTask<Value>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Value, Error>?
    let started = ContinuousClock.now
    private(set) var finished = ContinuousClock.now

    init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            result = Result { try body() }
            finished = ContinuousClock.now
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    func wait() throws -> Value {
        done.wait()
        done.signal()
        return try result!.get()
    }
}
