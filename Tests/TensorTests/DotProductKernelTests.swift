import CKernels
import Foundation
import Testing
@testable import Tensor

/// The small-batch kernel of query encoders (`CPUProductKernel.dot`, `ck_sgemm_dot`): its rounding is defined
/// (eight fused lane sums, a fixed addition tree, the tail fused after), so the AVX2 body must equal the
/// scalar definition bit for bit, whatever the split over threads; and it must agree with OpenBLAS's SGEMM
/// (the document path) within float tolerance.
@Suite struct DotProductKernelTests {
    /// The definition written out in Swift, independently of the C scalar body.
    static func definition(_ x: HostMatrix, _ w: HostMatrix) -> [Float] {
        let k = x.cols, k8 = k - k % 8
        var out = [Float](repeating: 0, count: x.rows * w.rows)
        for i in 0..<x.rows {
            for j in 0..<w.rows {
                var lane = [Float](repeating: 0, count: 8)
                for t in stride(from: 0, to: k8, by: 8) {
                    for l in 0..<8 { lane[l] = fmaf(x.values[i * k + t + l], w.values[j * k + t + l], lane[l]) }
                }
                var sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]))
                for t in k8..<k { sum = fmaf(x.values[i * k + t], w.values[j * k + t], sum) }
                out[i * w.rows + j] = sum
            }
        }
        return out
    }

    /// Shapes with every tile edge: rows not a multiple of 3, weight rows not a multiple of 4, k with a tail.
    static let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (2, 5, 7), (3, 4, 8), (7, 13, 29), (32, 48, 64), (11, 66, 100)]

    @Test(arguments: shapes.indices)
    func simdBodyEqualsTheDefinitionBitForBit(_ index: Int) {
        let (m, n, k) = Self.shapes[index]
        let x = randomMatrix(m, k, seed: UInt64(10 + index)), w = randomMatrix(n, k, seed: UInt64(50 + index))
        var fast = [Float](repeating: .nan, count: m * n), scalar = fast
        // Split over weight rows at an odd place, as a pool of threads would.
        let cut = n / 3
        ck_sgemm_dot(x.values, m, k, w.values, 0, cut, &fast, n)
        ck_sgemm_dot(x.values, m, k, w.values, cut, n, &fast, n)
        ck_sgemm_dot_scalar(x.values, m, k, w.values, 0, n, &scalar, n)
        let expected = Self.definition(x, w)
        #expect(fast.map(\.bitPattern) == expected.map(\.bitPattern), "\(m)×\(n)×\(k): SIMD body")
        #expect(scalar.map(\.bitPattern) == expected.map(\.bitPattern), "\(m)×\(n)×\(k): scalar body")
    }

    @Test func dotLinearMatchesOpenBLASWithinFloatToleranceAndIgnoresThreadCount() throws {
        // MiniLM's shapes at a query's 32 rows: 384 → 1536 and 1536 → 384, with bias, GELU and residual.
        let blas = CPUBackend(threads: 2, precision: .fp32)
        let dots = [1, 2, 3].map { CPUBackend(threads: $0, precision: .fp32, products: .dot) }
        for (k, n) in [(384, 1536), (1536, 384)] {
            let x = randomMatrix(32, k, seed: UInt64(k), scale: 2), w = randomMatrix(n, k, seed: UInt64(n), scale: 0.05)
            let b = randomMatrix(1, n, seed: 7), r = randomMatrix(32, n, seed: 8)
            func run(_ backend: CPUBackend) throws -> HostMatrix {
                try backend.download(backend.linear(backend.upload(x), weight: backend.upload(w), bias: backend.upload(b),
                                                    activation: .gelu, residual: backend.upload(r)))
            }
            let reference = try run(blas)
            let outputs = try dots.map(run)
            #expect(maxAbsDifference(outputs[0], reference) < 1e-4, "\(k)→\(n): dot vs OpenBLAS")
            for other in outputs.dropFirst() {
                #expect(other.values.map(\.bitPattern) == outputs[0].values.map(\.bitPattern), "\(k)→\(n): threads change the bits")
            }
        }
    }

    @Test func queryBackendsNameTheirKernel() {
        #expect(CPUBackend(threads: 1, precision: .fp32, products: .dot).name.contains("dot fp32"))
        #expect(CPUBackend(threads: 1, precision: .fp32).name.contains("openblas fp32"))
    }
}
