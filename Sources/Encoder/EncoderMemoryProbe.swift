import Foundation
import Tensor

/// What encoding one large packed batch costs in memory, measured in a process that does nothing else
/// (`colgrep bench encoder` runs it in a child process so that earlier work cannot raise the marks):
/// the CPU backend's allocation high-water mark (activations, scratch, int8 copies: deterministic), and the
/// process's resident memory before loading, after loading and at its peak (`VmHWM`, /proc/self/status).
public struct EncoderMemoryProbe: Sendable {
    public struct Result: Sendable, Codable, Equatable {
        /// Size of `model.safetensors` (and the Dense layers' files), in bytes.
        public var weightsBytes: Int
        public var tokens: Int
        /// `CPUBackend.memory.peak` while encoding the batch.
        public var allocationPeakBytes: Int
        /// Resident memory before the model was loaded, after loading, and the peak (VmRSS, VmRSS, VmHWM).
        public var residentBeforeLoadBytes: Int
        public var residentLoadedBytes: Int
        public var residentPeakBytes: Int
        public var backendName: String
    }

    /// issue #3's batch: 16k tokens.
    public static let defaultTokens = 16_384

    public var threads: Int
    public var precision: CPUPrecision?
    public var tokens: Int
    /// The CPU backend's `activationBudgetBytes`; nil keeps its default.
    public var activationBudgetBytes: Int?

    public init(threads: Int, precision: CPUPrecision?, tokens: Int = Self.defaultTokens, activationBudgetBytes: Int? = nil) {
        self.threads = threads
        self.precision = precision
        self.tokens = tokens
        self.activationBudgetBytes = activationBudgetBytes
    }

    /// Loads the model in `directory` and encodes one packed batch of `tokens` random ids (documents of
    /// 8–512 tokens, seeded) through the same `encode` path as indexing.
    public func run(modelDirectory directory: URL) throws -> Result {
        let before = Self.statusBytes("VmRSS:")
        let backend = CPUBackend(threads: threads, precision: precision)
        if let activationBudgetBytes { backend.activationBudgetBytes = activationBudgetBytes }
        let model = try ColBERTModel(modelDirectory: directory, backend: backend)
        let loaded = Self.statusBytes("VmRSS:")
        var random = SplitMix(seed: 7)
        let vocabulary = UInt64(model.backbone.config.vocabSize)
        let maxLength = min(512, model.backbone.config.maxPositions)
        var sequences: [[Int32]] = [], remaining = tokens
        while remaining > 0 {
            let length = min(remaining, 8 + Int(random.next() % UInt64(maxLength - 7)))
            sequences.append((0..<length).map { _ in Int32(random.next() % vocabulary) })
            remaining -= length
        }
        backend.memory.resetPeak()
        _ = try model.encode(sequences, batcher: TokenBudgetBatcher(tokenBudget: tokens))
        return Result(weightsBytes: Self.weightsBytes(directory), tokens: tokens, allocationPeakBytes: backend.memory.peak,
                      residentBeforeLoadBytes: before, residentLoadedBytes: loaded,
                      residentPeakBytes: Self.statusBytes("VmHWM:"), backendName: backend.name)
    }

    /// Bytes of every `.safetensors` file of a model folder (backbone and Dense layers).
    static func weightsBytes(_ directory: URL) -> Int {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total = 0
        for case let url as URL in walker where url.pathExtension == "safetensors" {
            total += (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
        }
        return total
    }

    /// A memory line of /proc/self/status in bytes; 0 where /proc is absent.
    static func statusBytes(_ field: String) -> Int {
        Int(EncoderBenchmark.residentMiB(field: field) * 1_048_576)
    }
}
