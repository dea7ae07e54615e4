import Foundation
import Testing
@testable import Tensor

/// `CPUBackend.product` cuts the weight of a product of a few rows (a query) into fixed blocks, one
/// SGEMM each: the values must not depend on how many threads share the blocks (a query's vector, so
/// its search results, stay the same on any machine), and must be the product itself.
@Suite struct ColumnSplitProductTests {
    func linear(_ threads: Int, _ x: HostMatrix, _ w: HostMatrix, _ b: HostMatrix, _ r: HostMatrix) throws -> HostMatrix {
        let backend = CPUBackend(threads: threads, precision: .fp32)
        return try backend.download(backend.linear(backend.upload(x), weight: backend.upload(w), bias: backend.upload(b),
                                                   activation: .gelu, residual: backend.upload(r)))
    }

    @Test(arguments: [(1, 384, 384), (7, 384, 1536), (16, 1536, 384), (32, 384, 1152), (33, 1536, 384), (64, 384, 200)])
    func columnSplitIsTheSameOnAnyThreadCount(shape: (rows: Int, k: Int, n: Int)) throws {
        #expect(CPUBackend.splitsColumns(rows: shape.rows, columns: shape.n, threads: 2))
        let x = randomMatrix(shape.rows, shape.k, seed: UInt64(shape.rows * 31 + shape.k), scale: 2)
        let w = randomMatrix(shape.n, shape.k, seed: UInt64(shape.n * 17 + 5), scale: 0.1)
        let b = randomMatrix(1, shape.n, seed: 9), r = randomMatrix(shape.rows, shape.n, seed: 11)
        let one = try linear(1, x, w, b, r)
        for threads in [2, 3, 4] {
            #expect(try linear(threads, x, w, b, r).values.map(\.bitPattern) == one.values.map(\.bitPattern), "\(threads) threads")
        }
        // And it is the product: against a plain double-precision loop.
        var worst: Double = 0
        for i in 0..<shape.rows {
            for j in 0..<shape.n {
                var sum = Double(b.values[j])
                for k in 0..<shape.k { sum += Double(x.values[i * shape.k + k]) * Double(w.values[j * shape.k + k]) }
                let gelu = 0.5 * sum * (1 + erf(sum / 2.0.squareRoot()))
                worst = max(worst, abs(gelu + Double(r.values[i * shape.n + j]) - Double(one.values[i * shape.n + j])))
            }
        }
        #expect(worst < 1e-3)
    }

    @Test func largeOrNarrowProductsKeepTheRowSplit() {
        #expect(!CPUBackend.splitsColumns(rows: 65, columns: 1536, threads: 2))
        #expect(!CPUBackend.splitsColumns(rows: 32, columns: 100, threads: 2))
        #expect(CPUBackend.splitsColumns(rows: 32, columns: 1536, threads: 1))
    }
}
