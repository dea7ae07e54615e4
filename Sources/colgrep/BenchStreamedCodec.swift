import ArgumentParser
import Foundation
import Plaid
import Tensor

/// `colgrep bench streamed-codec`: a cold build as the indexing pipeline now runs it (documents in
/// chunks, the codec trained on the first part of the run by `StreamedIndexBuilder`, the rest appended)
/// against the one-shot build over the same real pooled vectors (the peer): recall@10 against exact
/// MaxSim, the codec's quantisation error (mean cosine of a vector and its reconstruction), K, segments,
/// and build wall and CPU time. Vectors: `colgrep bench recall`'s cache
/// (scripts/fixtures/embed_recall_corpus.py).
struct BenchStreamedCodec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamed-codec",
        abstract: "Codec trained on the first part of a streamed build vs trained on everything: recall and quantisation error.")

    @Option(help: "Token vectors of the units (queries in FILE.queries), from scripts/fixtures/embed_recall_corpus.py.")
    var vectors = "/tmp/colgrep-recall-minilm.raw"
    @Option(help: "Units to index (at most those in the file).") var units = 2_000
    @Option(help: "Units per chunk of the streamed build (the pipeline's chunk).") var chunk = 512
    @Option(help: "Token pooling factor applied to the unit vectors (1: none).") var poolFactor = 2
    @Option(help: "BLAS threads.") var threads = 2
    @Option(help: "Residual bits of the index (1, 2, 4, 8).") var nbits = 8
    @Option(help: "Vectors whose reconstruction is compared (spread over the corpus).") var sample = 20_000
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: vectors), FileManager.default.fileExists(atPath: vectors + ".queries") else {
            print("bench streamed-codec: \(vectors) (and .queries) not found. Compute them once (slow, CPU encoder):\n"
                  + "  nice -n 19 python3 scripts/fixtures/embed_recall_corpus.py --colgrep .build/release/colgrep --out \(vectors)")
            throw ExitCode(2)
        }
        guard chunk > 0, units > 0 else { throw ValidationError("--chunk and --units must be positive") }
        PlaidRuntime.setBLASThreads(threads)
        let raw = Array(try VectorCache.read(URL(fileURLWithPath: vectors)).prefix(units))
        let queries = try VectorCache.read(URL(fileURLWithPath: vectors + ".queries"))
        let pooled = poolFactor > 1 ? raw.map { TokenPooler.pool($0, factor: poolFactor) } : raw
        let documents = pooled.enumerated().map { (id: Int64($0.offset), vectors: $0.element) }
        let truth = ExactMaxSim.topK(queries: queries, documents: pooled, k: 10).map { $0.map { Int64($0.index) } }
        let probe = Self.spread(pooled, count: sample)
        let config = PlaidConfig(nbits: nbits)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-bench-streamed-\(getpid())")
        defer { try? FileManager.default.removeItem(at: base) }

        var rows: [[String: Any]] = []
        func measure(_ name: String, _ build: (URL) throws -> (PlaidIndex, trainedOn: Int)) throws {
            let start = ContinuousClock.now, cpu = BenchRecall.processCPUSeconds()
            let (index, trainedOn) = try build(base.appendingPathComponent(name))
            let seconds = (ContinuousClock.now - start).seconds, cpuSeconds = BenchRecall.processCPUSeconds() - cpu
            let measured = BenchRecall.recall(index: index, queries: queries, truth: truth, parameters: SearchParameters())
            rows.append(["build": name, "centroids": index.centroidCount, "segments": index.segmentCount, "trained_on_units": trainedOn,
                         "recall_at_10": measured.recall, "reconstruction_cosine": try index.reconstructionCosine(probe),
                         "build_s": seconds, "build_cpu_s": cpuSeconds])
        }
        try measure("one-shot") { directory in
            (try PlaidIndex.create(at: directory, documents: documents, config: config, backend: nil), documents.count)
        }
        try measure("streamed") { directory in
            let builder = StreamedIndexBuilder(directory: directory, config: config, plannedDocuments: documents.count)
            // Chunks strided over the run, as the pipeline deals a batch's units out to its chunks.
            let chunks = (documents.count + chunk - 1) / chunk
            var trainedOn = 0, added = 0
            for n in 0..<chunks {
                let part = stride(from: n, to: documents.count, by: chunks).map { documents[$0] }
                added += part.count
                if try builder.add(part, mustPersist: n == chunks - 1, backend: nil) == .created { trainedOn = added }
            }
            guard let index = builder.index else { throw ValidationError("no documents") }
            return (index, trainedOn)
        }
        let report: [String: Any] = ["units": documents.count, "pooled_vectors": documents.reduce(0) { $0 + $1.vectors.rows },
                                     "dim": pooled.first?.cols ?? 0, "nbits": nbits, "chunk": chunk, "queries": queries.count,
                                     "builds": rows]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("bench streamed-codec: \(documents.count) units, \(report["pooled_vectors"] ?? 0) pooled \(nbits)-bit vectors, chunk \(chunk)")
        print("build      K      segments  trained on  recall@10  reconstruction cos  build s  build CPU s")
        for row in rows {
            print(String(format: "%-9@  %-5d  %-8d  %-10d  %.4f     %.5f             %.2f     %.2f", row["build"] as! String as NSString,
                         row["centroids"] as! Int, row["segments"] as! Int, row["trained_on_units"] as! Int,
                         row["recall_at_10"] as! Double, row["reconstruction_cosine"] as! Double,
                         row["build_s"] as! Double, row["build_cpu_s"] as! Double))
        }
    }

    /// About `count` rows spread evenly over all documents' vectors, as one matrix.
    static func spread(_ documents: [HostMatrix], count: Int) -> HostMatrix {
        let dim = documents.first?.cols ?? 0
        let total = documents.reduce(0) { $0 + $1.rows }
        let step = max(1, total / max(1, count))
        var values: [Float] = []
        var index = 0
        for document in documents {
            for r in 0..<document.rows {
                if index % step == 0 { values.append(contentsOf: document.row(r)) }
                index += 1
            }
        }
        return HostMatrix(rows: dim > 0 ? values.count / dim : 0, cols: dim, values: values)
    }
}
