import Foundation
import Testing
@testable import Plaid

/// `TokenPooler.wardMerges` keeps distances in padded rows and finds nearest neighbours by a SIMD minimum
/// with keys for the reference's order. This suite holds it to the straightforward form it replaced — an
/// active list scanned in the reference's order (original rows by index, then clusters in creation
/// order), first strictly smaller distance wins — on matrices full of ties, duplicates and far values.
@Suite struct PoolingEquivalenceTests {
    /// The list-scan nearest-neighbour chain (the implementation before session 12), kept as the oracle.
    private func listScanMerges(_ input: [Float], count m: Int, merges: Int) -> [Int] {
        var d = input
        for i in d.indices where !d[i].isFinite { d[i] = 1e30 }
        for i in 0..<m {
            for j in (i + 1)..<max(i + 1, m) {
                let value = min(d[i * m + j], d[j * m + i])
                d[i * m + j] = value
                d[j * m + i] = value
            }
        }
        var parent = Array(0..<m)
        var size = [Float](repeating: 1, count: m)
        var active = Array(0..<m)
        var chain: [Int] = []
        var done = 0
        while done < merges, active.count > 1 {
            if chain.isEmpty { chain.append(active[0]) }
            var x = chain[chain.count - 1]
            var y = -1
            while true {
                x = chain[chain.count - 1]
                var best = Float.infinity
                var previous = -1
                if chain.count > 1 {
                    previous = chain[chain.count - 2]
                    best = d[x * m + previous]
                    y = previous
                }
                for candidate in active where candidate != x && d[x * m + candidate] < best {
                    best = d[x * m + candidate]
                    y = candidate
                }
                if y == previous { break }
                chain.append(y)
            }
            chain.removeLast(2)
            let keep = active.firstIndex(of: x)! < active.firstIndex(of: y)! ? x : y
            let gone = keep == x ? y : x
            let nx = size[x], ny = size[y]
            let dxy = d[x * m + y]
            for k in active where k != x && k != y {
                let nk = size[k]
                let value = ((nx + nk) * d[x * m + k] + (ny + nk) * d[y * m + k] - nk * dxy) / (nx + ny + nk)
                d[keep * m + k] = value
                d[k * m + keep] = value
            }
            size[keep] = nx + ny
            parent[gone] = keep
            active.removeAll { $0 == x || $0 == y }
            active.append(keep)
            done += 1
        }
        return parent
    }

    /// Squared cosine distances of random rows, as `pool` computes them, with some rows repeated exactly
    /// (distance 0 ties) and the two halves of the matrix a rounding apart.
    private func cosineDistances(rows m: Int, dim: Int, repeats: Int, random: inout SplitMix64) -> [Float] {
        var rows = (0..<m).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &random) } }
        for _ in 0..<repeats { rows[Int.random(in: 0..<m, using: &random)] = rows[Int.random(in: 0..<m, using: &random)] }
        var d = [Float](repeating: 0, count: m * m)
        for i in 0..<m {
            for j in 0..<m {
                var dot: Float = 0, ni: Float = 0, nj: Float = 0
                for c in 0..<dim { dot += rows[i][c] * rows[j][c]; ni += rows[i][c] * rows[i][c]; nj += rows[j][c] * rows[j][c] }
                let cosine = dot / (ni.squareRoot() * nj.squareRoot())
                let distance = max(0, 1 - cosine) * (i < j ? 1 : 1.0000001)
                d[i * m + j] = distance * distance
            }
        }
        return d
    }

    @Test func sameMergesAsTheListScanOnCosineDistances() {
        var random = SplitMix64(seed: 12)
        for m in [2, 3, 5, 15, 16, 17, 31, 33, 64, 100, 241] {
            for repeats in [0, m / 3] {
                let d = cosineDistances(rows: m, dim: 8, repeats: repeats, random: &random)
                for merges in Set([1, m / 2, m - 1]) where merges >= 1 {
                    #expect(TokenPooler.wardMerges(squaredDistance: d, count: m, merges: merges)
                            == listScanMerges(d, count: m, merges: merges), "m \(m), repeats \(repeats), merges \(merges)")
                }
            }
        }
    }

    /// Small integer distances: nearly every comparison is a tie, so the order of the scan decides.
    @Test func sameMergesAsTheListScanWhenEverythingTies() {
        var random = SplitMix64(seed: 7)
        for m in [4, 9, 16, 23, 40, 77] {
            for levels in [1, 2, 3] {
                let d = (0..<(m * m)).map { _ in Float(Int.random(in: 0..<levels, using: &random)) }
                #expect(TokenPooler.wardMerges(squaredDistance: d, count: m, merges: m - 1)
                        == listScanMerges(d, count: m, merges: m - 1), "m \(m), levels \(levels)")
                #expect(TokenPooler.wardMerges(squaredDistance: d, count: m, merges: m / 2)
                        == listScanMerges(d, count: m, merges: m / 2), "m \(m), levels \(levels)")
            }
        }
    }

    /// NaN and infinite distances count as very far: both forms merge them last, the same way.
    @Test func sameMergesAsTheListScanWithNonFiniteDistances() {
        var random = SplitMix64(seed: 3)
        for m in [6, 19, 50] {
            var d = (0..<(m * m)).map { _ in Float.random(in: 0..<1, using: &random) }
            for _ in 0..<(m * 2) { d[Int.random(in: 0..<(m * m), using: &random)] = [.nan, .infinity, -.infinity][Int.random(in: 0..<3, using: &random)] }
            #expect(TokenPooler.wardMerges(squaredDistance: d, count: m, merges: m - 1)
                    == listScanMerges(d, count: m, merges: m - 1), "m \(m)")
        }
    }
}
