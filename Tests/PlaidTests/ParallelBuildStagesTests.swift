import Foundation
import Testing

@testable import Plaid

// The build's stages that ran on one thread and now run on every core give what the one-thread code gave.

/// The IVF built in parallel parts is the one-pass counting sort's, list for list.
@Suite struct InvertedListsTests {
    /// The reference: one pass, rows in order, a row listed once per centroid however many of its tokens use it.
    private func reference(_ offsets: [UInt64], _ codes: [UInt16], k: Int) -> (offsets: [UInt32], rows: [UInt32]) {
        var lists = [[UInt32]](repeating: [], count: k)
        for row in 0..<(offsets.count - 1) {
            for t in Int(offsets[row])..<Int(offsets[row + 1]) where lists[Int(codes[t])].last != UInt32(row) {
                lists[Int(codes[t])].append(UInt32(row))
            }
        }
        var listOffsets: [UInt32] = [0]
        for list in lists { listOffsets.append(listOffsets.last! + UInt32(list.count)) }
        return (listOffsets, lists.flatMap { $0 })
    }

    @Test func partsGiveTheOnePassLists() {
        var g = SplitMix64(seed: 17)
        for (documents, k) in [(1, 3), (7, 5), (1_000, 64), (3_001, 257)] {
            var offsets: [UInt64] = [0]
            var codes: [UInt16] = []
            for _ in 0..<documents {
                let length = Int.random(in: 1...12, using: &g)
                // Few distinct codes per document: repeats inside a row must be listed once.
                for _ in 0..<length { codes.append(UInt16(Int.random(in: 0..<min(k, 6), using: &g) * (k / 6 + 1) % k)) }
                offsets.append(UInt64(codes.count))
            }
            let expected = reference(offsets, codes, k: k)
            for parts in [1, 2, 3, 8] {
                let built = InvertedLists.build(tokenOffsets: offsets, codes: codes, centroidCount: k, parts: parts)
                #expect(built.offsets == expected.offsets, "\(documents) documents, \(parts) parts")
                #expect(built.rows == expected.rows, "\(documents) documents, \(parts) parts")
            }
        }
        let empty = InvertedLists.build(tokenOffsets: [0], codes: [], centroidCount: 4, parts: 2)
        #expect(empty.offsets == [0, 0, 0, 0, 0] && empty.rows.isEmpty)
    }
}

/// The codec's residual sample, computed and sorted in halves on two threads, is the one-thread loop's sorted values.
@Suite struct SortedResidualsTests {
    @Test func halvesGiveTheOneThreadSort() {
        var g = SplitMix64(seed: 23)
        let dim = 16, k = 40
        let centroids = (0..<(k * dim)).map { _ in Float(Int.random(in: -4...4, using: &g)) * 0.25 }
        for (rows, stride) in [(5, 1), (3_000, 1), (9_000, 3), (20_000, 7)] {
            // Quarter steps: many exactly equal residuals (ties in the merge).
            let held = (0..<(rows * dim)).map { _ in Float(Int.random(in: -8...8, using: &g)) * 0.25 }
            let codes = (0..<rows).map { _ in UInt32.random(in: 0..<UInt32(k), using: &g) }
            var expected: [Float] = []
            var position = 0
            while position < rows * dim {
                let row = position / dim
                expected.append(held[position] - centroids[Int(codes[row]) * dim + position % dim])
                position += stride
            }
            expected.sort()
            let built = ResidualCodec.sortedResiduals(held: held, codes: codes, centroids: centroids, dim: dim, stride: stride)
            #expect(built.map(\.bitPattern) == expected.map(\.bitPattern), "\(rows) rows, stride \(stride)")
        }
    }
}

/// Lloyd's mean update, split by centroid range over the cores, is the one-thread loop's, bit for bit.
@Suite struct UpdateMeansTests {
    /// The reference: one pass in point order, then each non-empty centroid's sum times 1/size.
    private func reference(_ points: [Float], labels: [Int32], dim: Int, centroids: [Float]) -> [Float] {
        let k = centroids.count / dim
        var sums = [Float](repeating: 0, count: k * dim), sizes = [Int](repeating: 0, count: k)
        for (i, label) in labels.enumerated() {
            sizes[Int(label)] += 1
            for d in 0..<dim { sums[Int(label) * dim + d] += points[i * dim + d] }
        }
        var out = centroids
        for c in 0..<k where sizes[c] > 0 {
            let inverse = 1 / Float(sizes[c])
            for d in 0..<dim { out[c * dim + d] = sums[c * dim + d] * inverse }
        }
        return out
    }

    @Test func rangesGiveTheOneThreadMeans() {
        var g = SplitMix64(seed: 29)
        // Below and above the parallel threshold (65,536 points); k not a multiple of the parts; some clusters empty.
        for (count, k, dim) in [(1_000, 37, 8), (70_001, 203, 16), (131_072, 1_024, 8)] {
            let points = (0..<(count * dim)).map { _ in Float.random(in: -1...1, using: &g) }
            let labels = (0..<count).map { _ in Int32(Int.random(in: 0..<(k - 5), using: &g)) }
            let start = (0..<(k * dim)).map { _ in Float.random(in: -1...1, using: &g) }
            var centroids = start
            points.withUnsafeBufferPointer {
                KMeans.updateMeans(points: $0.baseAddress!, count: count, dim: dim, labels: labels, centroids: &centroids)
            }
            let expected = reference(points, labels: labels, dim: dim, centroids: start)
            #expect(centroids.map(\.bitPattern) == expected.map(\.bitPattern), "\(count) points, k = \(k)")
        }
    }
}
