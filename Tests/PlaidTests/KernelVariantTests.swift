import CKernels
import Foundation
import Testing

@testable import Plaid

/// Every vector body of the assignment kernels equals the scalar body bit for bit (`AssignKernelCheck`, the checks
/// `colgrep debug cpu-kernels` prints): AVX2 wherever the CPU has it (the development box and CI), AVX-512 and
/// AVX512-VNNI only where the CPU has them — elsewhere those tests are skipped, saying why.
@Suite struct KernelVariantTests {
    static let hasAVX2 = AssignKernelCheck.supportedSets.contains("avx2")
    static let hasAVX512 = AssignKernelCheck.supportedSets.contains("avx512")
    static let hasVNNI = AssignKernelCheck.supportedSets.contains("avx512-vnni")

    private func expectAllPass(_ set: String) {
        let checks = AssignKernelCheck.run(sets: [set], seed: 3) + SearchKernelCheck.run(sets: [set], seed: 3)
        #expect(!checks.isEmpty)
        for check in checks {
            #expect(check.isa == set)
            #expect(check.passed, "\(check.kernel) \(check.isa) vs \(check.reference) (\(check.data)): \(check.failures)")
        }
    }

    @Test(.enabled(if: hasAVX2, "this CPU lacks AVX2 + FMA: only the scalar bodies run"))
    func avx2BodiesEqualTheScalarBodies() {
        expectAllPass("avx2")
        // The AVX2 set checks its own-only bodies (quantisation, re-score, residual codes) too.
        let kernels = Set(AssignKernelCheck.run(sets: ["avx2"]).map(\.kernel))
        #expect(kernels.isSuperset(of: ["assign_top8", "assign_best", "assign_best2_i16", "quantize_rows16", "assign_rescore"]))
        #expect(SearchKernelCheck.run(sets: ["avx2"]).map(\.kernel) == ["residual_maxsim_sorted"])
    }

    /// The exact stage's check runs every vector body this CPU has (AVX2 and VNNI on x86, NEON on 64-bit ARM) on
    /// every shape, and each equals the scalar body bit for bit.
    @Test func exactStageCheckRunsEveryShapeAndEveryBody() {
        let checks = SearchKernelCheck.run(seed: 5)
        #if arch(arm64)
        let expected = ["neon"]
        #else
        let expected = Self.hasAVX2 ? (Self.hasVNNI ? ["avx2", "avx512-vnni"] : ["avx2"]) : []
        #endif
        #expect(checks.map(\.isa) == expected)
        #expect(SearchKernelCheck.bodies == expected)
        for check in checks {
            #expect(check.cases == 300)
            #expect(check.passed, "\(check.isa): \(check.failures)")
        }
        // A set this CPU lacks is refused and computes nothing.
        #if arch(arm64)
        let missing = [Int(CK_ISA_AVX2), Int(CK_ISA_AVX512_VNNI)]
        #else
        let missing = [Int(CK_ISA_NEON)] + (Self.hasVNNI ? [] : [Int(CK_ISA_AVX512_VNNI)])
        #endif
        for isa in missing {
            var out: [Float] = [42]
            var best = [Float](repeating: 0, count: 8)
            var query = ck_residual_query()
            query.nbits = 4
            #expect(ck_residual_maxsim_sorted_with(Int32(isa), &query, nil, 1, 0, nil, nil, nil, nil, &best, &out) == 0)
            #expect(out == [42])
        }
    }

    @Test(.enabled(if: hasAVX512, "this CPU lacks AVX-512 F/BW/VL/DQ (checked on the GPU machine's Xeon by `colgrep debug cpu-kernels`)"))
    func avx512BodiesEqualTheScalarAndAVX2Bodies() {
        expectAllPass("avx512")
    }

    @Test(.enabled(if: hasVNNI, "this CPU lacks AVX512-VNNI (checked on the GPU machine's Xeon by `colgrep debug cpu-kernels`)"))
    func vnniBodiesEqualTheScalarAndAVX2Bodies() {
        expectAllPass("avx512-vnni")
    }

    /// The sets are ordered and reported consistently: the one in use is one the CPU runs; the skipped ones are
    /// exactly those above the CPU's best.
    @Test func instructionSetsAreConsistent() {
        let supported = AssignKernelCheck.supportedSets
        #expect(supported.first == "scalar")
        #expect(supported.contains(AssignKernelCheck.activeSet))
        let skipped = AssignKernelCheck.skippedSets.map(\.isa)
        #expect(Set(supported).isDisjoint(with: skipped))
        #expect(supported.count + skipped.count == 4)
        // A set above the CPU's runs nothing and says so.
        if let above = skipped.first, let level = ["scalar", "avx2", "avx512", "avx512-vnni"].firstIndex(of: above) {
            var out = [Int32](repeating: -7, count: 8)
            let x = [Float](repeating: 1, count: 8), panels = [Float](repeating: 0, count: 16 * 8), bias = [Float](repeating: 0, count: 16)
            #expect(ck_assign_top_with(Int32(level), x, 8, 1, panels, bias, 8, 8, &out) == 0)
            #expect(out == [Int32](repeating: -7, count: 8))
        }
    }

    /// The tie rule itself, for every set this CPU runs: when all 16 centroids score the same, a row's best 8 are
    /// centroids 0…7 in order and its best one is centroid 0 (the smaller index wins a tie).
    @Test func everyBodyGivesTiesToTheSmallerIndex() {
        let dim = 8, k = 16, rows = 17
        let x = [Float](repeating: 1, count: rows * dim), centroids = [Float](repeating: 0, count: k * dim)
        var panels = [Float](repeating: 0, count: ck_assign_packed_floats(k, dim)), bias = [Float](repeating: 0, count: 16)
        ck_assign_pack(centroids, dim, nil, k, 1, &panels, &bias)
        for level in AssignKernelCheck.supportedSets.indices {
            var top = [Int32](repeating: -1, count: rows * 8), best = [Int32](repeating: -1, count: rows)
            #expect(ck_assign_top_with(Int32(level), x, dim, rows, panels, bias, k, 8, &top) == 1)
            #expect(ck_assign_best_with(Int32(level), x, dim, nil, rows, panels, bias, k, &best, nil) == 1)
            #expect(top == (0..<rows).flatMap { _ in (0..<8).map(Int32.init) }, "set \(level)")
            #expect(best == [Int32](repeating: 0, count: rows), "set \(level)")
        }
    }
}
