import CKernels
import Foundation

/// Checks every body of the exact stage's kernel (`ck_residual_maxsim_sorted`: AVX2, AVX512-VNNI for the token loop,
/// NEON on 64-bit ARM) that this CPU runs against the portable scalar body — document scores equal bit for bit — on adversarial
/// data: int8 query values at ±127, residual levels up to 63 (the int16 pairs of the AVX2 body at their largest),
/// 1-, 2- and 4-bit residuals, dimensions whose group count is odd (20, 36, 44), query lengths that leave a half
/// block of eight (nq_padded 8, 24, 40, 72) or span more than one step of 64, norms stored or derived from the
/// int16 centroid tables, many tokens on one centroid. Used by `colgrep debug cpu-kernels` and by the tests.
public enum SearchKernelCheck {
    private struct Case {
        let dim: Int, nbits: Int, nq: Int, storedNorms: Bool
    }

    private static let shapes: [Case] = {
        var shapes: [Case] = []
        for dim in [20, 36, 44, 48, 64, 128] {
            for nbits in [1, 2, 4] where dim * nbits % 8 == 0 {
                for nq in [1, 7, 8, 9, 16, 23, 32, 40, 65, 80] {
                    for stored in [true, false] { shapes.append(Case(dim: dim, nbits: nbits, nq: nq, storedNorms: stored)) }
                }
            }
        }
        return shapes
    }()

    /// The vector bodies this CPU runs, by instruction set (AVX-512 without VNNI runs the AVX2 body: one entry per body).
    public static var bodies: [String] { vectorSets.map(AssignKernelCheck.name) }

    private static var vectorSets: [Int] {
        [Int(CK_ISA_AVX2), Int(CK_ISA_AVX512_VNNI), Int(CK_ISA_NEON)].filter { ck_search_isa_available(Int32($0)) != 0 }
    }

    /// Every check for every vector body this CPU runs (`sets`: only those, by name).
    public static func run(sets: [String]? = nil, seed: UInt64 = 1) -> [KernelCheck] {
        vectorSets.filter { sets?.contains(AssignKernelCheck.name($0)) ?? true }.map { check(isa: $0, seed: seed) }
    }

    private static func check(isa: Int, seed: UInt64) -> KernelCheck {
        var g = SplitMix64(seed: seed &+ 104_729)
        var failures: [String] = []
        for c in shapes {
            if let difference = compare(c, isa: isa, using: &g), failures.count < 5 {
                failures.append("dim \(c.dim), \(c.nbits) bits, nq \(c.nq), norms \(c.storedNorms ? "stored" : "derived"): \(difference)")
            }
        }
        return KernelCheck(kernel: "residual_maxsim_sorted", isa: AssignKernelCheck.name(isa), reference: "scalar",
                           data: "int8 ±127, levels to 63", cases: shapes.count, failures: failures)
    }

    /// One query and `docs` documents of random tokens, scored by the body of `isa` and by the scalar body.
    private static func compare(_ c: Case, isa: Int, using g: inout SplitMix64) -> String? {
        let k = 24, docs = 5, count = 300
        let dimPadded = (c.dim + 31) / 32 * 32, nqPadded = (c.nq + 7) / 8 * 8, bytes = c.dim * c.nbits / 8
        var q = [Int8](repeating: 0, count: nqPadded * dimPadded)
        for t in 0..<c.nq {
            for d in 0..<c.dim { q[t * dimPadded + d] = Int.random(in: 0..<4, using: &g) == 0 ? (Bool.random(using: &g) ? 127 : -127) : Int8.random(in: -127...127, using: &g) }
        }
        var scale = [Float](repeating: 0, count: nqPadded), offset = scale
        for t in 0..<c.nq {
            scale[t] = Float.random(in: 0.0001...0.01, using: &g)
            offset[t] = Float.random(in: -0.5...0.5, using: &g)
        }
        // Levels as a codec's lookup table holds them: increasing, the first 0, the last 63.
        var lut = [UInt8](repeating: 0, count: 16)
        let levels = 1 << c.nbits
        for i in 0..<levels { lut[i] = UInt8(i * 63 / (levels - 1)) }
        let centroids = (0..<(k * c.dim)).map { _ in Float.random(in: -0.3...0.3, using: &g) }
        let ctable = (0..<(k * nqPadded)).map { _ in Float.random(in: -1...1, using: &g) }
        // Sorted codes (as ck_gather_by_centroid leaves them), a third of the tokens on centroid 0.
        let codes = (0..<count).map { _ in UInt16(Int.random(in: 0..<3, using: &g) == 0 ? 0 : Int.random(in: 0..<k, using: &g)) }.sorted()
        let owners = (0..<count).map { _ in UInt32.random(in: 0..<UInt32(docs), using: &g) }
        let packed = (0..<(count * bytes)).map { _ in Int.random(in: 0..<3, using: &g) == 0 ? UInt8(0xFF) : UInt8.random(in: 0...255, using: &g) }
        let norms = (0..<count).map { _ in Float.random(in: 0.5...1.5, using: &g) }
        var c16 = [Int16](repeating: 0, count: k * dimPadded), cscale = [Float](repeating: 0, count: k), csum = cscale
        ck_exact_centroids_build_scalar(centroids, k, c.dim, dimPadded, &c16, &cscale, &csum)
        var expected = [Float](repeating: 0, count: docs), got = [Float](repeating: .nan, count: docs)
        var best = [Float](repeating: 0, count: docs * nqPadded)
        let pinned = PinnedArrays()
        var query = ck_residual_query(dim: c.dim, dim_padded: dimPadded, nq: c.nq, nq_padded: nqPadded, nbits: c.nbits, q: pinned.pin(q),
                                      scale: pinned.pin(scale), offset: pinned.pin(offset), lut: pinned.pin(lut), a: -0.02, b: 0.0007,
                                      centroids: pinned.pin(centroids), ctable: pinned.pin(ctable))
        var tables = ck_exact_centroids(c16: pinned.pin(c16), scale: pinned.pin(cscale), sum: pinned.pin(csum))
        let inverses: [Float]? = c.storedNorms ? norms : nil
        let accepted = withExtendedLifetime(pinned) {
            ck_residual_maxsim_sorted_scalar(&query, &tables, docs, count, codes, owners, packed, inverses, &best, &expected)
            return ck_residual_maxsim_sorted_with(Int32(isa), &query, &tables, docs, count, codes, owners, packed, inverses, &best, &got)
        }
        if accepted == 0 { return "the body refused to run" }
        guard let i = (0..<docs).first(where: { got[$0].bitPattern != expected[$0].bitPattern }) else { return nil }
        return "document \(i): \(got[i]), scalar \(expected[i])"
    }

    /// Thread CPU ns per document token of the exact stage at 48 dimensions, 4 bits, 32 query tokens, K = 8,192,
    /// 256 documents × 112 tokens in centroid order with stored norms (a query's finalists), for every body this
    /// CPU runs: what the search's largest stage costs.
    public static func timings(repetitions: Int = 10) -> [KernelTiming] {
        let k = 8192, dim = 48, dimPadded = 64, nq = 32, docs = 256, count = docs * 112, bytes = dim / 2
        var g = SplitMix64(seed: 9)
        let q = (0..<(nq * dimPadded)).map { i in i % dimPadded < dim ? Int8.random(in: -127...127, using: &g) : 0 }
        let scale = (0..<nq).map { _ in Float.random(in: 0.0001...0.01, using: &g) }
        let offset = (0..<nq).map { _ in Float.random(in: -0.5...0.5, using: &g) }
        let lut = (0..<16).map { UInt8($0 * 63 / 15) }
        let ctable = (0..<(k * nq)).map { _ in Float.random(in: -1...1, using: &g) }
        let codes = (0..<count).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }.sorted()
        let owners = (0..<count).map { _ in UInt32.random(in: 0..<UInt32(docs), using: &g) }
        let packed = (0..<(count * bytes)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let norms = (0..<count).map { _ in Float.random(in: 0.5...1.5, using: &g) }
        var best = [Float](repeating: 0, count: docs * nq), out = [Float](repeating: 0, count: docs)
        var results: [KernelTiming] = []
        let pinned = PinnedArrays()
        var query = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: nq, nq_padded: nq, nbits: 4, q: pinned.pin(q),
                                      scale: pinned.pin(scale), offset: pinned.pin(offset), lut: pinned.pin(lut), a: -0.02, b: 0.0007,
                                      centroids: nil, ctable: pinned.pin(ctable))
        withExtendedLifetime(pinned) {
            for isa in [Int(CK_ISA_SCALAR)] + vectorSets {
                let seconds = AssignKernelCheck.bestOf(isa == Int(CK_ISA_SCALAR) ? 2 : repetitions) {
                    _ = ck_residual_maxsim_sorted_with(Int32(isa), &query, nil, docs, count, codes, owners, packed, norms, &best, &out)
                }
                results.append(KernelTiming(kernel: "residual_maxsim_sorted (48-d 4-bit, 32 query tokens)", isa: AssignKernelCheck.name(isa),
                                            nanosecondsPerRow: seconds * 1e9 / Double(count)))
            }
        }
        return results
    }
}

/// Copies of arrays at addresses that stay put while the object lives: the C query and centroid structs point at
/// them (nested `withUnsafeBufferPointer` calls, one per array, otherwise).
private final class PinnedArrays {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for block in blocks { block.deallocate() } }

    func pin<T: BitwiseCopyable>(_ values: [T]) -> UnsafePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(1, values.count))
        pointer.initialize(from: values, count: values.count)
        blocks.append(UnsafeMutableRawPointer(pointer))
        return UnsafePointer(pointer)
    }
}
