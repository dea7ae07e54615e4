import CKernels
import Foundation

/// One kernel body at one instruction set, compared with a reference body on the same inputs.
public struct KernelCheck: Sendable {
    /// The kernel (`assign_top8`, `assign_best2_i16`, …).
    public let kernel: String
    /// The instruction set of the body under test (`avx2`, `avx512`, `avx512-vnni`).
    public let isa: String
    /// The body it was compared with (`scalar`, or `avx2` where float rounding differs from the scalar body).
    public let reference: String
    /// The data it ran on (`integer ties`, `float`, …).
    public let data: String
    /// Input shapes compared.
    public let cases: Int
    /// The first few differences found (empty: the outputs were equal bit for bit in every case).
    public let failures: [String]

    public var passed: Bool { failures.isEmpty }
}

/// A body's speed on one fixed workload (informative, never asserted).
public struct KernelTiming: Sendable {
    public let kernel: String
    public let isa: String
    /// Thread CPU nanoseconds per row (best of a few repetitions).
    public let nanosecondsPerRow: Double
}

/// Checks every body of the assignment kernels (assign.c, assign512.c) that this CPU runs against the portable
/// scalar body — outputs equal bit for bit, on random data and on adversarial data: small integers (exact scores,
/// many exact ties), duplicated centroids, rows that copy a centroid, a NaN row, row counts and column counts that
/// are not multiples of the 16-row or 8-column tiles, dimensions 8 to 384. Float kernels whose rounding differs from
/// the scalar body (fused multiply-adds) are compared with it on integer data, where every score is exact, and with
/// the AVX2 body (whose codes the index stores everywhere) on float data. Used by `colgrep debug cpu-kernels` and by
/// the tests; the instruction sets the CPU lacks are listed as skipped.
public enum AssignKernelCheck {
    /// Names of the instruction sets this CPU runs, lowest first (`scalar` always).
    public static var supportedSets: [String] { (0...Int(ck_assign_isa_supported())).map(name) }
    /// The set the build uses now (the CPU's best unless `COLGREP_ASSIGN_ISA` lowers it).
    public static var activeSet: String { name(Int(ck_assign_isa())) }
    /// Sets above this CPU's, with the reason they are not checked.
    public static var skippedSets: [(isa: String, reason: String)] {
        let best = Int(ck_assign_isa_supported())
        return stride(from: best + 1, through: Int(CK_ISA_AVX512_VNNI), by: 1).map { (name($0), "this CPU lacks " + requirement($0)) }
    }

    static func name(_ isa: Int) -> String { String(cString: ck_assign_isa_name(Int32(isa))) }

    private static func requirement(_ isa: Int) -> String {
        switch isa {
        case Int(CK_ISA_AVX2): return "AVX2 + FMA"
        case Int(CK_ISA_AVX512): return "AVX-512 F/BW/VL/DQ"
        default: return "AVX512-VNNI"
        }
    }

    /// Every check for every set above scalar that this CPU runs (`sets`: only those, by name).
    public static func run(sets: [String]? = nil, seed: UInt64 = 1) -> [KernelCheck] {
        let best = Int(ck_assign_isa_supported())
        guard best >= Int(CK_ISA_AVX2) else { return [] }
        var results: [KernelCheck] = []
        for isa in Int(CK_ISA_AVX2)...best where sets?.contains(name(isa)) ?? true {
            results += checks(isa: isa, seed: seed)
        }
        return results
    }

    // MARK: - cases

    private struct Case {
        let dim: Int, k: Int, rows: Int
    }

    private static let shapes: [Case] = {
        var shapes: [Case] = []
        for dim in [8, 48, 64, 130, 384] {
            for k in [8, 9, 13, 64, 131] {
                for rows in [1, 15, 17, 37, 100] { shapes.append(Case(dim: dim, k: k, rows: rows)) }
            }
        }
        return shapes
    }()

    /// Rows and centroids of one case: small integers (exact scores, ties everywhere) or uniform floats; centroid 3
    /// copies centroid 1, row 2 copies the last centroid, row 4 copies row 0; `nan` puts a NaN in row 1 (float only).
    private static func data(_ c: Case, integer: Bool, nan: Bool, using g: inout SplitMix64) -> (x: [Float], centroids: [Float]) {
        func value() -> Float { integer ? Float(Int.random(in: -2...2, using: &g)) : Float.random(in: -1...1, using: &g) }
        var x = (0..<(c.rows * c.dim)).map { _ in value() }
        var centroids = (0..<(c.k * c.dim)).map { _ in value() }
        if c.k > 3 { for d in 0..<c.dim { centroids[3 * c.dim + d] = centroids[c.dim + d] } }
        if c.rows > 2 { for d in 0..<c.dim { x[2 * c.dim + d] = centroids[(c.k - 1) * c.dim + d] } }
        if c.rows > 4 { for d in 0..<c.dim { x[4 * c.dim + d] = x[d] } }
        if nan && c.rows > 1 { x[c.dim + c.dim / 2] = .nan }
        return (x, centroids)
    }

    private static func checks(isa: Int, seed: UInt64) -> [KernelCheck] {
        let scalar = Int(CK_ISA_SCALAR), avx2 = Int(CK_ISA_AVX2)
        var results: [KernelCheck] = []
        // Float kernels: exact against scalar on integers; against AVX2 on floats (NaN row included).
        for (kernel, compare) in [("assign_top8", topCase(top: 8)), ("assign_top (top 1, 5, 16)", topCase(top: nil)), ("assign_best", bestCase)] {
            results.append(run(kernel, isa: isa, reference: scalar, data: "integer ties", integer: true, nan: false, seed: seed, compare))
            if isa > avx2 {
                results.append(run(kernel, isa: isa, reference: avx2, data: "float + NaN row", integer: false, nan: true, seed: seed, compare))
            }
        }
        // The int16 pass is exact integer arithmetic then one fused multiply-add: equal to scalar on any data.
        results.append(run("assign_best2_i16", isa: isa, reference: scalar, data: "integer ties", integer: true, nan: false, seed: seed, best2Case))
        results.append(run("assign_best2_i16", isa: isa, reference: scalar, data: "float", integer: false, nan: false, seed: seed, best2Case))
        // Residual codes are compares of exact differences: equal to scalar on any data, a NaN row included.
        results.append(run("residual_encode (1, 2, 4 bits)", isa: isa, reference: scalar, data: "float + NaN row", integer: false, nan: true, seed: seed,
                           residualCase))
        results.append(run("residual_encode (1, 2, 4 bits)", isa: isa, reference: scalar, data: "integer ties", integer: true, nan: false, seed: seed,
                           residualCase))
        // Row quantisation: AVX2 and AVX-512 bodies (the latter for dims that are multiples of 16), equal to scalar.
        if isa == avx2 || isa == Int(CK_ISA_AVX512) {
            results.append(run("quantize_rows16", isa: isa, reference: scalar, data: "float", integer: false, nan: false, seed: seed, quantizeCase))
        }
        if isa == avx2 {
            // A body that exists in AVX2 only (higher sets run it too, so one check covers them).
            results.append(run("assign_rescore", isa: isa, reference: scalar, data: "integer ties", integer: true, nan: false, seed: seed, rescoreCase))
        }
        return results
    }

    /// Runs `compare` over every shape; it returns a description of the first difference, or nil.
    private static func run(_ kernel: String, isa: Int, reference: Int, data kind: String, integer: Bool, nan: Bool, seed: UInt64,
                            _ compare: (Case, [Float], [Float], Int, Int) -> String?) -> KernelCheck {
        var g = SplitMix64(seed: seed &+ UInt64(kernel.utf8.count) &* 7919 &+ (integer ? 1 : 0))
        var failures: [String] = []
        for c in shapes {
            let (x, centroids) = data(c, integer: integer, nan: nan, using: &g)
            if let difference = compare(c, x, centroids, isa, reference), failures.count < 5 {
                failures.append("dim \(c.dim), k \(c.k), rows \(c.rows): \(difference)")
            }
        }
        return KernelCheck(kernel: kernel, isa: name(isa), reference: name(reference), data: kind, cases: shapes.count, failures: failures)
    }

    private static func packed(_ centroids: [Float], dim: Int, k: Int) -> (panels: [Float], bias: [Float]) {
        var panels = [Float](repeating: 0, count: max(1, ck_assign_packed_floats(k, dim)))
        var bias = [Float](repeating: 0, count: (k + 15) / 16 * 16)
        ck_assign_pack(centroids, dim, nil, k, 1, &panels, &bias)
        return (panels, bias)
    }

    private static func firstDifference<T: Equatable>(_ a: [T], _ b: [T], what: String) -> String? {
        guard let i = a.indices.first(where: { $0 < b.count && a[$0] != b[$0] }) else { return a.count == b.count ? nil : "\(what): lengths differ" }
        return "\(what)[\(i)] = \(a[i]), reference \(b[i])"
    }

    private static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    private static func topCase(top: Int?) -> (Case, [Float], [Float], Int, Int) -> String? {
        { c, x, centroids, isa, reference in
            let (panels, bias) = packed(centroids, dim: c.dim, k: c.k)
            for t in top.map({ [$0] }) ?? [1, 5, 16] {
                let width = min(t, c.k)
                var out = [Int32](repeating: -7, count: c.rows * width), expected = out
                guard ck_assign_top_with(Int32(isa), x, c.dim, c.rows, panels, bias, c.k, t, &out) == 1,
                      ck_assign_top_with(Int32(reference), x, c.dim, c.rows, panels, bias, c.k, t, &expected) == 1 else { return "not run" }
                if let d = firstDifference(out, expected, what: "top \(t) list") { return d }
            }
            return nil
        }
    }

    private static func bestCase(_ c: Case, _ x: [Float], _ centroids: [Float], _ isa: Int, _ reference: Int) -> String? {
        let (panels, bias) = packed(centroids, dim: c.dim, k: c.k)
        // Rows visited through an index list in a scrambled order, as the fine step visits a group's rows.
        let rows = (0..<c.rows).map { Int32(($0 * 7 + 3) % c.rows) }
        var index = [Int32](repeating: -7, count: c.rows), score = [Float](repeating: 0, count: c.rows)
        var expectedIndex = index, expectedScore = score
        guard ck_assign_best_with(Int32(isa), x, c.dim, rows, c.rows, panels, bias, c.k, &index, &score) == 1,
              ck_assign_best_with(Int32(reference), x, c.dim, rows, c.rows, panels, bias, c.k, &expectedIndex, &expectedScore) == 1 else { return "not run" }
        return firstDifference(index, expectedIndex, what: "index") ?? firstDifference(bits(score), bits(expectedScore), what: "score bits")
    }

    /// Two groups (halves of a scrambled member list) merged into each row's best two, rows in a scrambled order.
    private static func best2Case(_ c: Case, _ x: [Float], _ centroids: [Float], _ isa: Int, _ reference: Int) -> String? {
        guard c.dim % 2 == 0, c.k >= 2 else { return nil }
        let members = (0..<c.k).map { Int32(($0 * 5 + 3) % c.k) }
        let rows = (0..<c.rows).map { Int32(($0 * 7 + 3) % c.rows) }
        var q = [Int16](repeating: 0, count: c.rows * c.dim), scale = [Float](repeating: 0, count: c.rows)
        ck_assign_quantize_rows16(x, c.dim, c.rows, &q, &scale)
        var index = [Int32](repeating: -1, count: 2 * c.rows), score = [Float](repeating: -.infinity, count: 2 * c.rows)
        var expectedIndex = index, expectedScore = score
        let half = c.k / 2
        for (start, count) in [(0, half), (half, c.k - half)] {
            var panels = [Int16](repeating: 0, count: max(1, ck_assign_packed16_count(count, c.dim)))
            var bias = [Float](repeating: 0, count: (count + 15) / 16 * 16)
            let groupMembers = Array(members[start..<(start + count)])
            let cscale = ck_assign_pack16(centroids, c.dim, groupMembers, count, &panels, &bias)
            guard ck_assign_best2_i16_with(Int32(isa), q, scale, c.dim, rows, c.rows, panels, bias, cscale, count, groupMembers,
                                           &index, &score) == 1,
                  ck_assign_best2_i16_with(Int32(reference), q, scale, c.dim, rows, c.rows, panels, bias, cscale, count, groupMembers,
                                           &expectedIndex, &expectedScore) == 1 else { return "not run" }
        }
        return firstDifference(index, expectedIndex, what: "best-two index") ?? firstDifference(bits(score), bits(expectedScore), what: "best-two score bits")
    }

    private static func quantizeCase(_ c: Case, _ x: [Float], _ centroids: [Float], _ isa: Int, _ reference: Int) -> String? {
        var q = [Int16](repeating: 0, count: c.rows * c.dim), scale = [Float](repeating: 0, count: c.rows)
        var expectedQ = q, expectedScale = scale
        guard ck_assign_quantize_rows16_with(Int32(isa), x, c.dim, c.rows, &q, &scale) == 1,
              ck_assign_quantize_rows16_with(Int32(reference), x, c.dim, c.rows, &expectedQ, &expectedScale) == 1 else { return "not run" }
        return firstDifference(q, expectedQ, what: "int16") ?? firstDifference(bits(scale), bits(expectedScale), what: "scale bits")
    }

    private static func rescoreCase(_ c: Case, _ x: [Float], _ centroids: [Float], _ isa: Int, _ reference: Int) -> String? {
        // Candidate pairs that include equal centroids (1 and 3), a missing second (−1) and a pair of one centroid twice.
        let candidates = (0..<c.rows).flatMap { r -> [Int32] in
            switch r % 4 {
            case 0: return [Int32(min(3, c.k - 1)), 1]
            case 1: return [Int32(r % c.k), -1]
            case 2: return [Int32((r * 3) % c.k), Int32((r * 3) % c.k)]
            default: return [Int32((r * 5) % c.k), Int32((r * 11 + 1) % c.k)]
            }
        }
        let bias = (0..<c.k).map { j in -0.5 * (0..<c.dim).reduce(Float(0)) { $0 + centroids[j * c.dim + $1] * centroids[j * c.dim + $1] } }
        var out = [Int32](repeating: -7, count: c.rows), expected = out
        guard ck_assign_rescore_with(Int32(isa), x, c.dim, c.rows, candidates, centroids, bias, &out) == 1,
              ck_assign_rescore_with(Int32(reference), x, c.dim, c.rows, candidates, centroids, bias, &expected) == 1 else { return "not run" }
        return firstDifference(out, expected, what: "winner")
    }

    private static func residualCase(_ c: Case, _ x: [Float], _ centroids: [Float], _ isa: Int, _ reference: Int) -> String? {
        guard c.dim % 8 == 0 else { return nil }  // whole bytes per vector at every width (the kernels' contract)
        let codes = (0..<c.rows).map { UInt16(($0 * 13) % c.k) }
        for nbits in [1, 2, 4] {
            // Cutoffs that coincide with some residuals exactly (integer steps) and quantiles of a spread.
            // Increasing cutoffs on integers and quarters (integer data's residuals land on them), one repeated.
            var cutoffs = (1..<(1 << nbits)).map { Float($0 - (1 << (nbits - 1))) * 0.5 }
            if cutoffs.count > 4 { cutoffs[4] = cutoffs[3] }
            let bytes = c.dim * nbits / 8
            var out = [UInt8](repeating: 0xAA, count: c.rows * bytes), expected = out
            guard ck_residual_encode_with(Int32(isa), x, c.dim, c.rows, centroids, codes, cutoffs, nbits, &out) == 1,
                  ck_residual_encode_with(Int32(reference), x, c.dim, c.rows, centroids, codes, cutoffs, nbits, &expected) == 1 else { return "not run" }
            if let d = firstDifference(out, expected, what: "\(nbits)-bit code byte") { return d }
        }
        return nil
    }

    // MARK: - timing

    /// Thread CPU ns per row of the group step (top 8 of 128 centres) and of the int16 fine step (one group of 64
    /// centroids) at 48 dimensions, 4,096 rows, for every set this CPU runs: what the build's two hot kernels cost.
    public static func timings(dim: Int = 48, rows: Int = 4096, repetitions: Int = 5) -> [KernelTiming] {
        var g = SplitMix64(seed: 5)
        let x = (0..<(rows * dim)).map { _ in Float.random(in: -1...1, using: &g) }
        let centres = (0..<(128 * dim)).map { _ in Float.random(in: -1...1, using: &g) }
        let (panels, bias) = packed(centres, dim: dim, k: 128)
        var q = [Int16](repeating: 0, count: rows * dim), scale = [Float](repeating: 0, count: rows)
        ck_assign_quantize_rows16(x, dim, rows, &q, &scale)
        let members = (0..<64).map(Int32.init)
        var panels16 = [Int16](repeating: 0, count: ck_assign_packed16_count(64, dim)), bias16 = [Float](repeating: 0, count: 64)
        let cscale = ck_assign_pack16(centres, dim, members, 64, &panels16, &bias16)
        var out = [Int32](repeating: 0, count: rows * 8)
        var index = [Int32](repeating: -1, count: 2 * rows), score = [Float](repeating: -.infinity, count: 2 * rows)
        var results: [KernelTiming] = []
        for isa in 0...Int(ck_assign_isa_supported()) {
            let top = bestOf(repetitions) { _ = ck_assign_top_with(Int32(isa), x, dim, rows, panels, bias, 128, 8, &out) }
            results.append(KernelTiming(kernel: "assign_top8 (128 centres)", isa: name(isa), nanosecondsPerRow: top * 1e9 / Double(rows)))
            let fine = bestOf(repetitions) {
                _ = ck_assign_best2_i16_with(Int32(isa), q, scale, dim, nil, rows, panels16, bias16, cscale, 64, members, &index, &score)
            }
            results.append(KernelTiming(kernel: "assign_best2_i16 (64 centroids)", isa: name(isa), nanosecondsPerRow: fine * 1e9 / Double(rows)))
        }
        return results
    }

    static func bestOf(_ repetitions: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let start = threadCPUSeconds()
            body()
            best = min(best, threadCPUSeconds() - start)
        }
        return best
    }

    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
