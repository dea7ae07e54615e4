import Foundation
import Plaid
import Tensor

/// A fresh temporary directory, removed by the caller with `cleanUp`.
func temporaryDirectory(_ label: String = #function) -> URL {
    let name = "plaid-test-\(label.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))"
    return FileManager.default.temporaryDirectory.appendingPathComponent(name)
}

func cleanUp(_ url: URL) { try? FileManager.default.removeItem(at: url) }

/// A small clustered corpus (fast in debug builds).
func smallCorpus(documents: Int = 300, dim: Int = 64, queries: Int = 20, seed: UInt64 = 1) -> SyntheticCorpus {
    SyntheticCorpus(documents: documents, dim: dim, centres: 256, medianLength: 32, queries: queries, queryLength: 16, seed: seed)
}

/// Settings that keep k-means small in tests (at most 512 centroids).
func testConfig(nbits: Int = 4) -> PlaidConfig {
    PlaidConfig(nbits: nbits, trainingDocuments: 100, maxCentroids: 512)
}

func documents(_ corpus: SyntheticCorpus, idOffset: Int64 = 0) -> [(id: Int64, vectors: HostMatrix)] {
    corpus.documents.enumerated().map { (Int64($0.offset) + idOffset, $0.element) }
}

/// Mean top-k overlap between PLAID results and exact MaxSim over the same vectors.
func recall(index: PlaidIndex, corpus: SyntheticCorpus, k: Int = 10, idOffset: Int64 = 0,
            parameters: SearchParameters = SearchParameters()) -> Double {
    let exact = ExactMaxSim.topK(queries: corpus.queries, documents: corpus.documents, k: k)
    var total = 0.0
    for (q, query) in corpus.queries.enumerated() {
        let found = Set(index.search(query: query, topK: k, parameters: parameters, subset: nil).map(\.id))
        let truth = Set(exact[q].map { Int64($0.index) + idOffset })
        total += Double(found.intersection(truth).count) / Double(truth.count)
    }
    return total / Double(corpus.queries.count)
}
