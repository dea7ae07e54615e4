import CCUDA
import Foundation

/// Choosing a cuBLASLt algorithm by timing instead of taking the heuristic's first answer.
///
/// Why: the heuristic ranks algorithms by a model, not by the device, and answers per exact row count; the
/// encoder's packed batches all have different row counts, and for many of them the first answer for the
/// narrow residual GEMMs (256 outputs from 256 or 384 inputs) was a slower kernel than for others (measured on
/// an H100, session 12: those two GEMMs took 30.7 + 26.9 device-ms a pass with a per-batch heuristic choice, 22.0 +
/// 18.6 with one timed choice per shape; 19.5M against 18.2M tokens/s for the Ettin shape, 10.7M against 9.9M for
/// MiniLM's). By default (`COLGREP_CUBLASLT_TUNE`, 8; 1 turns it off) the first GEMM of a shape with at least
/// `minimumRows` rows asks the heuristic for that many answers, runs each on the call's own operands
/// (interleaved, a few times, keeping each one's fastest time: other streams' work only adds time), and keeps the
/// fastest for every later call of that shape. Smaller GEMMs (a start-up's first batch) keep the heuristic's choice.
/// The choice is shared by every backend of the process and made once per (device, outputs, inputs, types,
/// epilogue, power-of-two row bucket), so the packed batches' varying row counts reuse it; a row count
/// the chosen algorithm refuses falls back to the heuristic's own first answer for that call. It is also kept in
/// the kernel cache (`BLASLtAlgorithmStore`): a later process checks the stored algorithm with
/// `cublasLtMatmulAlgoCheck` and uses it without timing (session 13: the timing cost ~0.15 s per process).
/// All candidates compute the same product with fp32 accumulation; they differ in tiling and order of
/// summation only, so the results agree to rounding.
struct BLASLtTuning {
    /// Heuristic answers timed per shape (1: no timing, the heuristic's first answer).
    var candidates: Int
    /// Timed runs of each candidate (the fastest counts).
    var repeats = 3
    /// Shapes with fewer rows are not timed (too short to measure, too cheap to matter, and a short run's first
    /// batch should not wait for it: ~1 ms per shape).
    var minimumRows = 16384

    static let environment = BLASLtTuning(
        candidates: max(1, min(16, ProcessInfo.processInfo.environment["COLGREP_CUBLASLT_TUNE"].flatMap { Int($0) } ?? defaultCandidates)))

    /// Heuristic answers timed per shape unless `COLGREP_CUBLASLT_TUNE` says otherwise.
    static let defaultCandidates = 8

    var enabled: Bool { candidates > 1 }

    /// What a timed choice is keyed by: the device and the plan's shape with the row count reduced to its
    /// power-of-two bucket (a process with two kinds of GPU keeps a choice for each).
    struct Key: Hashable, Sendable {
        var device: BLASLtDeviceIdentity
        var m: Int, k: Int, rowBucket: Int
        var input: Int32, output: Int32, compute: Int32, epilogue: Int32
    }

    static func key(_ plan: BLASLtMatmul.PlanKey, device: BLASLtDeviceIdentity) -> Key {
        var bucket = 1
        while bucket < plan.n { bucket <<= 1 }
        return Key(device: device, m: plan.m, k: plan.k, rowBucket: bucket, input: plan.input, output: plan.output,
                   compute: plan.compute, epilogue: plan.epilogue)
    }
}

/// The process's timed choices (every backend, every thread), whether timed here or loaded from the kernel cache.
final class BLASLtTunedAlgorithms: @unchecked Sendable {
    static let shared = BLASLtTunedAlgorithms()
    private let lock = NSLock()
    private var chosen: [BLASLtTuning.Key: cublasLtMatmulAlgo_t] = [:]
    /// How each choice was made: the timings (ms per candidate, in the heuristic's order) and the index chosen,
    /// or nil for a choice loaded from the kernel cache.
    private var reports: [(key: BLASLtTuning.Key, timing: (milliseconds: [Float], chosen: Int)?)] = []
    /// Cache entries discarded or refused, and stores that failed (one line each).
    private var notes: [String] = []

    func algorithm(for key: BLASLtTuning.Key) -> cublasLtMatmulAlgo_t? {
        lock.lock(); defer { lock.unlock() }
        return chosen[key]
    }

    /// Keeps a choice timed in this process (the first one for a key wins).
    func record(_ algo: cublasLtMatmulAlgo_t, for key: BLASLtTuning.Key, milliseconds: [Float], chosen index: Int) {
        keep(algo, for: key, timing: (milliseconds, index))
    }

    /// Keeps a choice loaded from the kernel cache and accepted by cuBLASLt.
    func recordLoaded(_ algo: cublasLtMatmulAlgo_t, for key: BLASLtTuning.Key) {
        keep(algo, for: key, timing: nil)
    }

    private func keep(_ algo: cublasLtMatmulAlgo_t, for key: BLASLtTuning.Key, timing: (milliseconds: [Float], chosen: Int)?) {
        lock.lock(); defer { lock.unlock() }
        if chosen[key] == nil {
            chosen[key] = algo
            reports.append((key, timing))
        }
    }

    func note(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        notes.append(line)
    }

    /// The keys of the choices kept, in the order they were made.
    var keys: [BLASLtTuning.Key] {
        lock.lock(); defer { lock.unlock() }
        return reports.map(\.key)
    }

    /// Shapes whose algorithm was chosen by timing in this process, and shapes whose choice came from the cache.
    var counts: (timed: Int, loaded: Int) {
        lock.lock(); defer { lock.unlock() }
        let timed = reports.filter { $0.timing != nil }.count
        return (timed, reports.count - timed)
    }

    /// One line per shape: the candidates' times and which one runs, or that the choice came from the cache;
    /// then the notes.
    var summary: [String] {
        lock.lock(); defer { lock.unlock() }
        return reports.map { r in
            let shape = "\(r.key.rowBucket)x\(r.key.m)x\(r.key.k) epilogue \(r.key.epilogue): "
            guard let timing = r.timing else { return shape + "from the kernel cache" }
            return shape + timing.milliseconds.enumerated()
                .map { String(format: $0.offset == timing.chosen ? "[%.3f]" : "%.3f", $0.element) }.joined(separator: " ") + " ms"
        } + notes
    }
}
