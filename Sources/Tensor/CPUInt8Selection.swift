import CKernels
import Foundation

/// Which `linear` calls of a `CPUBackend` run in int8.
///
/// `.fp32`: none. `.int8`: every call from the first with at least `int8MinimumRows` rows on. `.auto`: calls
/// on weights a model declared fit (`allowReducedPrecision`), once measuring on that weight's first batch of
/// `calibrationRows` or more rows showed int8 both faster than SGEMM (by `requiredSpeedup`) and within
/// `requiredCosine` of it on every output row. Each weight is decided once, on real inputs, so the choice
/// follows the machine (AVX2 vs VNNI, OpenBLAS kernel family, threads) rather than a table.
extension CPUBackend {
    /// Below this many rows (a query's ~32 tokens) `linear` stays fp32: the weight is never packed for it.
    public static let int8MinimumRows = 64
    /// Rows of the first large batch timed both ways in `.auto`.
    public static let calibrationRows = 256
    /// int8 must take at most this fraction of fp32's time to be chosen.
    static let requiredSpeedup = 0.9
    /// Minimum per-row cosine between the int8 and fp32 outputs of the calibration batch. The model-level bound
    /// is 0.99 per token; errors of ~25 GEMMs in a row add up (MiniLM at 0.998 per GEMM ended at 0.9897), so
    /// each GEMM gets 1/20 of the budget.
    static let requiredCosine: Float = 0.9995

    public func allowReducedPrecision(_ weight: any DeviceMatrix) {
        guard precision == .auto, let w = weight as? CPUMatrix else { return }
        let state = w.quantized ?? QuantizedWeight()
        state.allowed = true
        w.quantized = state
    }

    /// The int8 form to use for `x · wᵀ`, or nil for fp32. Once a weight is packed (`.int8`) or decided
    /// (`.auto`), every batch uses that choice whatever its size: per-row quantisation makes each output row
    /// independent of the batch it came in, so vectors do not depend on how documents were split into batches.
    func int8Weight(for w: CPUMatrix, input x: CPUMatrix) -> QuantizedWeight? {
        switch precision {
        case .fp32:
            return nil
        case .int8:
            let state = w.quantized ?? QuantizedWeight()
            if state.packed == nil {
                guard x.rows >= Self.int8MinimumRows else { return nil }
                state.prepare(w, meter: memory)
                w.quantized = state
                w.dropResidentPages()
            }
            return state
        case .auto:
            guard let state = w.quantized, state.allowed else { return nil }
            if let chosen = state.chosen { return chosen ? state : nil }
            // Another backend of this process may have measured the same weights (two encoders of one model):
            // reuse its choice so that both give the same vectors. Small batches never trigger measuring, so
            // while nothing is decided (a query-only process) they skip hashing the weight too.
            if x.rows < Self.calibrationRows && state.key == nil && Int8Decisions.shared.isEmpty { return nil }
            let key = state.key ?? Int8Decisions.Key(w)
            state.key = key
            let chosen: Bool
            if let known = Int8Decisions.shared[key] {
                chosen = known
                if chosen { state.prepare(w, meter: memory) }
            } else {
                guard x.rows >= Self.calibrationRows else { return nil }
                // A choice an earlier process measured for these weights on this machine and thread count
                // is taken as is: no second measurement, and no chance of a different one for the same index.
                let archiveKey = Int8Decisions.archiveKey(key, kernel: Int8Kernel.name(Int8Kernel.level), threads: pool.threads)
                let proposed: Bool
                if let archived = Int8Decisions.shared.archivedChoice(archiveKey) {
                    proposed = archived
                    if archived { state.prepare(w, meter: memory) }
                } else {
                    proposed = measure(state, weight: w, input: x)
                    Int8Decisions.shared.archive(proposed, for: archiveKey)
                }
                // Backends measuring the same weights at once may disagree (timing noise): the first
                // settled choice is everyone's, so that no backend's vectors differ from another's.
                chosen = Int8Decisions.shared.settle(key, proposed)
                if chosen != proposed {
                    if chosen { state.prepare(w, meter: memory) } else { state.discard() }
                }
            }
            state.chosen = chosen
            // Only one form of the weight stays resident: the int8 copy, or (the losing copy freed) the fp32 one.
            if chosen { w.dropResidentPages() }
            return chosen ? state : nil
        }
    }

    /// Times SGEMM and int8 on the first `calibrationRows` rows of `x` (best of three each, interleaved) and
    /// compares their outputs; true when int8 is fast enough and close enough.
    private func measure(_ state: QuantizedWeight, weight w: CPUMatrix, input x: CPUMatrix) -> Bool {
        state.prepare(w, meter: memory)
        let rows = Self.calibrationRows, n = w.rows
        let exact = CPUMatrix(rows: rows, cols: n, pool: activations), approximate = CPUMatrix(rows: rows, cols: n, pool: activations)
        var fp32 = UInt64.max, int8 = UInt64.max
        for _ in 0..<3 {
            var start = DispatchTime.now().uptimeNanoseconds
            product(x, rows: rows, weight: w, quantized: nil, into: exact.pointer)
            fp32 = min(fp32, DispatchTime.now().uptimeNanoseconds - start)
            start = DispatchTime.now().uptimeNanoseconds
            product(x, rows: rows, weight: w, quantized: state, into: approximate.pointer)
            int8 = min(int8, DispatchTime.now().uptimeNanoseconds - start)
        }
        let cosine = Self.minimumRowCosine(exact, approximate)
        let chosen = Double(int8) <= Self.requiredSpeedup * Double(fp32) && cosine >= Self.requiredCosine
        // The losing int8 copy is freed (the fp32 weight stays: it is the model file's mapped pages).
        if !chosen { state.discard() }
        if profile != nil {
            let line = "int8 \(Int8Kernel.name(state.level)) \(n)×\(w.cols): fp32 \(fp32 / 1000) µs, int8 \(int8 / 1000) µs, "
                + "min cosine \(cosine) → \(chosen ? "int8" : "fp32")\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
        return chosen
    }

    /// Smallest cosine between corresponding rows (1 where both rows are zero).
    static func minimumRowCosine(_ a: CPUMatrix, _ b: CPUMatrix) -> Float {
        var worst: Float = 1
        for r in 0..<a.rows {
            var dot: Double = 0, na: Double = 0, nb: Double = 0
            for j in 0..<a.cols {
                let u = Double(a.pointer[r * a.cols + j]), v = Double(b.pointer[r * b.cols + j])
                dot += u * v; na += u * u; nb += v * v
            }
            if na == 0 && nb == 0 { continue }
            worst = min(worst, na > 0 && nb > 0 ? Float(dot / (na * nb).squareRoot()) : 0)
        }
        return worst
    }
}

/// Keeps `.auto` int8 choices across processes (`Int8Decisions.useArchive`); lookups happen only where a
/// choice would otherwise be measured (a document batch of `calibrationRows` or more), never for queries.
public protocol Int8DecisionArchive: AnyObject, Sendable {
    func choice(for name: String) -> Bool?
    func record(_ choice: Bool, for name: String)
}

/// The `.auto` choices made in this process, by weight content, shared by every `CPUBackend`.
public final class Int8Decisions: @unchecked Sendable {
    struct Key: Hashable {
        let rows: Int, cols: Int, checksum: UInt64
        /// Shape and an FNV-1a hash of a sample of the weight's bits (every 31st value: weights of one model
        /// differ everywhere, and a query-only process should not read every weight).
        init(_ w: CPUMatrix) {
            rows = w.rows; cols = w.cols
            var h: UInt64 = 0xcbf29ce484222325
            for i in stride(from: 0, to: w.rows * w.cols, by: 31) { h = (h ^ UInt64(w.pointer[i].bitPattern)) &* 0x100000001b3 }
            checksum = h
        }
    }

    static let shared = Int8Decisions()
    private let lock = NSLock()
    private var choices: [Key: Bool] = [:]
    private var store: (any Int8DecisionArchive)?

    /// Installs (or, with nil, removes) where measured choices outlive the process.
    public static func useArchive(_ archive: (any Int8DecisionArchive)?) {
        shared.lock.withLock { shared.store = archive }
    }

    /// The archive's name for a weight's choice: its content key, the int8 kernel family, the thread count
    /// (speed ratios change with both) and the selection's thresholds (a change of rule re-measures).
    static func archiveKey(_ key: Key, kernel: String, threads: Int) -> String {
        "\(key.rows)x\(key.cols)-\(String(key.checksum, radix: 16))-\(kernel)-t\(threads)-s\(CPUBackend.requiredSpeedup)-c\(CPUBackend.requiredCosine)"
    }

    func archivedChoice(_ name: String) -> Bool? {
        lock.withLock { store }?.choice(for: name)
    }

    func archive(_ choice: Bool, for name: String) {
        lock.withLock { store }?.record(choice, for: name)
    }

    subscript(key: Key) -> Bool? {
        lock.withLock { choices[key] }
    }

    /// True while no weight of this process has been decided.
    var isEmpty: Bool { lock.withLock { choices.isEmpty } }

    /// Records `proposed` unless a choice for `key` is already settled; returns the settled choice.
    func settle(_ key: Key, _ proposed: Bool) -> Bool {
        lock.withLock {
            if let settled = choices[key] { return settled }
            choices[key] = proposed
            return proposed
        }
    }
}
