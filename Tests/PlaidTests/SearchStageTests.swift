import CKernels
import Foundation
@testable import Plaid
import Tensor
import Testing

/// The search stages' internals: the two-thread IVF stage against the one-thread one, the unsorted
/// selection, and the diagnostics `bench recall --diagnose` relies on.
@Suite struct SearchStageTests {
    @Test func ivfStageSplitOverTwoThreadsMatchesOneThread() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        try index.delete(ids: [3, 4, 150])
        for query in corpus.queries.prefix(5) {
            let context = SearchContext(index: index, query: query, subset: nil)
            let probed = context.probe(parameters: SearchParameters())
            let one = context.ivfScores(probed: probed, splitAbove: .max)
            let two = context.ivfScores(probed: probed, splitAbove: 0)
            let candidates = context.bestReached(one, k: context.totalRows)
            #expect(candidates == context.bestReached(two, k: context.totalRows))
            #expect(!candidates.isEmpty)
            #expect(candidates == candidates.sorted())
            // Deleted rows are never candidates.
            #expect(!candidates.contains { [3, 4, 150].contains(context.documentID($0)) })
            for row in candidates { #expect(abs(one.cells[Int(row)].score - two.cells[Int(row)].score) <= 1e-4) }
            #expect(one.kept == two.kept && one.keep == two.keep)
        }
    }

    /// The IVF list search (a guess from the rows' spread, then galloping) against a linear scan: lists
    /// even and clustered, with repeated rows, sub-ranges, values outside the rows, and a `limit` that
    /// misjudges the spread (the guess is only where the search starts).
    @Test func ivfListSearchMatchesALinearScan() {
        var generator = SplitMix64(seed: 11)
        for (length, limit) in [(0, 10), (1, 10), (7, 100), (300, 1000), (1372, 100_000), (2000, 500), (500, 1 << 20)] {
            for clustered in [false, true] {
                var rows = (0..<length).map { _ in UInt32.random(in: 0..<UInt32(limit), using: &generator) }
                if clustered { rows = rows.map { $0 / 7 } }
                rows.sort()
                let probes: [UInt32] = [0, 1, UInt32(limit / 2), UInt32(limit - 1), UInt32(limit), UInt32(limit + 5)]
                    + (0..<12).map { _ in UInt32.random(in: 0...UInt32(limit), using: &generator) }
                var wrong: [String] = []
                rows.withUnsafeBufferPointer { buffer in
                    let ranges = [(0, length), (length / 3, length), (0, length / 2), (length / 4, length / 4)]
                    for (from, to) in ranges {
                        for value in probes {
                            let expected = rows[from..<to].firstIndex { $0 >= value } ?? to
                            for assumed in [limit, max(1, limit / 10), limit * 10] {
                                let found = SearchContext.firstIndex(buffer, from: from, to: to, atLeast: value, of: assumed)
                                if found != expected { wrong.append("\(from)..<\(to) ≥ \(value) (limit \(assumed)): \(found), not \(expected)") }
                            }
                        }
                    }
                }
                #expect(wrong.isEmpty, "\(length) rows below \(limit), clustered \(clustered): \(wrong.prefix(3))")
            }
        }
    }

    @Test func ivfAccumulateAddsOncePerMark() {
        var cells = [ck_ivf_cell](repeating: ck_ivf_cell(score: 0, mark: 0), count: 20)
        let rows: [UInt32] = [0, 2, 5, 9]
        ck_ivf_accumulate(rows, rows.count, 10, 0.5, 1, &cells)
        ck_ivf_accumulate([2, 3], 2, 10, 0.25, 1, &cells)  // row 12 already has mark 1
        ck_ivf_accumulate([2], 1, 10, 0.125, 2, &cells)
        var expected = [Float](repeating: 0, count: 20)
        expected[10] = 0.5; expected[12] = 0.625; expected[13] = 0.25; expected[15] = 0.5; expected[19] = 0.5
        #expect(cells.map(\.score) == expected)
        #expect(cells[12].mark == 2 && cells[13].mark == 1 && cells[11].mark == 0)
    }

    /// The u8 table of the codes stage (SIMD body) equals the scalar formula byte for byte — negative scores,
    /// scores over the maximum given to the row form, query tokens not a multiple of 8, padded widths —
    /// and rows quantised in pieces with the table's maximum equal the whole table.
    @Test func quantizedScoresMatchTheScalarFormula() {
        var generator = SplitMix64(seed: 11)
        for (k, nq, stride, width) in [(37, 32, 32, 32), (50, 5, 8, 32), (64, 33, 40, 64), (9, 12, 16, 32)] {
            let scores = (0..<(k * stride)).map { i in i % stride < nq ? Float.random(in: -0.6...0.95, using: &generator) : 0 }
            var whole = [UInt8](repeating: 7, count: k * width)
            ck_quantize_scores_u8(scores, k, nq, stride, &whole, width)
            var high: Float = 0
            for c in 0..<k { for q in 0..<nq { high = max(high, scores[c * stride + q]) } }
            let scale = 255 / high
            for c in 0..<k {
                for q in 0..<width {
                    var expected: UInt8 = 0
                    if q < nq {
                        let v = scores[c * stride + q] * scale + 0.5
                        expected = v < 0 ? 0 : (v > 255 ? 255 : UInt8(v))
                    }
                    #expect(whole[c * width + q] == expected, "k \(k) nq \(nq): row \(c) column \(q)")
                }
            }
            var pieces = [UInt8](repeating: 7, count: k * width)
            for (first, count) in [(0, k / 3), (k / 3, k - k / 3)] {
                ck_quantize_scores_u8_rows(scores, first, count, nq, stride, high, &pieces, width)
            }
            #expect(pieces == whole)
            // A maximum below some scores (another table's) saturates them at 255, as the formula says.
            var capped = [UInt8](repeating: 7, count: k * width)
            ck_quantize_scores_u8_rows(scores, 0, k, nq, stride, high / 2, &capped, width)
            for c in 0..<k {
                for q in 0..<nq where scores[c * stride + q] * (255 / (high / 2)) + 0.5 > 255 { #expect(capped[c * width + q] == 255) }
            }
        }
    }

    @Test func centroidScoresMatchPlainProducts() {
        var generator = SplitMix64(seed: 3)
        for (rows, dim, stride) in [(37, 48, 32), (64, 128, 40), (5, 7, 8)] {
            let centroids = (0..<(rows * dim)).map { _ in Float.random(in: -1...1, using: &generator) }
            let queryT = (0..<(dim * stride)).map { _ in Float.random(in: -1...1, using: &generator) }
            var fast = [Float](repeating: 0, count: rows * stride), plain = fast
            ck_centroid_scores(centroids, rows, dim, queryT, stride, &fast)
            ck_centroid_scores_scalar(centroids, rows, dim, queryT, stride, &plain)
            #expect(fast == plain)
            for c in 0..<rows {
                for j in 0..<stride {
                    let reference = (0..<dim).reduce(0.0) { $0 + Double(centroids[c * dim + $1]) * Double(queryT[$1 * stride + j]) }
                    #expect(abs(Double(plain[c * stride + j]) - reference) < 1e-4)
                }
            }
        }
    }

    @Test func batchedCodeScoresMatchOneDocumentAtATime() {
        var generator = SplitMix64(seed: 5)
        let k = 300, width = 64, used = 40
        var table = [UInt8](repeating: 0, count: k * width)
        for c in 0..<k { for q in 0..<used { table[c * width + q] = UInt8.random(in: 0...255, using: &generator) } }
        let documents = (0..<50).map { _ in (0..<Int.random(in: 1...90, using: &generator)).map { _ in UInt16.random(in: 0..<UInt16(k), using: &generator) } }
        let flat = documents.flatMap { $0 }
        var starts = [0]
        for document in documents { starts.append(starts[starts.count - 1] + document.count) }
        var batched = [Float](repeating: -1, count: documents.count)
        flat.withUnsafeBufferPointer { codes in
            let pointers: [UnsafePointer<UInt16>?] = documents.indices.map { codes.baseAddress! + starts[$0] }
            let counts = documents.map(\.count)
            ck_code_maxsum_u8_batch(pointers, counts, documents.count, table, width, used, &batched)
        }
        for (i, document) in documents.enumerated() {
            let single = ck_code_maxsum_u8_scalar(document, document.count, table, width, used)
            #expect(batched[i] == Float(single))
        }
    }

    /// `ck_probe_centroids` (AVX2 here) and its scalar body against a sort: each token's first `probe`
    /// eligible centroids by (score decreasing, centroid increasing), every centroid's best score over
    /// the real tokens (padding columns hold a large value that must be ignored), the lists' floors.
    @Test func centroidProbingMatchesASort() {
        var generator = SplitMix64(seed: 11)
        for (k, nq, probe, levels, masked) in [(300, 1, 1, 0, false), (500, 13, 3, 0, true), (700, 32, 8, 0, false),
                                                 (400, 9, 8, 4, true), (5, 8, 8, 0, false)] {
            let stride = (nq + 7) / 8 * 8 + (nq % 2 == 0 ? 0 : 8)
            var table = [Float](repeating: 5, count: k * stride)
            for c in 0..<k {
                for q in 0..<nq {
                    let value = Float.random(in: -1...1, using: &generator)
                    table[c * stride + q] = levels > 0 ? (value * Float(levels)).rounded() / Float(levels) : value
                }
            }
            let eligible: [UInt8]? = masked ? (0..<k).map { _ in UInt8.random(in: 0...1, using: &generator) } : nil
            var expectedIDs = [Int32](repeating: -1, count: nq * probe)
            var expectedScores = [Float](repeating: -.infinity, count: nq * probe)
            for q in 0..<nq {
                let ranked = (0..<k).filter { eligible?[$0] != 0 }.sorted {
                    table[$0 * stride + q] != table[$1 * stride + q] ? table[$0 * stride + q] > table[$1 * stride + q] : $0 < $1
                }.prefix(probe)
                for (i, c) in ranked.enumerated() {
                    expectedIDs[q * probe + i] = Int32(c)
                    expectedScores[q * probe + i] = table[c * stride + q]
                }
            }
            let expectedBest = (0..<k).map { c in eligible?[c] == 0 ? -Float.infinity : (0..<nq).map { table[c * stride + $0] }.max()! }
            for scalar in [false, true] {
                var ids = [Int32](repeating: 7, count: nq * probe), scores = [Float](repeating: 7, count: nq * probe)
                var best = [Float](repeating: 7, count: k), floors = [Float](repeating: 7, count: nq)
                let run = scalar ? ck_probe_centroids_scalar : ck_probe_centroids
                if let eligible { run(table, k, nq, stride, probe, eligible, &scores, &ids, &best, &floors) } else {
                    run(table, k, nq, stride, probe, nil, &scores, &ids, &best, &floors)
                }
                #expect(ids == expectedIDs)
                #expect(scores == expectedScores)
                #expect(best == expectedBest)
                #expect(floors == (0..<nq).map { expectedScores[$0 * probe + probe - 1] })
            }
        }
    }

    /// `ck_select_reached_rows` against a sort of the reached, allowed rows: the same rows (the lowest
    /// among equal scores at the cut), in row order, for small inputs, large ones (where a sample
    /// estimates the threshold), many exact ties, and rows placed so that the sample misjudges the
    /// threshold (the selection then falls back to all rows); row counts that end mid-word.
    @Test func stageTwoSelectionMatchesASort() {
        var generator = SplitMix64(seed: 7)
        for (count, levels) in [(300, 0), (3000, 0), (50_000, 0), (50_021, 300), (5000, 1), (1000, -1), (50_000, -2)] {
            // The rows the selection samples (2,048, evenly spaced).
            let sampled = Set((0..<2048).map { $0 * count / 2048 })
            let scores = (0..<count).map { row in
                let value = Float.random(in: -1...1, using: &generator)
                // levels -1: every score equal; -2: the sampled rows above all others.
                if levels == -2 { return sampled.contains(row) ? 2 + value : value }
                return levels > 0 ? (value * Float(levels)).rounded() / Float(levels) : levels < 0 ? 0.5 : value
            }
            let stamp = (0..<count).map { _ in UInt16.random(in: 0...3, using: &generator) }
            var allowed = (0..<(count + 63) / 64).map { _ in UInt64.random(in: 0...UInt64.max, using: &generator) | 0xFFFF_0000_0000_0000 }
            allowed[0] = ~0
            let reached = (0..<count).filter { stamp[$0] != 0 && allowed[$0 >> 6] >> UInt64($0 & 63) & 1 != 0 }
            let cells = (0..<count).map { ck_ivf_cell(score: scores[$0], mark: UInt32(stamp[$0])) }
            // The kept rows' bitmap, built in two pieces as the IVF stage's threads do.
            let words = (count + 63) / 64
            var keep = [UInt64](repeating: ~0, count: words)
            let kept = ck_ivf_keep_words(cells, allowed, count, 0, words / 2, &keep) + ck_ivf_keep_words(cells, allowed, count, words / 2, words, &keep)
            #expect(kept == reached.count)
            let keptRows: [Int] = (0..<count).filter { (row: Int) -> Bool in (keep[row >> 6] >> UInt64(row & 63)) & 1 != 0 }
            #expect(keptRows == reached)
            let tail = UInt64(count % 64), last = keep[words - 1]
            if tail != 0 { #expect(last >> tail == 0) }
            for k in [1, 100, 2500, reached.count - 1, reached.count, reached.count + 5] where k > 0 {
                let expected = reached.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
                    .prefix(k).sorted().map(Int32.init)
                var out = [Int32](repeating: -1, count: k)
                var rows = [Int32](repeating: 0, count: count), values = [Float](repeating: 0, count: 2 * count)
                let written = ck_select_reached_rows(cells, keep, kept, count, k, &out, &rows, &values)
                #expect(written == min(k, reached.count))
                #expect(Array(out.prefix(written)) == expected)
            }
            var none = [Int32](repeating: -1, count: 1)
            var rows = [Int32](repeating: 0, count: count), values = [Float](repeating: 0, count: 2 * count)
            #expect(ck_select_reached_rows(cells, keep, kept, count, 0, &none, &rows, &values) == 0)
        }
    }

    @Test func reconstructionsAndRequantisationFollowTheCodec() throws {
        let corpus = smallCorpus(documents: 120)
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let docs = documents(corpus)
        let index = try PlaidIndex.create(at: directory, documents: docs, config: testConfig(nbits: 2), backend: nil)
        #expect(index.tokenCount == corpus.documents.reduce(0) { $0 + $1.rows })
        let stored = index.reconstructedDocuments()
        #expect(stored.map(\.id) == docs.map(\.id))
        // Mean squared error to the originals: the stored 2-bit form, a 2-bit re-quantisation (about
        // the same), an 8-bit one (much closer).
        func error(_ rebuilt: [(id: Int64, vectors: HostMatrix)]) -> Double {
            var total = 0.0, count = 0
            for (i, document) in rebuilt.enumerated() {
                #expect(document.vectors.rows == docs[i].vectors.rows)
                for (a, b) in zip(document.vectors.values, docs[i].vectors.values) { total += Double((a - b) * (a - b)); count += 1 }
            }
            return total / Double(max(1, count))
        }
        let storedError = error(stored)
        let twoBit = error(index.requantized(docs, residualBits: 2))
        let eightBit = error(index.requantized(docs, residualBits: 8))
        #expect(abs(twoBit - storedError) < 0.25 * storedError, "2-bit re-quantised \(twoBit) vs stored \(storedError)")
        #expect(eightBit < 0.1 * storedError, "8-bit \(eightBit) vs stored 2-bit \(storedError)")
        // Documents the index does not hold (or of another length) are skipped.
        let foreign = [(id: Int64(10_000), vectors: docs[0].vectors), (id: docs[1].id, vectors: docs[2].vectors)]
        #expect(index.requantized(foreign, residualBits: 4).count == (docs[1].vectors.rows == docs[2].vectors.rows ? 1 : 0))
    }
}
