import ArgumentParser
import Foundation
import Plaid
import Tensor

/// `colgrep bench recall`: PLAID top-10 against brute-force exact MaxSim over the same pooled vectors,
/// on real embeddings of a code corpus. The token vectors are computed once (the CPU encoder is slow)
/// by scripts/fixtures/embed_recall_corpus.py with colgrep's own encoder and read from `--vectors`;
/// this command pools them with colgrep's TokenPooler, builds the index and compares.
struct BenchRecall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recall",
        abstract: "PLAID recall@10 against exact MaxSim on real (precomputed) embeddings of a code corpus.")

    @Option(help: "Token vectors of the units (queries in FILE.queries), from scripts/fixtures/embed_recall_corpus.py.")
    var vectors = "/tmp/colgrep-recall-minilm.raw"
    @Option(help: "Units to index (at most those in the file).") var units = 20_000
    @Option(help: "Token pooling factor applied to the unit vectors (1: none).") var poolFactor = 2
    @Option(help: "BLAS threads.") var threads = 2
    @Option(help: "Residual bits of the index.") var nbits = 4
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let cache = URL(fileURLWithPath: vectors)
        guard FileManager.default.fileExists(atPath: cache.path), FileManager.default.fileExists(atPath: vectors + ".queries") else {
            print("bench recall: \(vectors) (and .queries) not found. Compute them once (slow, CPU encoder):\n"
                  + "  nice -n 19 python3 scripts/fixtures/embed_recall_corpus.py --colgrep .build/release/colgrep --out \(vectors)")
            throw ExitCode(2)
        }
        PlaidRuntime.setBLASThreads(threads)
        let raw = Array(try VectorCache.read(cache).prefix(units))
        let queryVectors = try VectorCache.read(URL(fileURLWithPath: vectors + ".queries"))
        let documents = poolFactor > 1 ? raw.map { TokenPooler.pool($0, factor: poolFactor) } : raw
        let tokens = documents.reduce(0) { $0 + $1.rows }
        let truth = ExactMaxSim.topK(queries: queryVectors, documents: documents, k: 10)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-bench-recall-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let start = ContinuousClock.now
        let index = try PlaidIndex.create(at: directory, documents: documents.enumerated().map { (Int64($0.offset), $0.element) },
                                          config: PlaidConfig(nbits: nbits), backend: nil)
        let build = (ContinuousClock.now - start).seconds
        let parameters = SearchParameters.fromEnvironment()
        var recall = 0.0
        for (q, query) in queryVectors.enumerated() {
            let found = Set(index.search(query: query, topK: 10, parameters: parameters).map(\.id))
            let exact = truth[q].map { Int64($0.index) }
            recall += Double(found.intersection(exact).count) / Double(max(1, exact.count))
        }
        recall /= Double(max(1, queryVectors.count))
        let report: [String: Any] = [
            "vectors_file": vectors, "units": documents.count, "token_vectors": raw.reduce(0) { $0 + $1.rows },
            "pool_factor": poolFactor, "pooled_vectors": tokens, "dim": documents.first?.cols ?? 0, "queries": queryVectors.count,
            "nbits": nbits, "centroids": index.centroidCount, "build_s": build, "build_vectors_per_s": Double(tokens) / build,
            "recall_at_10": recall, "goal_recall_min": 0.95, "goal_met": recall >= 0.95,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%d units, %d pooled %d-d vectors, K = %d: recall@10 %.3f (goal 0.95), build %.0f vectors/s",
                         documents.count, tokens, documents.first?.cols ?? 0, index.centroidCount, recall, Double(tokens) / build))
        }
    }
}

/// A flat file of matrices: per matrix, rows and cols (u32 each) then the row-major floats.
enum VectorCache {
    static func read(_ url: URL) throws -> [HostMatrix] {
        let data = try Data(contentsOf: url)
        var result: [HostMatrix] = []
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset + 8 <= bytes.count {
                let rows = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let cols = Int(bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let size = rows * cols * 4
                guard rows > 0, cols > 0 else {
                    throw ValidationError("\(url.path): bad record at byte \(offset); delete the file to recompute it")
                }
                if offset + 8 + size > bytes.count { break }  // a torn last record of an unfinished run
                let values = [Float](unsafeUninitializedCapacity: rows * cols) { buffer, count in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + 8 + size)]))
                    count = rows * cols
                }
                result.append(HostMatrix(rows: rows, cols: cols, values: values))
                offset += 8 + size
            }
        }
        return result
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
