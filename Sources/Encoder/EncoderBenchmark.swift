import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// Our side of `colgrep bench encoder`: a random Ettin-17M-shaped model, written in the PyLate layout and
/// loaded like any model, encodes random ids of the given document lengths through the same packed
/// token-budget path that indexing uses.
public struct EncoderBenchmark {
    public struct Result: Sendable {
        public var tokensPerSecond: Double
        public var tokens: Int
        public var seconds: Double
        /// Size of the model's fp32 weights, the resident memory with the model loaded, and the peak
        /// resident memory while encoding (the high-water mark is reset after loading), in MiB.
        public var weightsMiB: Double
        public var loadedResidentMiB: Double
        public var peakResidentMiB: Double
        public var backendName: String
        /// The vectors of the first `sampleCount` documents, to compare precisions on the same inputs.
        public var sample: [HostMatrix]
    }

    /// Documents kept in `Result.sample`.
    public static let sampleCount = 64

    public var threads: Int
    public var tokenBudget: Int
    /// nil: the CPU backend's automatic choice.
    public var precision: CPUPrecision?
    /// The CPU backend's `activationBudgetBytes`; nil keeps its default.
    public var activationBudgetBytes: Int?

    public init(threads: Int, tokenBudget: Int = TokenBudgetBatcher().tokenBudget, precision: CPUPrecision? = nil, activationBudgetBytes: Int? = nil) {
        self.threads = threads
        self.tokenBudget = tokenBudget
        self.precision = precision
        self.activationBudgetBytes = activationBudgetBytes
    }

    public func run(lengths: [Int]) throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appending(path: "colgrep-bench-model-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try SyntheticModel.writeModernBERT(to: directory)
        let weightsBytes = (try FileManager.default.attributesOfItem(atPath: directory.appending(path: "model.safetensors").path)[.size] as? Int) ?? 0
        let backend = CPUBackend(threads: threads, precision: precision)
        if let activationBudgetBytes { backend.activationBudgetBytes = activationBudgetBytes }
        let model = try ColBERTModel(modelDirectory: directory, backend: backend)
        var random = SplitMix(seed: 1)
        let sequences = lengths.map { n in (0..<n).map { _ in Int32(5 + random.next() % 49_995) } }
        let batcher = TokenBudgetBatcher(tokenBudget: tokenBudget)
        _ = try model.encode([sequences.max(by: { $0.count < $1.count }) ?? []], batcher: batcher)  // warm-up
        // "5" resets the peak-RSS mark (Linux ≥ 4.0), so the peak below is the encoding's alone.
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let loaded = Self.residentMiB(field: "VmRSS:")
        let start = DispatchTime.now().uptimeNanoseconds
        let vectors = try model.encode(sequences, batcher: batcher)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let report = (model.backend as? CPUBackend)?.profile?.report {
            FileHandle.standardError.write(Data((report + "\n").utf8))
        }
        let tokens = lengths.reduce(0, +)
        return Result(tokensPerSecond: Double(tokens) / seconds, tokens: tokens, seconds: seconds,
                      weightsMiB: Double(weightsBytes) / 1_048_576, loadedResidentMiB: loaded,
                      peakResidentMiB: Self.residentMiB(field: "VmHWM:"),
                      backendName: model.backend.name, sample: Array(vectors.prefix(Self.sampleCount)))
    }

    /// Smallest per-token cosine between two samples of the same documents (1 for identical ones).
    public static func minimumCosine(_ a: [HostMatrix], _ b: [HostMatrix]) -> Double {
        var worst = 1.0
        for (x, y) in zip(a, b) where x.rows == y.rows && x.cols == y.cols {
            for r in 0..<x.rows {
                var dot = 0.0, nx = 0.0, ny = 0.0
                for j in 0..<x.cols {
                    let u = Double(x.values[r * x.cols + j]), v = Double(y.values[r * y.cols + j])
                    dot += u * v; nx += u * u; ny += v * v
                }
                if nx > 0 && ny > 0 { worst = min(worst, dot / (nx * ny).squareRoot()) }
            }
        }
        return worst
    }

    /// A memory line of /proc/self/status (VmRSS, VmHWM) in MiB; 0 where /proc is absent.
    public static func residentMiB(field: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}
