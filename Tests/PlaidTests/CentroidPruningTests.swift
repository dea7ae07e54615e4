import CKernels
import Foundation
@testable import Plaid
import Tensor
import Testing

/// The codes stage's centroid pruning (`prune.c`, `SearchContext.codeScores(_:live:)`): the compact
/// table of live centroids gives the scores of the full table with the pruned rows zeroed, the kernels'
/// AVX2 and scalar bodies agree, and pruning can only lower a document's approximate score, never that of
/// a document whose best tokens are all live (so it never pushes such a document out of the candidates).
@Suite struct CentroidPruningTests {
    /// A query × centroid table where the live centroids (best score ≥ 0.4) hold the highest value, as
    /// in search (pruned centroids score under the threshold for every query token).
    private func table(k: Int, nq: Int, stride: Int, generator: inout SplitMix64) -> (scores: [Float], live: [Int32]) {
        var scores = [Float](repeating: 0, count: k * stride)
        var live: [Int32] = []
        for c in 0..<k {
            let isLive = Int.random(in: 0..<10, using: &generator) < 2
            for q in 0..<nq { scores[c * stride + q] = Float.random(in: -0.3...0.39, using: &generator) }
            if isLive {
                live.append(Int32(c))
                scores[c * stride + Int.random(in: 0..<nq, using: &generator)] = Float.random(in: 0.4...1, using: &generator)
            }
        }
        return (scores, live)
    }

    @Test func compactTableScoresEqualTheFullTableWithPrunedRowsZeroed() {
        var generator = SplitMix64(seed: 21)
        for (k, nq) in [(300, 32), (1000, 7), (64, 40)] {
            let stride = (nq + 7) / 8 * 8, width = (nq + 31) / 32 * 32
            let (scores, live) = table(k: k, nq: nq, stride: stride, generator: &generator)
            var full = [UInt8](repeating: 0, count: k * width)
            ck_quantize_scores_u8(scores, k, nq, stride, &full, width)
            let liveSet = Set(live.map(Int.init))
            for c in 0..<k where !liveSet.contains(c) { for q in 0..<width { full[c * width + q] = 0 } }
            var compact = [UInt8](repeating: 9, count: (live.count + 1) * width)
            ck_quantize_live_scores_u8(scores, live, live.count, nq, stride, &compact, width)
            #expect(compact[0..<width].allSatisfy { $0 == 0 })
            for (i, c) in live.enumerated() {
                #expect(Array(compact[((i + 1) * width)..<((i + 2) * width)]) == Array(full[(Int(c) * width)..<((Int(c) + 1) * width)]))
            }
            var remap = [UInt16](repeating: 0, count: k)
            for (i, c) in live.enumerated() { remap[Int(c)] = UInt16(i + 1) }
            let documents = (0..<60).map { _ in
                (0..<Int.random(in: 1...130, using: &generator)).map { _ in UInt16.random(in: 0..<UInt16(k), using: &generator) }
            }
            let flat = documents.flatMap { $0 }
            var starts = [0]
            for document in documents { starts.append(starts[starts.count - 1] + document.count) }
            var batched = [Float](repeating: -1, count: documents.count)
            flat.withUnsafeBufferPointer { codes in
                let pointers: [UnsafePointer<UInt16>?] = documents.indices.map { codes.baseAddress! + starts[$0] }
                ck_code_maxsum_u8_remap_batch(pointers, documents.map(\.count), documents.count, remap, compact, width, nq, &batched)
            }
            for (i, document) in documents.enumerated() {
                let zeroed = ck_code_maxsum_u8_scalar(document, document.count, full, width, nq)
                #expect(ck_code_maxsum_u8_remap(document, document.count, remap, compact, width, nq) == zeroed)
                #expect(ck_code_maxsum_u8_remap_scalar(document, document.count, remap, compact, width, nq) == zeroed)
                #expect(batched[i] == Float(zeroed))
            }
        }
    }

    @Test func pruningOnlyLowersScoresAndKeepsFullyLiveDocuments() throws {
        let corpus = smallCorpus(documents: 400, dim: 48, queries: 12, seed: 7)
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        var prunedSomething = false
        for query in corpus.queries {
            var context = SearchContext(index: index, query: query, subset: nil)
            defer { context.recycle() }
            let rows = (0..<Int32(context.totalRows)).map { $0 }
            // A threshold that prunes part of K on this small index (the default's share is corpus-dependent).
            let (_, live) = context.probeAndPrune(parameters: SearchParameters(centroidScoreThreshold: 0.2))
            let live0 = try #require(live)
            let full = context.codeScores(rows)
            let pruned = context.codeScores(rows, live: live0)
            // The fallback for more live centroids than the compact map holds: the same scores.
            #expect(context.codeScores(rows, live: live0, compactBelow: 0) == pruned)
            prunedSomething = prunedSomething || live0.count < index.codec.centroidCount
            for i in rows.indices { #expect(pruned[i] <= full[i]) }
            // Documents pruning leaves whole keep their rank among the best n: every one in the unpruned
            // best n is in the pruned best n.
            let n = 40
            func best(_ scores: [Float]) -> Set<Int> {
                Set(rows.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(n))
            }
            let whole = rows.indices.filter { pruned[$0] == full[$0] }
            let before = best(full), after = best(pruned)
            for i in whole where before.contains(i) {
                // Ties at the cut may order equal scores either way: only a strictly better one must stay.
                let cut = rows.indices.map { pruned[$0] }.sorted(by: >)[n - 1]
                if pruned[i] > cut { #expect(after.contains(i)) }
            }
        }
        #expect(prunedSomething)
    }

    /// The search with pruning (opt-in) against brute-force MaxSim on the small corpus: recall stays
    /// where the unpruned codes stage had it.
    @Test func pruningKeepsSearchRecall() throws {
        let corpus = smallCorpus(documents: 400, dim: 48, queries: 12, seed: 9)
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let pruned = recall(index: index, corpus: corpus, parameters: SearchParameters(pruneCodeScores: true))
        let kept = recall(index: index, corpus: corpus)
        #expect(pruned >= kept - 0.02)
        #expect(pruned >= 0.9)
    }
}
