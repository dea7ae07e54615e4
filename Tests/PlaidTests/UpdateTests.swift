import Foundation
import Plaid
import Tensor
import Testing

@Suite struct UpdateTests {
    @Test func streamedBuildMatchesOneShotRecall() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let all = documents(corpus)
        // Create from a first chunk, then append the rest in chunks, as the product indexes.
        var config = testConfig()
        config.retrainGrowthFactor = 0
        let index = try PlaidIndex.create(at: directory, documents: Array(all.prefix(100)), config: config, backend: nil)
        for start in stride(from: 100, to: all.count, by: 50) {
            try index.append(Array(all[start..<min(all.count, start + 50)]), backend: nil)
        }
        #expect(index.documentCount == all.count)
        #expect(index.segmentCount <= 4)
        #expect(recall(index: index, corpus: corpus) >= 0.95)
        let reopened = try PlaidIndex.open(at: directory)
        #expect(reopened.documentCount == all.count)
        #expect(recall(index: reopened, corpus: corpus) >= 0.95)
    }

    @Test func deleteHidesDocumentsAndSurvivesReopen() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let query = corpus.queries[0]
        let before = index.search(query: query, topK: 5).map(\.id)
        try index.delete(ids: [before[0], before[1]])
        let after = index.search(query: query, topK: 5).map(\.id)
        #expect(!after.contains(before[0]) && !after.contains(before[1]))
        #expect(after.first == before[2])
        #expect(index.documentCount == corpus.documents.count - 2)
        let reopened = try PlaidIndex.open(at: directory)
        #expect(reopened.documentCount == corpus.documents.count - 2)
        #expect(reopened.search(query: query, topK: 5).map(\.id) == after)
        // Unknown ids are ignored.
        try reopened.delete(ids: [999_999])
        #expect(reopened.documentCount == corpus.documents.count - 2)
    }

    /// A fresh instance finds replaced ids by scanning the segments (no location map): an id replaced
    /// twice is found in its live segment, never in the dead row, and stays live exactly once.
    @Test func freshInstancesLocateReplacedIDsBySegmentScan() throws {
        let corpus = smallCorpus(documents: 120, queries: 0)
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        var config = testConfig()
        config.retrainGrowthFactor = 0
        _ = try PlaidIndex.create(at: directory, documents: documents(corpus), config: config, backend: nil)
        for round in 0..<3 {
            let index = try PlaidIndex.open(at: directory)
            try index.append([(5, corpus.documents[10 + round]), (Int64(1000 + round), corpus.documents[20])], backend: nil)
            try PlaidIndex.open(at: directory).delete(ids: [Int64(30 + round), 99_999])
        }
        let verified = try PlaidIndex.open(at: directory, verification: .full)  // throws if an id is live twice
        #expect(verified.documentCount == 120 + 3 - 3)
        #expect(Set(verified.documentIDs) == Set((0..<120).map(Int64.init)).subtracting([30, 31, 32]).union([1000, 1001, 1002]))
    }

    @Test func appendReplacesExistingIDs() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let query = corpus.queries[3]
        let target = try #require(index.search(query: query, topK: 1).first?.id)
        #expect(target != 7)
        // Document 7 now holds the target's vectors: it becomes the best match, the old 7 is gone.
        try index.append([(7, corpus.documents[Int(target)])], backend: nil)
        #expect(index.documentCount == corpus.documents.count)
        let top = index.search(query: query, topK: 2).map(\.id)
        #expect(Set(top) == [7, target])
        let reopened = try PlaidIndex.open(at: directory)
        #expect(Set(reopened.search(query: query, topK: 2).map(\.id)) == [7, target])
    }

    @Test func compactionDropsDeadRows() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let bytes = index.bytesOnDisk
        try index.delete(ids: Set((0..<150).map(Int64.init)))
        // Half the rows are dead, over the 20 % share: the segment was rewritten without them.
        #expect(index.bytesOnDisk < bytes * 2 / 3)
        #expect(index.documentCount == corpus.documents.count - 150)
        let results = index.search(query: corpus.queries[0], topK: 10)
        #expect(results.allSatisfy { $0.id >= 150 })
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("segment-") }
        #expect(files.count == index.segmentCount)
    }

    @Test func retrainsWhenTheIndexOutgrowsItsCodec() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let all = documents(corpus)
        var config = testConfig()
        config.retrainGrowthFactor = 3
        let index = try PlaidIndex.create(at: directory, documents: Array(all.prefix(30)), config: config, backend: nil)
        let firstTraining = index.tokensAtTraining
        try index.append(Array(all[30...]), backend: nil)
        // Ten times the training data: the codec was retrained on a sample of everything.
        let allTokens = all.reduce(0) { $0 + $1.vectors.rows }
        #expect(firstTraining < allTokens / 5)
        #expect(index.tokensAtTraining == allTokens)
        #expect(index.segmentCount == 1)
        #expect(try PlaidIndex.open(at: directory).tokensAtTraining == allTokens)
        #expect(recall(index: index, corpus: corpus) >= 0.9)
    }

    @Test func rejectsBadInput() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let good = HostMatrix(rows: 2, cols: 8, values: (0..<16).map { Float($0) / 16 })
        #expect(throws: PlaidError.self) { try PlaidIndex.create(at: directory, documents: [], backend: nil) }
        #expect(throws: PlaidError.self) {
            try PlaidIndex.create(at: directory, documents: [(1, HostMatrix(rows: 2, cols: 6, values: [Float](repeating: 0.1, count: 12)))], backend: nil)
        }
        #expect(throws: PlaidError.self) { try PlaidIndex.create(at: directory, documents: [(1, good), (1, good)], backend: nil) }
        var bad = good
        bad.values[3] = .nan
        #expect(throws: PlaidError.self) { try PlaidIndex.create(at: directory, documents: [(1, good), (2, bad)], backend: nil) }
        #expect(throws: PlaidError.self) { try PlaidIndex.create(at: directory, documents: [(1, good)], config: PlaidConfig(nbits: 3), backend: nil) }
        let index = try PlaidIndex.create(at: directory, documents: [(1, good)], backend: nil)
        #expect(throws: PlaidError.self) {
            try index.append([(2, HostMatrix(rows: 1, cols: 16, values: [Float](repeating: 0.1, count: 16)))], backend: nil)
        }
        #expect(index.search(query: HostMatrix(rows: 1, cols: 16, values: [Float](repeating: 0, count: 16)), topK: 3).isEmpty)
        #expect(index.search(query: good, topK: 3).map(\.id) == [1])
        let nowhere = temporaryDirectory()
        #expect(throws: PlaidError.missing(directory: nowhere.path)) { try PlaidIndex.open(at: nowhere) }
    }
}
