import CKernels
import Dispatch
import Foundation
import Tensor

/// Asymmetric residual MaxSim (the exact stage of search): the query is quantised to int8 per token,
/// documents stay packed (1, 2 or 4 bits per dimension) and are scored by a fused SIMD kernel
/// (`ck_residual_maxsim_docs`) without decompressing to floats.
///
/// A document token is `normalize(c + r)`, `r_d = a + b·u_d` with `u_d` a small integer level of its
/// bucket: exact for 1-bit codes (`u ∈ {0, 1}`, `a = w₀`, `b = w₁ − w₀`), and for 2- and 4-bit codes the
/// bucket weights rounded to 64 evenly spaced levels between the smallest and largest (an error of at
/// most 1/126 of the weights' range, far below the quantisation itself). Then
/// `q·(c + r) = q·c + a·Σq + b·Σ q_d u_d`, where `q·c` comes from the query × centroid table and the last
/// sum runs in int8 × u8 arithmetic.
struct ResidualScorer {
    let dim: Int
    let dimPadded: Int
    let nq: Int
    let nqPadded: Int
    let nbits: Int
    let a: Float
    let b: Float
    /// 16 bytes, the first `2^nbits` used.
    let levels: [UInt8]
    /// `nqPadded × dimPadded` int8 query.
    let quantized: [Int8]
    /// Per query token: `b · s_q` (padding rows 0).
    let scales: [Float]
    /// Per query token: `a · Σ_d q_d` (padding rows 0).
    let offsets: [Float]

    /// Levels (`lut`), `a` and `b` for a codec's bucket weights.
    static func levels(weights: [Float], nbits: Int) -> (levels: [UInt8], a: Float, b: Float) {
        var lut = [UInt8](repeating: 0, count: 16)
        if nbits == 1 {
            lut[1] = 1
            return (lut, weights[0], weights[1] - weights[0])
        }
        let low = weights.min() ?? 0, high = weights.max() ?? 0
        guard high > low else { return (lut, low, 0) }
        let step = (high - low) / 63
        for (i, w) in weights.enumerated() { lut[i] = UInt8(min(63, max(0, ((w - low) / step).rounded()))) }
        return (lut, low, step)
    }

    /// `query`: `nq × dim` row-major float (rows beyond `nq` up to `nqPadded` are ignored).
    init(codec: ResidualCodec, query: UnsafePointer<Float>, nq: Int, nqPadded: Int) {
        dim = codec.dim
        dimPadded = (dim + 31) / 32 * 32
        self.nq = nq
        self.nqPadded = nqPadded
        nbits = codec.nbits
        (levels, a, b) = Self.levels(weights: codec.weights, nbits: nbits)
        var quantized = [Int8](repeating: 0, count: nqPadded * dimPadded)
        var scales = [Float](repeating: 0, count: nqPadded)
        var offsets = [Float](repeating: 0, count: nqPadded)
        for q in 0..<nq {
            let row = query + q * dim
            var largest: Float = 0
            var sum: Float = 0
            for d in 0..<dim {
                largest = max(largest, abs(row[d]))
                sum += row[d]
            }
            offsets[q] = a * sum
            guard largest > 0 else { continue }
            let s = largest / 127
            scales[q] = b * s
            for d in 0..<dim { quantized[q * dimPadded + d] = Int8(max(-127, min(127, (row[d] / s).rounded()))) }
        }
        self.quantized = quantized
        self.scales = scales
        self.offsets = offsets
    }

    /// Calls `body` with the kernel's view of this query over `centroids` and the `K × nqPadded` table.
    func withKernelQuery<R>(centroids: UnsafePointer<Float>, table: UnsafePointer<Float>,
                            _ body: (UnsafePointer<ck_residual_query>) -> R) -> R {
        quantized.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { o in
                    levels.withUnsafeBufferPointer { l in
                        var kernel = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: nq, nq_padded: nqPadded, nbits: nbits,
                                                       q: q.baseAddress, scale: s.baseAddress, offset: o.baseAddress,
                                                       lut: l.baseAddress, a: a, b: b, centroids: centroids, ctable: table)
                        return withUnsafePointer(to: &kernel) { body($0) }
                    }
                }
            }
        }
    }
}

/// The query × centroid table quantised to u8 for the centroid-only stage (`ck_quantize_scores_u8`):
/// one row of `width` bytes (query tokens, padded to 32 with zeros) per centroid. The per-query-token
/// maxima are summed in integers; the map is the same for every entry, so the ranking matches the float
/// sums up to rounding (this stage only picks candidates for exact scoring).
struct QuantizedCentroidTable {
    let width: Int
    let bytes: [UInt8]

    init(scores: [Float], centroids k: Int, nq: Int, stride: Int) {
        let width = (nq + 31) / 32 * 32
        self.width = width
        bytes = [UInt8](unsafeUninitializedCapacity: k * width) { buffer, count in
            scores.withUnsafeBufferPointer { s in
                ck_quantize_scores_u8(s.baseAddress!, k, nq, stride, buffer.baseAddress!, width)
            }
            count = k * width
        }
    }
}

/// The codec's centroids in the form the exact stage reads (`ck_exact_centroids`): int16 rows, their
/// scales and float sums. Built from the centroids once per codec, not per query (K × dim values).
final class ExactCentroids: @unchecked Sendable {
    let dimPadded: Int
    let rows: [Int16]
    let scales: [Float]
    let sums: [Float]

    init(codec: ResidualCodec) {
        let k = codec.centroidCount, dim = codec.dim, dimPadded = (dim + 31) / 32 * 32
        self.dimPadded = dimPadded
        var rows = [Int16](repeating: 0, count: k * dimPadded)
        var scales = [Float](repeating: 0, count: k)
        var sums = [Float](repeating: 0, count: k)
        codec.centroids.withUnsafeBufferPointer { c in
            ck_exact_centroids_build(c.baseAddress!, k, dim, dimPadded, &rows, &scales, &sums)
        }
        self.rows = rows
        self.scales = scales
        self.sums = sums
    }

    /// Calls `body` with the kernel's view of these tables.
    func withKernelCentroids<R>(_ body: (UnsafePointer<ck_exact_centroids>) -> R) -> R {
        rows.withUnsafeBufferPointer { r in
            scales.withUnsafeBufferPointer { s in
                sums.withUnsafeBufferPointer { m in
                    var tables = ck_exact_centroids(c16: r.baseAddress, scale: s.baseAddress, sum: m.baseAddress)
                    return withUnsafePointer(to: &tables) { body($0) }
                }
            }
        }
    }
}

/// An index's `ExactCentroids`, built on first use and rebuilt when the codec changes (a retrained
/// codec is a new codec file). Thread-safe.
final class ExactCentroidCache: @unchecked Sendable {
    private let lock = NSLock()
    private var key: String?
    private var tables: ExactCentroids?

    /// The tables of `codec`, whose file is named `codecName`.
    func tables(for codec: ResidualCodec, codecName: String) -> ExactCentroids {
        lock.lock()
        defer { lock.unlock() }
        if let tables, key == codecName { return tables }
        let built = ExactCentroids(codec: codec)
        tables = built
        key = codecName
        return built
    }
}
