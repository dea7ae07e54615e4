import CKernels
import Foundation
import Testing

@testable import Plaid

/// The int16 first pass of coarse-to-fine assignment (`ck_assign_best2_i16`) and its float re-score
/// (`ck_assign_rescore`): the codes equal the float kernel's except for ties, and the re-score is what makes
/// them so.
@Suite struct Int16AssignmentTests {
    /// Exact x·c − ½‖c‖² in double precision (exact for small integers).
    private func score(_ x: ArraySlice<Float>, _ c: ArraySlice<Float>) -> Double {
        zip(x, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } - 0.5 * c.reduce(0.0) { $0 + Double($1) * Double($1) }
    }

    private func codes(_ assigner: CentroidAssigner, _ points: [Float], dim: Int) -> [UInt32] {
        points.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: points.count / dim, backend: nil) }
    }

    /// Small-integer data (every float score exact, many exactly tied) with duplicated centroids in other
    /// groups: the int16 assigner's code is the float assigner's for nearly every row, and where it is not, the
    /// two centroids score exactly the same (a tie the float kernel gave to a smaller index that the two
    /// candidates did not hold); duplicated centroids' ties go to the smaller index as in float. One row up
    /// to more than one chunk. An assigner that packs on demand (small writes) keeps the float step.
    @Test func int16CodesEqualTheFloatKernelsUpToExactTies() throws {
        try #require(CentroidAssigner.int16Available(dim: 48))
        var g = SplitMix64(seed: 91)
        let dim = 48, k = 256
        var centroids = (0..<(k * dim)).map { _ in Float(Int.random(in: -3...3, using: &g)) }
        for j in stride(from: 0, to: k, by: 9) {
            let source = (j * 5 + 7) % k
            for d in 0..<dim { centroids[j * dim + d] = centroids[source * dim + d] }
        }
        let groups = try #require(KMeans.group(centroids: centroids, dim: dim, groupCount: 16, seed: 3))
        for probes in [2, 5] {
            let float = CentroidAssigner(centroids: centroids, dim: dim, groups: groups, probes: probes, int16: false)
            let int16 = CentroidAssigner(centroids: centroids, dim: dim, groups: groups, probes: probes, int16: true)
            let lazy = CentroidAssigner(centroids: centroids, dim: dim, groups: groups, probes: probes, packsGroupsOnDemand: true, int16: true)
            #expect(!float.isInt16 && int16.isInt16 && !lazy.isInt16 && lazy.packsGroupsOnDemand)
            for n in [1, 37, 4_100] {
                var points = [Float](repeating: 0, count: n * dim)
                var copies: [Int] = []
                for i in 0..<n {
                    // A third of the rows copies of a centroid (duplicates tie exactly), the rest near one or anywhere.
                    let near = Int.random(in: 0..<k, using: &g)
                    if i % 3 == 0 { copies.append(i) }
                    for d in 0..<dim {
                        let base = i % 3 == 2 ? 0 : centroids[near * dim + d]
                        points[i * dim + d] = i % 3 == 0 ? base : max(-3, min(3, base + Float(Int.random(in: -1...1, using: &g))))
                    }
                }
                let expected = codes(float, points, dim: dim)
                let got = codes(int16, points, dim: dim)
                #expect(codes(lazy, points, dim: dim) == expected, "probes \(probes), \(n) rows, packed on demand")
                var same = 0
                for i in 0..<n {
                    let xr = points[(i * dim)..<((i + 1) * dim)]
                    if got[i] == expected[i] { same += 1; continue }
                    let a = score(xr, centroids[(Int(got[i]) * dim)..<((Int(got[i]) + 1) * dim)])
                    let b = score(xr, centroids[(Int(expected[i]) * dim)..<((Int(expected[i]) + 1) * dim)])
                    #expect(a == b, "row \(i): int16 chose \(got[i]) (\(a)), float \(expected[i]) (\(b))")
                }
                #expect(same * 100 >= n * 99, "probes \(probes): \(same) of \(n) rows equal")
                // A row that copies a centroid scores it (and its duplicates) best: both pick the same one.
                for i in copies { #expect(got[i] == expected[i], "copy row \(i)") }
            }
        }
    }

    /// Centroids in tight pairs (their scores often closer than the int16 pass resolves) and float rows: the
    /// int16 pass alone (its best candidate) picks a worse centroid for some rows, and the float re-score of
    /// the two candidates gives the float kernel's choice for every row whose candidates contain it. Fails if
    /// the re-score is skipped or scores the candidates wrongly.
    @Test func theFloatReScoreCorrectsTheInt16Pass() {
        var g = SplitMix64(seed: 92)
        let dim = 48, k = 64, n = 3_000
        var centroids = [Float](repeating: 0, count: k * dim)
        for j in 0..<(k / 2) {
            for d in 0..<dim {
                let v = Float.random(in: -0.4...0.4, using: &g)
                centroids[(2 * j) * dim + d] = v
                centroids[(2 * j + 1) * dim + d] = v + Float.random(in: -0.0005...0.0005, using: &g)
            }
        }
        let points = (0..<(n * dim)).map { _ in Float.random(in: -0.4...0.4, using: &g) }
        let packed = centroids.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
        var floatBest = [Int32](repeating: -1, count: n)
        ck_assign_best(points, dim, nil, n, packed.panels, packed.bias, k, &floatBest, nil)
        var packed16 = [Int16](repeating: 0, count: ck_assign_packed16_count(k, dim))
        var bias16 = [Float](repeating: 0, count: (k + 15) / 16 * 16)
        let scale = ck_assign_pack16(centroids, dim, nil, k, &packed16, &bias16)
        var q = [Int16](repeating: 0, count: n * dim), rowScale = [Float](repeating: 0, count: n)
        ck_assign_quantize_rows16(points, dim, n, &q, &rowScale)
        var candidates = [Int32](repeating: -1, count: 2 * n), candidateScores = [Float](repeating: -.infinity, count: 2 * n)
        ck_assign_best2_i16(q, rowScale, dim, nil, n, packed16, packed.bias, scale, k, nil, &candidates, &candidateScores)
        // The re-score's bias is the float kernel's, to the bit.
        #expect(bias16 == Array(packed.bias.prefix(bias16.count)))
        let exactBias = Array(bias16.prefix(k))
        var rescored = [Int32](repeating: -1, count: n)
        ck_assign_rescore(points, dim, n, candidates, centroids, exactBias, &rescored)
        var corrected = 0, missed = 0
        for i in 0..<n {
            let xr = points[(i * dim)..<((i + 1) * dim)]
            func exact(_ j: Int32) -> Double { score(xr, centroids[(Int(j) * dim)..<((Int(j) + 1) * dim)]) }
            #expect(candidates[2 * i] != candidates[2 * i + 1] && candidates[2 * i + 1] >= 0)
            guard candidates[2 * i] == floatBest[i] || candidates[2 * i + 1] == floatBest[i] else {
                missed += 1
                continue
            }
            if candidates[2 * i] != floatBest[i] && abs(exact(candidates[2 * i]) - exact(floatBest[i])) > 1e-6 { corrected += 1 }
            // The float kernel's choice, or a centroid within float rounding of it.
            #expect(rescored[i] == floatBest[i] || abs(exact(rescored[i]) - exact(floatBest[i])) < 1e-6, "row \(i)")
        }
        #expect(corrected > 0, "the int16 pass alone was right for every row: the data do not test the re-score")
        #expect(missed * 100 < n, "\(missed) of \(n) rows lost their float best in the int16 pass")
    }

    /// The AVX2 int16 pass equals its scalar body exactly (same integer dot products, same fused float steps,
    /// same tie rules), for row lists, several groups merged into one list, and padding columns; the
    /// re-scores agree on integer data (every float sum exact); rows quantise as specified.
    @Test func int16KernelsMatchTheirScalarBodies() {
        var g = SplitMix64(seed: 93)
        let dim = 40, n = 45
        let points = (0..<(n * dim)).map { _ in Float(Int.random(in: -9...9, using: &g)) }
        var q = [Int16](repeating: 0, count: n * dim), rowScale = [Float](repeating: 0, count: n)
        ck_assign_quantize_rows16(points, dim, n, &q, &rowScale)
        // The reference: L = ⌊√((2³¹ − 1) / dim)⌋, scale = max |x| / L, q = x · (1 / scale) rounded to nearest even.
        let limit = Float(Int((2_147_483_647.0 / Double(dim)).squareRoot()))
        for i in 0..<n {
            let row = points[(i * dim)..<((i + 1) * dim)]
            let top = row.map(abs).max()!
            let scale = top > 0 ? top / limit : 1
            #expect(rowScale[i] == scale)
            let inverse = 1 / scale
            #expect(row.enumerated().allSatisfy { q[i * dim + $0.offset] == Int16(($0.element * inverse).rounded(.toNearestOrEven)) })
        }
        let rows: [Int32] = stride(from: n - 1, through: 0, by: -2).map { Int32($0) }
        var fast = [Int32](repeating: -1, count: 2 * n), slow = fast
        var fastScores = [Float](repeating: -.infinity, count: 2 * n), slowScores = fastScores
        var all: [Float] = []
        var biasByName = [Float](repeating: 0, count: 233)
        for (k, base) in [(13, 0), (1, 100), (33, 200)] {
            let c = (0..<(k * dim)).map { _ in Float(Int.random(in: -3...3, using: &g)) }
            all += c
            var packed16 = [Int16](repeating: 0, count: ck_assign_packed16_count(k, dim))
            var bias16 = [Float](repeating: 0, count: (k + 15) / 16 * 16)
            let scale = ck_assign_pack16(c, dim, nil, k, &packed16, &bias16)
            let members = (0..<Int32(k)).map { $0 + Int32(base) }
            ck_assign_best2_i16(q, rowScale, dim, rows, rows.count, packed16, bias16, scale, k, members, &fast, &fastScores)
            ck_assign_best2_i16_scalar(q, rowScale, dim, rows, rows.count, packed16, bias16, scale, k, members, &slow, &slowScores)
            for j in 0..<k { biasByName[base + j] = bias16[j] }
        }
        #expect(fast == slow)
        #expect(fastScores == slowScores)
        #expect(rows.allSatisfy { fast[2 * Int($0)] >= 0 && fast[2 * Int($0) + 1] >= 0 })
        // Re-score against a codebook holding every group's centroids at their names.
        var codebook = [Float](repeating: 0, count: 233 * dim)
        for (k, base, offset) in [(13, 0, 0), (1, 100, 13), (33, 200, 14)] {
            for j in 0..<k { for d in 0..<dim { codebook[(base + j) * dim + d] = all[(offset + j) * dim + d] } }
        }
        let bias = biasByName
        var a = [Int32](repeating: -2, count: n), b = a
        ck_assign_rescore(points, dim, n, fast, codebook, bias, &a)
        ck_assign_rescore_scalar(points, dim, n, fast, codebook, bias, &b)
        #expect(a == b)
        for i in 0..<n where i % 2 != (n - 1) % 2 { #expect(a[i] == -1, "row \(i) had no candidates") }
        for row in rows { #expect(a[Int(row)] == fast[2 * Int(row)] || a[Int(row)] == fast[2 * Int(row) + 1]) }
    }
}
