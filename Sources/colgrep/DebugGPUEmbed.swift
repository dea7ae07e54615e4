import ArgumentParser
import Encoder
import Foundation
import Tensor
import TensorCUDA

/// `colgrep debug gpu-embed`: encodes token-id sequences (JSON `[[Int]]`) with a ColBERT model on the
/// chosen backend, writes the unit vectors as raw little-endian f32 (the input of the parity check
/// against transformers + the PyLate head, `scripts/bench/gpu_encoder.py compare`), and prints the
/// start-up steps as JSON: process start → first batch encoded.
struct DebugGPUEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpu-embed", abstract: "Encode token ids on a backend; write raw f32 vectors.")
    @Option(help: "Model folder (config.json, model.safetensors, Dense folders).") var model: String
    @Option(help: "JSON file with a list of token-id lists.") var ids: String
    @Option(help: "Output file (raw f32, tokens × dimension).") var out: String
    @Option(help: "cuda or cpu.") var device: ComputeDeviceChoice = .cuda
    @Option(help: "CUDA device index (among those CUDA_VISIBLE_DEVICES leaves visible).") var deviceIndex = 0
    @Option(help: "bf16 or fp32 on CUDA; on the CPU, fp32 forces fp32 weights (otherwise the CPU default, auto).") var precision: CUDAPrecision = .bf16

    func run() throws {
        let processAgeAtMain = secondsSinceProcessStart()
        var clock = ContinuousClock.now
        var steps: [[String: Any]] = []
        func lap(_ name: String) { let now = ContinuousClock.now; steps.append(["step": name, "ms": seconds(now - clock) * 1000]); clock = now }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: ids)) } catch { throw ValidationError("cannot read \(ids): \(error.localizedDescription)") }
        guard let sequences = (try? JSONSerialization.jsonObject(with: data)) as? [[Int]] else {
            throw ValidationError("\(ids): expected a JSON list of token-id lists")
        }
        let batch = PackedBatch(sequences: sequences.map { $0.map { Int32(truncatingIfNeeded: $0) } })
        lap("read ids")
        let backend = try makeBackend(device, device: deviceIndex, precision: precision)
        lap("backend (libraries, context, core kernels)")
        let colbert = try ColBERTModel(modelDirectory: URL(fileURLWithPath: model), backend: backend)
        if let cuda = backend as? CUDABackend { try cuda.synchronize() }
        lap("model load + weight upload")
        if let cuda = backend as? CUDABackend { try cuda.prepare(headDims: [colbert.backbone.config.headDim]); lap("attention kernels") }
        let embeddings = try colbert.embed(batch)
        lap("first batch encoded (\(batch.tokenCount) tokens, ids in, vectors out)")
        let total = secondsSinceProcessStart()
        _ = try colbert.embed(batch)
        lap("same batch again (warm)")
        do {
            try embeddings.values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: out)) }
        } catch {
            throw ValidationError("cannot write \(out): \(error.localizedDescription)")
        }
        var report: [String: Any] = ["backend": backend.name, "tokens": batch.tokenCount, "dimension": embeddings.cols, "steps": steps]
        if let cuda = backend as? CUDABackend { report["cuda_startup"] = cuda.startupSteps.map { ["step": $0.step, "ms": $0.seconds * 1000] } }
        if let processAgeAtMain { report["process_start_to_main_ms"] = processAgeAtMain * 1000 }
        if let total { report["process_start_to_first_batch_ms"] = total * 1000 }
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
