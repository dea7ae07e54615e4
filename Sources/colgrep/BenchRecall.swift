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
    @Option(help: "Residual bits of the index (1, 2, 4, 8).") var nbits = 4
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Keep the index in this directory and reuse it in later runs with the same units and bits (the 384-d build takes minutes).")
    var indexDirectory: String?
    @Flag(help: "Also measure where recall is lost: wider probing, no centroid threshold, every candidate code-scored, every candidate exactly scored, an exhaustive search, and brute force over the index's own reconstructions (the codec's ceiling).")
    var diagnose = false

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
        let truth = ExactMaxSim.topK(queries: queryVectors, documents: documents, k: 10).map { $0.map { Int64($0.index) } }
        let kept = indexDirectory.map { URL(fileURLWithPath: $0) }
        let directory = kept ?? FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-bench-recall-\(getpid())")
        defer { if kept == nil { try? FileManager.default.removeItem(at: directory) } }
        var build: Double?, buildCPU: Double?
        let index: PlaidIndex
        if kept != nil, let reused = try? PlaidIndex.open(at: directory), reused.documentCount == documents.count,
           reused.config.nbits == nbits, reused.dimension == documents.first?.cols {
            index = reused
        } else {
            try? FileManager.default.removeItem(at: directory)
            let start = ContinuousClock.now, cpuStart = Self.processCPUSeconds()
            index = try PlaidIndex.create(at: directory, documents: documents.enumerated().map { (Int64($0.offset), $0.element) },
                                          config: PlaidConfig(nbits: nbits), backend: nil)
            build = (ContinuousClock.now - start).seconds
            buildCPU = Self.processCPUSeconds() - cpuStart
        }
        let parameters = SearchParameters.fromEnvironment()
        let measured = Self.recall(index: index, queries: queryVectors, truth: truth, parameters: parameters)
        var report: [String: Any] = [
            "vectors_file": vectors, "units": documents.count, "token_vectors": raw.reduce(0) { $0 + $1.rows },
            "pool_factor": poolFactor, "pooled_vectors": tokens, "dim": documents.first?.cols ?? 0, "queries": queryVectors.count,
            "nbits": nbits, "centroids": index.centroidCount, "recall_at_10": measured.recall,
            "search_p50_ms": measured.p50, "search_cpu_p50_ms": measured.cpuP50, "index_bytes": index.bytesOnDisk,
            "goal_recall_min": 0.95, "goal_met": measured.recall >= 0.95,
            "n_ivf_probe": parameters.nIVFProbe, "n_full_scores": parameters.nFullScores,
            "n_exact_scores": parameters.exactCount(topK: 10), "centroid_score_threshold": parameters.centroidScoreThreshold,
        ]
        if let build {
            report["build_s"] = build
            report["build_vectors_per_s"] = Double(tokens) / build
            report["build_cpu_s"] = buildCPU
        }
        var diagnosis: [String: Double] = [:]
        if diagnose {
            let all = documents.count
            var variants: [(String, SearchParameters)] = []
            var wider = parameters
            wider.nIVFProbe *= 4
            variants.append(("probe_x4", wider))
            var open = parameters
            open.centroidScoreThreshold = -1
            variants.append(("no_threshold", open))
            var codes = parameters
            codes.nFullScores = all
            variants.append(("all_candidates_code_scored", codes))
            var exact = codes
            exact.nExactScores = all
            variants.append(("all_candidates_exact_scored", exact))
            let exhaustive = SearchParameters(nIVFProbe: index.centroidCount, centroidScoreThreshold: -1, nFullScores: all, nExactScores: all)
            variants.append(("exhaustive", exhaustive))
            for (name, variant) in variants {
                diagnosis[name] = Self.recall(index: index, queries: queryVectors, truth: truth, parameters: variant).recall
            }
            // The codec's ceiling: brute force over what the index stores, against brute force over the originals.
            let reconstructed = index.reconstructedDocuments()
            let ceiling = ExactMaxSim.topK(queries: queryVectors, documents: reconstructed.map { $0.vectors }, k: 10)
            var hits = 0.0
            for (q, found) in ceiling.enumerated() {
                hits += Double(Set(found.map { reconstructed[$0.index].id }).intersection(truth[q]).count) / Double(max(1, truth[q].count))
            }
            diagnosis["codec_ceiling_bruteforce_reconstructed"] = hits / Double(max(1, ceiling.count))
            // What a wider residual codec would allow: the same centroids, residuals re-quantised.
            let originals = documents.enumerated().map { (id: Int64($0.offset), vectors: $0.element) }
            for bits in [4, 6, 8] {
                let simulated = index.requantized(originals, residualBits: bits)
                let found = ExactMaxSim.topK(queries: queryVectors, documents: simulated.map { $0.vectors }, k: 10)
                var total = 0.0
                for (q, list) in found.enumerated() {
                    total += Double(Set(list.map { simulated[$0.index].id }).intersection(truth[q]).count) / Double(max(1, truth[q].count))
                }
                diagnosis["codec_ceiling_\(bits)bit_simulated"] = total / Double(max(1, found.count))
            }
            // What a re-rank of PLAID's best N with the original vectors (e.g. stored in fp16) would allow.
            for n in [20, 50, 100] {
                var total = 0.0
                for (q, query) in queryVectors.enumerated() {
                    let shortlist = index.search(query: query, topK: n, parameters: parameters).map(\.id)
                    let reranked = ExactMaxSim.topK(queries: [query], documents: shortlist.map { documents[Int($0)] }, k: 10)[0]
                    total += Double(Set(reranked.map { shortlist[$0.index] }).intersection(truth[q]).count) / Double(max(1, truth[q].count))
                }
                diagnosis["rerank_top\(n)_with_original_vectors"] = total / Double(max(1, queryVectors.count))
            }
            report["diagnosis_recall_at_10"] = diagnosis
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%d units, %d pooled %d-d vectors, K = %d, %d-bit: recall@10 %.3f (goal 0.95), search p50 %.1f ms (CPU %.1f ms), index %.1f MB",
                         documents.count, tokens, documents.first?.cols ?? 0, index.centroidCount, nbits, measured.recall, measured.p50,
                         measured.cpuP50, Double(index.bytesOnDisk) / 1e6)
                  + (build.map { String(format: ", build %.0f vectors/s", Double(tokens) / $0) } ?? ", reused index"))
            for (name, value) in diagnosis.sorted(by: { $0.key < $1.key }) { print("  \(name): " + String(format: "%.3f", value)) }
        }
    }

    /// Mean recall@10 of `index` against `truth` (ids per query), and the median search wall time and
    /// process CPU time (user + system, all threads) in ms.
    static func recall(index: PlaidIndex, queries: [HostMatrix], truth: [[Int64]],
                       parameters: SearchParameters) -> (recall: Double, p50: Double, cpuP50: Double) {
        var recall = 0.0
        var times: [Double] = [], cpuTimes: [Double] = []
        for (q, query) in queries.enumerated() {
            let start = ContinuousClock.now, cpuStart = processCPUSeconds()
            let found = Set(index.search(query: query, topK: 10, parameters: parameters).map(\.id))
            times.append((ContinuousClock.now - start).seconds * 1000)
            cpuTimes.append((processCPUSeconds() - cpuStart) * 1000)
            recall += Double(found.intersection(truth[q]).count) / Double(max(1, truth[q].count))
        }
        times.sort()
        cpuTimes.sort()
        return (recall / Double(max(1, queries.count)), times.isEmpty ? 0 : times[times.count / 2],
                cpuTimes.isEmpty ? 0 : cpuTimes[cpuTimes.count / 2])
    }

    /// User + system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// A flat file of matrices: per matrix, rows and cols (u32 each) then the row-major floats.
enum VectorCache {
    /// Writes matrices in the format `read` takes (atomically).
    static func write(_ matrices: [HostMatrix], to url: URL) throws {
        var data = Data()
        for matrix in matrices {
            withUnsafeBytes(of: UInt32(matrix.rows).littleEndian) { data.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(matrix.cols).littleEndian) { data.append(contentsOf: $0) }
            matrix.values.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        try data.write(to: url, options: .atomic)
    }

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
