import Dispatch
import Foundation
@testable import Plaid
import Tensor
import Testing

/// `SearchScratch`: arrays handed back are reused (no new storage) with the requested count, and a
/// search that reuses the previous searches' arrays (stale contents included) returns what a fresh
/// index returns, also when searches run concurrently.
@Suite struct SearchScratchTests {
    @Test func poolReusesStorageAndSizesArraysExactly() {
        var pool = ScratchArrayPool<Float>()
        var first = pool.take(1000, filler: 0)
        #expect(first.count == 1000 && first.allSatisfy { $0 == 0 })
        for i in first.indices { first[i] = 7 }
        let storage = first.withUnsafeBufferPointer { $0.baseAddress }
        pool.give(&first)
        #expect(first.isEmpty)
        // Smaller: the same storage, stale values kept.
        var smaller = pool.take(600, filler: 0)
        #expect(smaller.count == 600 && smaller.withUnsafeBufferPointer { $0.baseAddress } == storage)
        #expect(smaller.allSatisfy { $0 == 7 })
        pool.give(&smaller)
        // Back to the larger count within the kept capacity: the added elements are the filler.
        let regrown = pool.take(900, filler: -1)
        #expect(regrown.count == 900 && regrown.withUnsafeBufferPointer { $0.baseAddress } == storage)
        #expect(regrown[..<600].allSatisfy { $0 == 7 } && regrown[600...].allSatisfy { $0 == -1 })
        // Nothing kept: a new array.
        #expect(pool.take(10, filler: 3) == [Float](repeating: 3, count: 10))
    }

    @Test func poolPicksTheSmallestArrayThatFitsAndKeepsAFewArrays() {
        var pool = ScratchArrayPool<UInt8>()
        var arrays = [50, 5000, 500].map { [UInt8](repeating: 1, count: $0) }
        let storages = arrays.map { array in array.withUnsafeBufferPointer { $0.baseAddress } }
        for i in arrays.indices { pool.give(&arrays[i]) }
        let picked = pool.take(400, filler: 0)
        #expect(picked.withUnsafeBufferPointer { $0.baseAddress } == storages[2])
        for _ in 0..<20 {
            var extra = [UInt8](repeating: 0, count: 10)
            pool.give(&extra)
        }
        // At most eight kept, the largest among them: a request for 4,000 still finds the 5,000.
        let large = pool.take(4000, filler: 0)
        #expect(large.withUnsafeBufferPointer { $0.baseAddress } == storages[1])
    }

    @Test func reusedScratchGivesTheSameResults() throws {
        let corpus = smallCorpus(documents: 300, dim: 48, queries: 10, seed: 13)
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let results = Self.results
        // Each query on a freshly opened index (nothing to reuse) …
        var fresh: [[Int64]] = []
        for query in corpus.queries { fresh.append(results(try PlaidIndex.open(at: directory), query)) }
        // … then all of them on one index, in reverse order and again, reusing the earlier ones' arrays.
        for query in corpus.queries.reversed() { _ = results(index, query) }
        for (q, query) in corpus.queries.enumerated() { #expect(results(index, query) == fresh[q]) }
        // Concurrent searches each take their own arrays.
        let shared = try PlaidIndex.open(at: directory)
        let queries = corpus.queries
        let box = ResultBox(count: queries.count * 3)
        DispatchQueue.concurrentPerform(iterations: box.count) { i in
            box.set(i, Self.results(shared, queries[i % queries.count]))
        }
        let concurrent = box.values
        for i in concurrent.indices { #expect(concurrent[i] == fresh[i % corpus.queries.count]) }
    }

    @Sendable static func results(_ index: PlaidIndex, _ query: HostMatrix) -> [Int64] {
        index.search(query: query, topK: 10, parameters: SearchParameters(nFullScores: 64)).map(\.id)
    }
}

/// Results written from concurrent searches.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [[Int64]]
    let count: Int

    init(count: Int) {
        self.count = count
        stored = [[Int64]](repeating: [], count: count)
    }

    func set(_ i: Int, _ value: [Int64]) { lock.withLock { stored[i] = value } }
    var values: [[Int64]] { lock.withLock { stored } }
}
