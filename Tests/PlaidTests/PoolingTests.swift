import Foundation
import Plaid
import Tensor
import Testing

@Suite struct PoolingTests {
    /// Rows near `directions`, each direction repeated `copies` times, after a [CLS] row.
    private func grouped(_ directions: [[Float]], copies: Int, jitter: Float) -> HostMatrix {
        var values: [Float] = [1, 0, 0, 0, 0, 0, 0, 0]
        var step: Float = 0
        for direction in directions {
            for _ in 0..<copies {
                step += 1
                values.append(contentsOf: direction.enumerated().map { $0.element + jitter * sin(step * Float($0.offset + 1)) })
            }
        }
        return HostMatrix(rows: values.count / 8, cols: 8, values: values)
    }

    @Test func pairsOfNearDuplicatesMergeIntoTheirUnitMeans() {
        let directions: [[Float]] = (0..<6).map { i in (0..<8).map { $0 == i ? 1 : ($0 == 7 ? Float(i) * 0.1 : 0) } }
        let input = grouped(directions, copies: 2, jitter: 0.01)
        let pooled = TokenPooler.pool(input, factor: 2)
        #expect(pooled.rows == 1 + 6)
        #expect(Array(pooled.row(0)) == Array(input.row(0)))  // [CLS] unchanged
        for c in 0..<6 {
            // Cluster c holds rows 1 + 2c and 2 + 2c (labels follow first appearance).
            let sum = (0..<8).map { input.values[(1 + 2 * c) * 8 + $0] + input.values[(2 + 2 * c) * 8 + $0] }
            let length = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for d in 0..<8 { #expect(abs(pooled.values[(1 + c) * 8 + d] - sum[d] / length) < 1e-6) }
        }
    }

    /// Degenerate vectors (NaN rows, zero rows) once crashed the nearest-neighbour chain.
    @Test func nonFiniteAndZeroRowsStillPool() {
        var values = [Float](repeating: 0, count: 9 * 4)
        for i in 0..<4 { values[i] = 1 }                        // [CLS]
        for j in 0..<4 { values[4 + j] = .nan }                 // a NaN row
        for j in 0..<4 { values[8 + j] = .infinity }            // an infinite row
        for row in 4..<9 { values[row * 4 + row % 4] = 1 }      // unit rows; rows 3 stays zero
        let pooled = TokenPooler.pool(HostMatrix(rows: 9, cols: 4, values: values), factor: 2)
        #expect(pooled.rows == 1 + 8 / 2)
        #expect(pooled.cols == 4)
    }

    @Test func outputSizeFollowsTheReferenceFormula() {
        var generator = SystemRandomNumberGenerator()
        for n in [3, 4, 5, 10, 33, 100] {
            let input = HostMatrix(rows: n, cols: 16, values: (0..<(n * 16)).map { _ in Float.random(in: -1...1, using: &generator) })
            for factor in [2, 3, 4] {
                let m = n - 1
                let k = max(1, m / factor)
                #expect(TokenPooler.pool(input, factor: factor).rows == (k >= m ? n : 1 + k))
            }
            #expect(TokenPooler.pool(input, factor: 1) == input)
        }
        let tiny = HostMatrix(rows: 2, cols: 16, values: [Float](repeating: 0.5, count: 32))
        #expect(TokenPooler.pool(tiny, factor: 2) == tiny)
    }

    @Test func wardPrefersMergingSmallTightGroups() {
        // Three tight triples: at factor 3 every triple becomes one cluster.
        let directions: [[Float]] = (0..<3).map { i in (0..<8).map { $0 == i ? 1 : 0 } }
        let pooled = TokenPooler.pool(grouped(directions, copies: 3, jitter: 0.02), factor: 3)
        #expect(pooled.rows == 4)
        for c in 0..<3 { #expect(pooled.values[(1 + c) * 8 + c] > 0.9) }
    }

    @Test func longDocumentsPoolWithBoundedWork() {
        let n = 2048
        var generator = SystemRandomNumberGenerator()
        let input = HostMatrix(rows: n, cols: 48, values: (0..<(n * 48)).map { _ in Float.random(in: -1...1, using: &generator) })
        let pooled = TokenPooler.pool(input, factor: 2)
        #expect(pooled.rows == 1 + (n - 1) / 2)
        #expect(pooled.values.allSatisfy { $0.isFinite })
    }
}
