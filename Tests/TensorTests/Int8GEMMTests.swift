import CKernels
import Foundation
import Testing
@testable import Tensor

/// `ck_q8_gemm` against a plain Swift model of the same arithmetic (per-channel weight quantisation, per-row
/// u8 activations, int32 sums, dequantisation): every kernel level this CPU runs must reproduce it exactly.
@Suite struct Int8GEMMTests {
    /// Kernel levels to check: scalar always, then each vector level the CPU has.
    static var levels: [Int32] { (0...ck_q8_best_level()).map { $0 } }

    /// The expected output, computed the slow way with the kernel's documented rounding.
    static func reference(x: HostMatrix, w: HostMatrix, range: Int) -> [Float] {
        let n = w.rows, k = w.cols
        var qw = [Int32](repeating: 0, count: n * k), sw = [Float](repeating: 0, count: n)
        for c in 0..<n {
            let m = w.row(c).map(abs).max() ?? 0
            sw[c] = m > 0 ? m / Float(range) : 1
            let inv: Float = m > 0 ? Float(range) / m : 0
            for j in 0..<k { qw[c * k + j] = max(-Int32(range), min(Int32(range), Int32((w.values[c * k + j] * inv).rounded(.toNearestOrEven)))) }
        }
        var y = [Float](repeating: 0, count: x.rows * n)
        for r in 0..<x.rows {
            let m = x.row(r).map(abs).max() ?? 0
            let sa: Float = m > 0 ? m / 127 : 1, inv: Float = m > 0 ? 127 / m : 0
            let qa = x.row(r).map { max(-127, min(127, Int32(($0 * inv).rounded(.toNearestOrEven)))) }
            for c in 0..<n {
                var acc: Int32 = 0
                for j in 0..<k { acc += qa[j] * qw[c * k + j] }
                y[r * n + c] = Float(acc) * sw[c] * sa
            }
        }
        return y
    }

    static func run(level: Int32, packedFor packLevel: Int32, x: HostMatrix, w: HostMatrix) -> [Float] {
        let n = w.rows, k = w.cols, padded = max((n + 15) / 16 * 16, 16)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(ck_q8_weight_size(n, k), 64), alignment: 64)
        let work = UnsafeMutableRawPointer.allocate(byteCount: ck_q8_work_size(k), alignment: 64)
        var scales = [Float](repeating: 0, count: padded), offsets = [Int32](repeating: 0, count: padded)
        defer { packed.deallocate(); work.deallocate() }
        ck_q8_weight_pack(w.values, n, k, ck_q8_weight_range(packLevel), packed.assumingMemoryBound(to: Int8.self), &scales, &offsets)
        var y = [Float](repeating: .nan, count: x.rows * n)
        ck_q8_gemm(level, x.values, x.rows, k, packed.assumingMemoryBound(to: Int8.self), scales, offsets, n, &y, work)
        return y
    }

    // Odd sizes: k tails below one 4-byte group and one 32-value quantisation step, channel tails inside a
    // 16-channel block and an odd block count (VNNI steps two), row tails of the 4- and 8-row tiles and the
    // 64-row quantisation tile.
    @Test(arguments: [(1, 1, 1), (3, 5, 17), (9, 37, 33), (70, 64, 48), (131, 256, 40), (66, 384, 16), (13, 513, 7)])
    func everyLevelMatchesTheScalarModelExactly(rows: Int, k: Int, n: Int) {
        let x = randomMatrix(rows, k, seed: UInt64(rows * 7 + k), scale: 3), w = randomMatrix(n, k, seed: UInt64(n * 13 + k))
        for level in Self.levels {
            let expected = Self.reference(x: x, w: w, range: Int(ck_q8_weight_range(level)))
            #expect(Self.run(level: level, packedFor: level, x: x, w: w) == expected, "level \(level)")
            // The portable body reads the same packing identically.
            #expect(Self.run(level: 0, packedFor: level, x: x, w: w) == expected, "scalar on level \(level)'s packing")
        }
    }

    @Test func zeroRowsAndZeroWeightsGiveZeros() {
        let x = HostMatrix(rows: 3, cols: 8, values: [Float](repeating: 0, count: 8) + randomMatrix(2, 8, seed: 5).values)
        let w = HostMatrix(rows: 2, cols: 8, values: [Float](repeating: 0, count: 8) + randomMatrix(1, 8, seed: 6).values)
        for level in Self.levels {
            let y = Self.run(level: level, packedFor: level, x: x, w: w)
            #expect(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[4] == 0)
        }
    }

    @Test func extremeValuesDoNotSaturate() {
        // Rows at ±max everywhere: every activation byte is 1 or 255, every weight ±range — the AVX2 pair sums'
        // worst case (2 · 255 · 63) must not clip.
        let k = 64
        let x = HostMatrix(rows: 2, cols: k, values: (0..<k).map { $0 % 2 == 0 ? 5 : -5 } + (0..<k).map { _ in 5 })
        let w = HostMatrix(rows: 2, cols: k, values: (0..<k).map { $0 % 2 == 0 ? 1 : -1 } + (0..<k).map { _ in -1 })
        for level in Self.levels {
            let y = Self.run(level: level, packedFor: level, x: x, w: w)
            let exact: [Float] = [5 * Float(k), 0, 0, -5 * Float(k)]
            for (a, b) in zip(y, exact) { #expect(abs(a - b) <= 1e-3 * 5 * Float(k)) }
        }
    }
}

@Suite struct Int8SelectionTests {
    @Test func smallBatchesNeverPackTheWeight() throws {
        let backend = CPUBackend(threads: 2, precision: .int8)
        let w = try backend.upload(randomMatrix(48, 32, seed: 1)) as! CPUMatrix
        _ = try backend.linear(backend.upload(randomMatrix(32, 32, seed: 2)), weight: w, bias: nil, activation: .none, residual: nil)
        #expect(w.quantized?.packed == nil)
        _ = try backend.linear(backend.upload(randomMatrix(80, 32, seed: 3)), weight: w, bias: nil, activation: .none, residual: nil)
        #expect(w.quantized?.packed != nil)
    }

    @Test func autoMeasuresOnlyDeclaredWeightsAndStaysClose() throws {
        let backend = CPUBackend(threads: 2, precision: .auto)
        let declared = try backend.upload(randomMatrix(96, 64, seed: 4)) as! CPUMatrix
        let other = try backend.upload(randomMatrix(96, 64, seed: 5)) as! CPUMatrix
        backend.allowReducedPrecision(declared)
        let x = try backend.upload(randomMatrix(CPUBackend.calibrationRows + 10, 64, seed: 6))
        let exact = CPUBackend(threads: 2, precision: .fp32)
        for w in [declared, other] {
            let y = try backend.download(backend.linear(x, weight: w, bias: nil, activation: .none, residual: nil))
            let reference = try exact.download(exact.linear(exact.upload(backend.download(x)), weight: exact.upload(w.host), bias: nil, activation: .none, residual: nil))
            #expect(maxAbsDifference(y, reference) < 0.05 * 8)
        }
        #expect(declared.quantized?.chosen != nil)   // measured once, either way
        #expect(other.quantized == nil)              // never considered
    }

    @Test func rowCosineOfIdenticalAndOppositeRows() {
        let a = CPUMatrix(HostMatrix(rows: 2, cols: 2, values: [1, 0, 0, 0])), b = CPUMatrix(HostMatrix(rows: 2, cols: 2, values: [1, 0, 0, 0]))
        #expect(CPUBackend.minimumRowCosine(a, b) == 1)
        let c = CPUMatrix(HostMatrix(rows: 2, cols: 2, values: [-1, 0, 0, 0]))
        #expect(CPUBackend.minimumRowCosine(a, c) == -1)
    }

    /// Two backends that measured the same weights at once keep the first settled choice, whatever the
    /// second one measured: otherwise their vectors would differ.
    @Test func theFirstSettledChoiceWins() {
        let decisions = Int8Decisions()
        let key = Int8Decisions.Key(CPUMatrix(randomMatrix(4, 8, seed: 9)))
        #expect(decisions[key] == nil && decisions.isEmpty)
        #expect(decisions.settle(key, true) == true)
        #expect(!decisions.isEmpty)
        #expect(decisions.settle(key, false) == true)
        #expect(decisions[key] == true)
        let other = Int8Decisions.Key(CPUMatrix(randomMatrix(4, 8, seed: 10)))
        #expect(decisions.settle(other, false) == false)
    }
}
