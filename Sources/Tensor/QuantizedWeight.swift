import CKernels
import Foundation

/// Arithmetic of the CPU backend's `linear`.
public enum CPUPrecision: String, Sendable, CaseIterable {
    /// OpenBLAS SGEMM.
    case fp32
    /// Per-channel int8 weights × per-row int8 activations (quantised on the fly, stored as u8 + 128), int32
    /// sums (AVX-512 VNNI `vpdpbusd`, or AVX2 `vpmaddubsw` with 7-bit weights), dequantised to fp32 before
    /// the epilogue. Parity bound: per-token cosine ≥ 0.99 against fp32.
    case int8
    /// int8 for each weight where it measured faster than fp32 on this machine and its outputs stayed within
    /// cosine 0.999 of fp32 (see `Int8Selection`); fp32 everywhere else.
    case auto

    /// The precision a `CPUBackend` uses when none is asked for.
    public static var automatic: CPUPrecision { .auto }
}

/// The int8 kernel level a new `QuantizedWeight` is packed for (`CK_Q8_*`): the CPU's best unless a test
/// forces a lower one.
enum Int8Kernel {
    nonisolated(unsafe) static var forcedLevel: Int32?
    static var level: Int32 { forcedLevel.map { min($0, ck_q8_best_level()) } ?? ck_q8_best_level() }
    static func name(_ level: Int32) -> String {
        switch level {
        case Int32(CK_Q8_VNNI): "avx512-vnni"
        case Int32(CK_Q8_AVX2): "avx2"
        default: "scalar"
        }
    }
}

/// Backends that can run `linear` in reduced precision for the weights a model declares fit for it.
/// Models call this once per linear weight after loading; other matrices (centroids, ad-hoc products) stay
/// in full precision under automatic selection.
public protocol ReducedPrecisionLinear: Backend {
    /// Declares `weight` a model weight whose products may be computed in reduced precision when the
    /// backend measures that faster and within its parity bound.
    func allowReducedPrecision(_ weight: any DeviceMatrix)
}

/// A weight's int8 state: the packed form for `ck_q8_gemm`, made on the weight's first int8 use (never for
/// small batches, so a one-shot query does not pay for it), and in `.auto` precision whether the weight may
/// use int8 and what measuring chose.
final class QuantizedWeight: @unchecked Sendable {
    private(set) var level: Int32 = 0
    private(set) var packed: UnsafeMutableRawPointer?
    private var scales: UnsafeMutablePointer<Float>?
    private var offsets: UnsafeMutablePointer<Int32>?
    /// `.auto` only: the model declared this weight fit for reduced precision.
    var allowed = false
    /// `.auto` only: whether this weight runs in int8 (nil until measured).
    var chosen: Bool?
    /// `.auto` only: the weight's key among the process's decisions, computed once.
    var key: Int8Decisions.Key?

    init() {}

    /// Where the packed copy is counted, and its size.
    private var meter: MemoryMeter?
    private var bytes = 0

    deinit { discard() }

    /// Packs `weight` for the current kernel level, once; the copy's bytes are counted in `meter` until
    /// `discard()` or the end of this object.
    func prepare(_ weight: CPUMatrix, meter: MemoryMeter) {
        guard packed == nil else { return }
        level = Int8Kernel.level
        let n = weight.rows, k = weight.cols, padded = max((n + 15) / 16 * 16, 16)
        let size = max(ck_q8_weight_size(n, k), 64)
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        let s = UnsafeMutablePointer<Float>.allocate(capacity: padded), o = UnsafeMutablePointer<Int32>.allocate(capacity: padded)
        ck_q8_weight_pack(weight.pointer, n, k, ck_q8_weight_range(level), p.assumingMemoryBound(to: Int8.self), s, o)
        packed = p; scales = s; offsets = o
        self.meter = meter
        bytes = size + padded * (MemoryLayout<Float>.stride + MemoryLayout<Int32>.stride)
        meter.allocated(bytes)
    }

    /// Frees the packed copy (`.auto` keeps only the form that won the timing).
    func discard() {
        packed?.deallocate(); scales?.deallocate(); offsets?.deallocate()
        packed = nil; scales = nil; offsets = nil
        meter?.freed(bytes)
        bytes = 0
    }

    /// `y` (rows × n) ≈ `x · weightᵀ` for `rows` rows of `x` (width `k`), on the calling thread; needs `prepare`.
    func multiply(_ x: UnsafePointer<Float>, rows: Int, k: Int, n: Int, into y: UnsafeMutablePointer<Float>, meter: MemoryMeter) {
        guard let packed, let scales, let offsets else { preconditionFailure("QuantizedWeight.multiply before prepare") }
        let workBytes = ck_q8_work_size(k)
        let work = UnsafeMutableRawPointer.allocate(byteCount: workBytes, alignment: 64)
        meter.allocated(workBytes)
        defer { work.deallocate(); meter.freed(workBytes) }
        ck_q8_gemm(level, x, rows, k, packed.assumingMemoryBound(to: Int8.self), scales, offsets, n, y, work)
    }
}
