import CKernels

/// Arithmetic of the CPU backend's `linear`.
public enum CPUPrecision: String, Sendable, CaseIterable {
    /// OpenBLAS SGEMM.
    case fp32
    /// Per-channel int8 weights × per-row int8 activations (quantised on the fly), int32 sums through
    /// AVX2 `vpmaddwd`, dequantised to fp32 before the epilogue. Parity bound: per-token cosine ≥ 0.99 vs fp32.
    case int8

    /// int8 where the CPU has AVX2 (its kernel's instructions), else fp32.
    public static var automatic: CPUPrecision { ck_has_avx2() != 0 ? .int8 : .fp32 }
}

/// A weight matrix quantised and packed for `ck_qgemm`, made once per weight on first use.
final class QuantizedWeight: @unchecked Sendable {
    let packed: UnsafeMutableRawPointer
    let scales: UnsafeMutablePointer<Float>

    init(_ weight: CPUMatrix) {
        let bytes = ck_qweight_size(weight.rows, weight.cols)
        packed = .allocate(byteCount: max(bytes, 32), alignment: 64)
        scales = .allocate(capacity: max(weight.rows, 1))
        ck_qweight_pack(weight.pointer, weight.rows, weight.cols, packed.assumingMemoryBound(to: Int16.self), scales)
    }

    deinit { packed.deallocate(); scales.deallocate() }
}
