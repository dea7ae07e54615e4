import Foundation
import Plaid
import Tensor
import Testing

@Suite struct SearchTests {
    @Test(arguments: [4, 2, 1])
    func recallAgainstExactMaxSim(nbits: Int) throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory("recall\(nbits)")
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(nbits: nbits), backend: nil)
        #expect(index.documentCount == corpus.documents.count)
        let value = recall(index: index, corpus: corpus)
        // 1-bit residuals trade accuracy for a quarter of the size.
        #expect(value >= (nbits == 1 ? 0.9 : 0.95), "recall@10 \(value) with \(nbits)-bit residuals")
        // The same results after reopening from disk.
        let reopened = try PlaidIndex.open(at: directory)
        let query = corpus.queries[0]
        #expect(reopened.search(query: query, topK: 10).map(\.id) == index.search(query: query, topK: 10).map(\.id))
    }

    @Test func subsetRestrictsResults() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let target = Int64(corpus.targets[1])
        let subset: Set<Int64> = Set((0..<Int64(corpus.documents.count)).filter { $0 % 7 == 3 }).union([target])
        let results = index.search(query: corpus.queries[1], topK: 10, subset: subset)
        #expect(results.count == 10)
        #expect(results.allSatisfy { subset.contains($0.id) })
        // The query was drawn from its target document: it ranks first inside the subset too.
        #expect(results.first?.id == target)
        // Without the target in the subset it cannot appear.
        let without = index.search(query: corpus.queries[1], topK: 10, subset: subset.subtracting([target]))
        #expect(!without.contains { $0.id == target } && without.count == 10)
    }

    @Test func targetDocumentIsFound() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        var hits = 0
        for (q, query) in corpus.queries.enumerated() where index.search(query: query, topK: 10).contains(where: { $0.id == Int64(corpus.targets[q]) }) {
            hits += 1
        }
        #expect(hits >= corpus.queries.count * 9 / 10)
    }
}
