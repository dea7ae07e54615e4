import CKernels

/// Arithmetic of the CPU backend's `linear`.
public enum CPUPrecision: String, Sendable, CaseIterable {
    /// OpenBLAS SGEMM.
    case fp32
    /// Per-channel int8 weights × per-row int8 activations (quantised on the fly), int32 sums through
    /// AVX2 `vpmaddwd`, dequantised to fp32 before the epilogue. Parity bound: per-token cosine ≥ 0.99 vs fp32.
    case int8

    /// The precision to use when none is asked for. fp32 on every CPU measured so far: with OpenBLAS on
    /// its right kernels, the AVX2 int8 kernel (vpmaddwd, no VNNI) ran no faster (Sapphire Rapids,
    /// 16 threads: 60.6k int8 vs 64.6k fp32 tokens/s; 2 threads: 13.9k vs 14.0k). int8 becomes the
    /// default where a VNNI kernel exists that beats fp32; until then it is opt-in (`--precision int8`).
    public static var automatic: CPUPrecision { .fp32 }
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
