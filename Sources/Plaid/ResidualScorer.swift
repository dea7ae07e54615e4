import CKernels
import Dispatch
import Foundation
import Tensor

/// Asymmetric residual MaxSim (the exact stage of search): the query is quantised to int8 per token,
/// documents stay packed (1, 2 or 4 bits per dimension) and are scored by a fused SIMD kernel
/// (`ck_residual_maxsim_sorted`) without decompressing to floats. 8-bit codecs take the int16 path instead
/// (`ck_residual8_maxsim`, see `WideLevels`): their buckets are far narrower than 64 levels can tell apart.
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
    /// 8-bit codecs only: the `nqPadded × dim` int16 query and the 256 int16 bucket levels (empty otherwise).
    let quantized16: [Int16]
    let levels16: [Int16]

    /// Int16 levels of an 8-bit codec: `r = a + b·v`, v on an even grid of `2L + 1` steps spanning the
    /// bucket weights, with `L² · dim < 2³¹` so the kernel's int32 sums (Σ q·v with |q| ≤ L, Σ v²) cannot
    /// overflow: L = 2047 up to 512 dimensions (a step of 1/4094 of the weights' range, about 50× finer than
    /// the narrowest 8-bit bucket of Gaussian-like residuals), less beyond.
    enum WideLevels {
        static func range(dim: Int) -> Int { max(1, min(2047, Int((Double(Int32.max) / Double(max(1, dim))).squareRoot()))) }

        static func levels(weights: [Float], dim: Int) -> (levels: [Int16], a: Float, b: Float) {
            let low = weights.min() ?? 0, high = weights.max() ?? 0
            let a = (low + high) / 2
            guard high > low else { return ([Int16](repeating: 0, count: weights.count), a, 0) }
            let limit = Float(range(dim: dim))
            let b = (high - low) / (2 * limit)
            return (weights.map { Int16(max(-limit, min(limit, (($0 - a) / b).rounded()))) }, a, b)
        }
    }

    /// Symmetric per-token quantisation of the query: each row scaled so its largest |value| is `limit`,
    /// levels `round(q / s)` handed to `store(row, dimension, level)`; returns per row `b·s` (the scale of
    /// Σ q·u) and `a·Σ q` (the constant part of every residual's contribution). Rows of zeros keep 0.
    private static func quantizeRows(_ query: UnsafePointer<Float>, nq: Int, nqPadded: Int, dim: Int, limit: Float, a: Float, b: Float,
                                     store: (Int, Int, Float) -> Void) -> (scales: [Float], offsets: [Float]) {
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
            let s = largest / limit
            scales[q] = b * s
            for d in 0..<dim { store(q, d, max(-limit, min(limit, (row[d] / s).rounded()))) }
        }
        return (scales, offsets)
    }

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
        guard nbits != 8 else {
            let wide = WideLevels.levels(weights: codec.weights, dim: dim)
            (levels16, a, b) = wide
            levels = []
            quantized = []
            let limit = Float(WideLevels.range(dim: dim))
            let width = dim
            var query16 = [Int16](repeating: 0, count: nqPadded * width)
            let rows = Self.quantizeRows(query, nq: nq, nqPadded: nqPadded, dim: width, limit: limit, a: wide.a, b: wide.b) { q, d, level in
                query16[q * width + d] = Int16(level)
            }
            (scales, offsets) = rows
            quantized16 = query16
            return
        }
        quantized16 = []
        levels16 = []
        (levels, a, b) = Self.levels(weights: codec.weights, nbits: nbits)
        var quantized = [Int8](repeating: 0, count: nqPadded * dimPadded)
        let stride = dimPadded
        let rows = Self.quantizeRows(query, nq: nq, nqPadded: nqPadded, dim: dim, limit: 127, a: a, b: b) { q, d, level in
            quantized[q * stride + d] = Int8(level)
        }
        (scales, offsets) = rows
        self.quantized = quantized
    }

    /// Calls `body` with the kernel's view of this query over `centroids` and the `K × nqPadded` table.
    /// For an 8-bit codec the pointer is the `base` of a `ck_residual8_query` (its first member), which
    /// `ck_residual_maxsim_sorted` hands to the 8-bit kernel.
    func withKernelQuery<R>(centroids: UnsafePointer<Float>, table: UnsafePointer<Float>,
                            _ body: (UnsafePointer<ck_residual_query>) -> R) -> R {
        if nbits == 8 {
            return withWideKernelQuery(centroids: centroids, table: table) { wide in
                body(UnsafeRawPointer(wide).assumingMemoryBound(to: ck_residual_query.self))
            }
        }
        return quantized.withUnsafeBufferPointer { q in
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

extension ResidualScorer {
    /// Calls `body` with the 8-bit kernel's view of this query (8-bit codecs only).
    func withWideKernelQuery<R>(centroids: UnsafePointer<Float>, table: UnsafePointer<Float>,
                                _ body: (UnsafePointer<ck_residual8_query>) -> R) -> R {
        precondition(nbits == 8, "the int16 query exists for 8-bit codecs only")
        return quantized16.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { o in
                    levels16.withUnsafeBufferPointer { l in
                        let base = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: nq, nq_padded: nqPadded, nbits: 8,
                                                     q: nil, scale: s.baseAddress, offset: o.baseAddress, lut: nil, a: a, b: b,
                                                     centroids: centroids, ctable: table)
                        var kernel = ck_residual8_query(base: base, q16: q.baseAddress, q_stride: dim, levels: l.baseAddress)
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
    /// `K × width` bytes (from `scratch` when one is given: hand them back after use).
    var bytes: [UInt8]

    init(scores: [Float], centroids k: Int, nq: Int, stride: Int, scratch: SearchScratch? = nil) {
        let width = (nq + 31) / 32 * 32
        self.width = width
        // Every byte is written by the quantisation.
        bytes = scratch?.bytes(k * width) ?? [UInt8](repeating: 0, count: k * width)
        scores.withUnsafeBufferPointer { s in
            bytes.withUnsafeMutableBufferPointer { b in
                ck_quantize_scores_u8(s.baseAddress!, k, nq, stride, b.baseAddress!, width)
            }
        }
    }
}

/// The codec's centroids in the form the token norms are derived from (`ck_exact_centroids`): int16 rows,
/// their scales and float sums. Since format 2 the encoder computes each token's `1/‖c + r‖` from them
/// (`TokenInverseNorms`) and the segments store it, so a search no longer reads them. Built from the
/// centroids once per codec (K × dim values) and stored in the codec file beside the centroids
/// (`PlaidIndex.writeCodec`), so that an update maps them instead of building them (~7 ms of CPU per
/// process at K = 8,192, 384-d, with the page faults of 6 MB of fresh memory).
final class ExactCentroids: @unchecked Sendable {
    /// The layout and derivation of the stored tables; a codec file holding another version is read
    /// without them (they are built in memory). Bump whenever `ck_exact_centroids_build` changes.
    static let layoutVersion: UInt32 = 1

    let dimPadded: Int
    let rows: UnsafeBufferPointer<Int16>
    let scales: UnsafeBufferPointer<Float>
    let sums: UnsafeBufferPointer<Float>
    /// What keeps mapped tables alive (the codec file's mapping); nil for tables allocated here.
    private let owner: AnyObject?

    init(codec: ResidualCodec) {
        let k = codec.centroidCount, dim = codec.dim, dimPadded = Self.paddedDimension(dim)
        self.dimPadded = dimPadded
        let rows = UnsafeMutableBufferPointer<Int16>.allocate(capacity: k * dimPadded)
        let scales = UnsafeMutableBufferPointer<Float>.allocate(capacity: k)
        let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: k)
        rows.initialize(repeating: 0)
        scales.initialize(repeating: 0)
        sums.initialize(repeating: 0)
        codec.centroids.withUnsafeBufferPointer { c in
            ck_exact_centroids_build(c.baseAddress!, k, dim, dimPadded, rows.baseAddress!, scales.baseAddress!, sums.baseAddress!)
        }
        self.rows = UnsafeBufferPointer(rows)
        self.scales = UnsafeBufferPointer(scales)
        self.sums = UnsafeBufferPointer(sums)
        owner = nil
    }

    private init(dimPadded: Int, rows: UnsafeBufferPointer<Int16>, scales: UnsafeBufferPointer<Float>, sums: UnsafeBufferPointer<Float>,
                 owner: AnyObject) {
        self.dimPadded = dimPadded
        self.rows = rows
        self.scales = scales
        self.sums = sums
        self.owner = owner
    }

    deinit {
        guard owner == nil else { return }
        UnsafeMutableBufferPointer(mutating: rows).deallocate()
        UnsafeMutableBufferPointer(mutating: scales).deallocate()
        UnsafeMutableBufferPointer(mutating: sums).deallocate()
    }

    static func paddedDimension(_ dim: Int) -> Int { (dim + 31) / 32 * 32 }

    /// The stored form: a header section (layout version, padded dimension, K, 0 as u32) and the rows,
    /// scales and sums.
    func sections(centroidCount k: Int) -> [Data] {
        var header = Data()
        for value in [Self.layoutVersion, UInt32(dimPadded), UInt32(k), 0] { IndexFiles.appendInteger(&header, value) }
        return [header, Data(buffer: rows), Data(buffer: scales), Data(buffer: sums)]
    }

    /// Tables stored by `sections(centroidCount:)`, viewed in place; nil when they are of another layout
    /// version, another shape than `k × dim` calls for, or truncated (then they are built in memory).
    static func mapped(_ sections: ArraySlice<UnsafeRawBufferPointer>, centroidCount k: Int, dim: Int, owner: AnyObject) -> ExactCentroids? {
        guard sections.count == 4 else { return nil }
        let parts = Array(sections)
        let dimPadded = paddedDimension(dim)
        guard parts[0].count == 16, let header = parts[0].baseAddress else { return nil }
        func field(_ i: Int) -> UInt32 { header.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian }
        guard field(0) == layoutVersion, Int(field(1)) == dimPadded, Int(field(2)) == k,
              parts[1].count == k * dimPadded * 2, parts[2].count == k * 4, parts[3].count == k * 4,
              let rows = parts[1].baseAddress, let scales = parts[2].baseAddress, let sums = parts[3].baseAddress else { return nil }
        return ExactCentroids(dimPadded: dimPadded, rows: UnsafeBufferPointer(start: rows.assumingMemoryBound(to: Int16.self), count: k * dimPadded),
                              scales: UnsafeBufferPointer(start: scales.assumingMemoryBound(to: Float.self), count: k),
                              sums: UnsafeBufferPointer(start: sums.assumingMemoryBound(to: Float.self), count: k), owner: owner)
    }

    /// Calls `body` with the kernel's view of `tables`, or of no tables (null pointers: for the 8-bit
    /// kernel, which does not read them).
    static func withKernelCentroids<R>(_ tables: ExactCentroids?, _ body: (UnsafePointer<ck_exact_centroids>) -> R) -> R {
        guard let tables else {
            var none = ck_exact_centroids(c16: nil, scale: nil, sum: nil)
            return withUnsafePointer(to: &none) { body($0) }
        }
        return tables.withKernelCentroids(body)
    }

    /// Calls `body` with the kernel's view of these tables.
    func withKernelCentroids<R>(_ body: (UnsafePointer<ck_exact_centroids>) -> R) -> R {
        var tables = ck_exact_centroids(c16: rows.baseAddress, scale: scales.baseAddress, sum: sums.baseAddress)
        return withExtendedLifetime(self) { withUnsafePointer(to: &tables) { body($0) } }
    }
}
