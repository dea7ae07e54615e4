import ArgumentParser
import Dispatch
import Foundation
import Plaid
import Tensor

/// `colgrep bench search`: PLAID index build, update and search on synthetic clustered multi-vector
/// data, with brute-force MaxSim in the same run (recall and its latency) and fast-plaid as the peer.
struct BenchSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Benchmark the PLAID index (build, search, update) against brute force and fast-plaid."
    )

    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Documents (units) in the main runs.") var documents = 100_000
    @Option(help: "Vector dimensions to run, comma-separated.") var dims = "48,128"
    @Option(help: "Residual bits to run, comma-separated (1, 2, 4, 8).") var nbits = "4,1"
    @Option(help: "Queries timed one at a time.") var queries = 100
    @Option(help: "Queries also scored by brute force for recall.") var bruteForceQueries = 50
    @Option(help: "Median document length in vectors.") var medianLength = 100.0
    @Option(help: "True cluster centres of the synthetic data.") var centres = 4096
    @Option(help: "BLAS threads (the machine's cores run the rest).") var threads = 2
    @Option(help: "Documents of the peer comparison run (fast-plaid and ours, 128-d, 4-bit).") var peerDocuments = 20_000
    @Option(help: "Python of a venv with fast-plaid.") var python = ".venv-bench/bin/python"
    @Option(help: "The fast-plaid baseline script.") var peerScript = "/work/shared/bench/fastplaid_baseline.py"
    @Flag(help: "Skip the fast-plaid peer.") var noPeer = false
    @Option(help: "Where indexes are built (removed afterwards unless --keep-indexes).") var workDirectory = FileManager.default.temporaryDirectory.path
    @Flag(help: "Keep the built indexes in --work-directory and reuse them in later runs with the same corpus settings (search figures only: build and update figures are then omitted).")
    var keepIndexes = false
    @Option(help: "Centroids probed per query token, comma-separated: each value is a search variant on the same index (default: COLGREP_N_IVF_PROBE or 8).")
    var nIvfProbe: String?
    @Option(help: "Candidates code-scored, comma-separated variants (default: COLGREP_N_FULL_SCORES or the library default).")
    var nFullScores: String?
    @Option(help: "Candidates exactly scored, comma-separated variants (default: COLGREP_N_EXACT_SCORES or the library default).")
    var nExactScores: String?

    func run() throws {
        if !noPeer {
            guard FileManager.default.isExecutableFile(atPath: python) else {
                print("fast-plaid peer: no Python at \(python). Create it with:\n"
                      + "  python3 -m venv .venv-bench && .venv-bench/bin/pip install fast-plaid\n"
                      + "or pass --python PATH, or --no-peer.")
                throw ExitCode(2)
            }
            guard FileManager.default.fileExists(atPath: peerScript) else {
                print("fast-plaid peer: script \(peerScript) not found (pass --peer-script PATH or --no-peer)")
                throw ExitCode(2)
            }
        }
        PlaidRuntime.setBLASThreads(threads)
        var report: [String: Any] = [
            "documents": documents, "threads": threads, "cpu_count": UsableCores.count,
            "median_length": medianLength, "centres": centres, "queries": queries, "brute_force_queries": bruteForceQueries,
        ]
        // Wall times depend on what else the machine runs: record the load beside them.
        report["load_average_start"] = loadAverage()
        var runs: [[String: Any]] = []
        for dim in dims.split(separator: ",").compactMap({ Int($0) }) {
            let bits = nbits.split(separator: ",").compactMap { Int($0) }
            runs.append(contentsOf: try measure(documents: documents, dim: dim, bits: bits))
        }
        report["runs"] = runs
        report["load_average_end"] = loadAverage()
        if !noPeer {
            log("peer scale: ours at \(peerDocuments) documents, 128-d")
            let ours = try measure(documents: peerDocuments, dim: 128, bits: [4], updates: false)[0]
            log("peer: fast-plaid at \(peerDocuments) documents (slow: it builds at a few thousand vectors/s)")
            let peer = try runPeer()
            var comparison: [String: Any] = ["ours": ours, "fast_plaid": peer]
            if let p50 = peer["search_p50_ms"] as? Double, let ourP50 = ours["search_p50_ms"] as? Double, ourP50 > 0 {
                comparison["search_p50_speedup"] = p50 / ourP50
            }
            if let build = peer["index_vectors_per_s"] as? Double, let ourBuild = ours["build_vectors_per_s"] as? Double, build > 0 {
                comparison["build_speedup"] = ourBuild / build
            }
            report["peer"] = comparison
        }
        let data = try JSONSerialization.data(withJSONObject: report, options: json ? [.sortedKeys] : [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data("bench search: \(message)\n".utf8))
    }

    /// The search variants: the grid of the comma-separated knob lists, each knob defaulting to its
    /// environment or library value.
    private func variants() -> [SearchParameters] {
        let base = SearchParameters.fromEnvironment()
        func list(_ text: String?) -> [Int?] {
            guard let text else { return [nil] }
            let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
            return values.isEmpty ? [nil] : values
        }
        var result: [SearchParameters] = []
        for probe in list(nIvfProbe) {
            for full in list(nFullScores) {
                for exact in list(nExactScores) {
                    var parameters = base
                    if let probe { parameters.nIVFProbe = probe }
                    if let full { parameters.nFullScores = full }
                    if let exact { parameters.nExactScores = exact }
                    result.append(parameters)
                }
            }
        }
        return result
    }

    /// Queries and their brute-force top-10 for one corpus: generated with it, or (with --keep-indexes,
    /// when every index is kept) read from the files written next to the indexes by an earlier run, so
    /// reruns skip generating and brute-forcing millions of vectors.
    private struct Workload {
        var queries: [HostMatrix]
        var truth: [[Int]]
        var bruteForceBatched: Double?
        var bruteForceSingle: Double?
        var indexed: [HostMatrix]?
        var spare: [HostMatrix]?
    }

    private func indexName(dim: Int, nbits: Int, count: Int) -> String {
        keepIndexes
            ? "colgrep-bench-search-\(dim)-\(nbits)-\(count)-\(Int(medianLength))-\(centres)"
            : "colgrep-bench-search-\(dim)-\(nbits)-\(getpid())"
    }

    private func workload(count: Int, dim: Int, bits: [Int]) throws -> Workload {
        let work = URL(fileURLWithPath: workDirectory)
        let stem = "colgrep-bench-search-\(dim)-\(count)-\(Int(medianLength))-\(centres)-q\(queries)-b\(bruteForceQueries)"
        let queryFile = work.appendingPathComponent(stem + ".queries"), truthFile = work.appendingPathComponent(stem + ".truth.json")
        let indexesKept = bits.allSatisfy { nbits in
            (try? PlaidIndex.open(at: work.appendingPathComponent(indexName(dim: dim, nbits: nbits, count: count))))
                .map { $0.documentCount == count && $0.config.nbits == nbits } ?? false
        }
        if keepIndexes, indexesKept, let queries = try? VectorCache.read(queryFile), queries.count == self.queries,
           let data = try? Data(contentsOf: truthFile), let truth = try? JSONSerialization.jsonObject(with: data) as? [[Int]] {
            log("\(dim)-d: queries and brute-force results read from \(queryFile.path) and \(truthFile.lastPathComponent)")
            return Workload(queries: queries, truth: truth)
        }
        var clock = ContinuousClock.now
        let corpus = SyntheticCorpus(documents: count + 50, dim: dim, centres: centres, medianLength: medianLength,
                                     queries: queries, queryLength: 32, seed: UInt64(dim))
        let indexed = Array(corpus.documents.prefix(count))
        let vectors = indexed.reduce(0) { $0 + $1.rows }
        log("\(dim)-d: \(count) documents, \(vectors) vectors generated in \(seconds(since: clock)) s")
        // Brute-force results kept from an earlier run over the same (seeded, so identical) corpus serve an
        // index rebuilt in this run too (a new index format): the brute force takes minutes at 100k units.
        if keepIndexes, let data = try? Data(contentsOf: truthFile), let truth = try? JSONSerialization.jsonObject(with: data) as? [[Int]],
           truth.count == min(bruteForceQueries, corpus.queries.count) {
            log("\(dim)-d: brute-force results read from \(truthFile.lastPathComponent)")
            if (try? VectorCache.read(queryFile))?.count != queries { try VectorCache.write(corpus.queries, to: queryFile) }
            return Workload(queries: corpus.queries, truth: truth, indexed: indexed, spare: Array(corpus.documents.suffix(50)))
        }
        clock = .now
        let truthQueries = Array(corpus.queries.prefix(bruteForceQueries))
        let truth = ExactMaxSim.topK(queries: truthQueries, documents: indexed, k: 10).map { $0.map(\.index) }
        let batched = seconds(since: clock) / Double(max(1, truthQueries.count)) * 1000
        clock = .now
        _ = ExactMaxSim.topK(queries: [corpus.queries[0]], documents: indexed, k: 10)
        let single = seconds(since: clock) * 1000
        log("\(dim)-d: brute force \(String(format: "%.1f", single)) ms for one query")
        if keepIndexes {
            try VectorCache.write(corpus.queries, to: queryFile)
            try JSONSerialization.data(withJSONObject: truth).write(to: truthFile, options: .atomic)
        }
        return Workload(queries: corpus.queries, truth: truth, bruteForceBatched: batched, bruteForceSingle: single,
                        indexed: indexed, spare: Array(corpus.documents.suffix(50)))
    }

    /// Builds, searches and updates indexes of each bit width over one synthetic corpus.
    private func measure(documents count: Int, dim: Int, bits: [Int], updates: Bool = true) throws -> [[String: Any]] {
        var clock = ContinuousClock.now
        let load = try workload(count: count, dim: dim, bits: bits)
        var results: [[String: Any]] = []
        for nbits in bits {
            let directory = URL(fileURLWithPath: workDirectory).appendingPathComponent(indexName(dim: dim, nbits: nbits, count: count))
            defer { if !keepIndexes { try? FileManager.default.removeItem(at: directory) } }
            var reused: PlaidIndex?
            // A kept index is opened with every checksum verified: that reads each page through the index's
            // mappings, as building it did in the process that built it, so a rerun times the same warm
            // steady state as a long-running (served) process — not the page faults of first touches.
            if keepIndexes, let kept = try? PlaidIndex.open(at: directory, verification: .full), kept.documentCount == count, kept.config.nbits == nbits {
                reused = kept
                log("\(dim)-d \(nbits)-bit: reusing the index in \(directory.path)")
            }
            var build = 0.0, buildCPU = 0.0
            let index: PlaidIndex
            var vectors = load.indexed?.reduce(0) { $0 + $1.rows }
            if let reused {
                index = reused
            } else {
                guard let indexed = load.indexed else { throw ValidationError("no corpus generated for \(directory.path)") }
                try? FileManager.default.removeItem(at: directory)
                let documents = indexed.enumerated().map { (id: Int64($0.offset), vectors: $0.element) }
                clock = .now
                let buildCPUStart = processCPUSeconds()
                index = try PlaidIndex.create(at: directory, documents: documents, config: PlaidConfig(nbits: nbits), backend: nil)
                build = seconds(since: clock)
                buildCPU = processCPUSeconds() - buildCPUStart
                log("\(dim)-d \(nbits)-bit: built in \(String(format: "%.2f", build)) s (\(Int(Double(vectors ?? 0) / build)) vectors/s), K = \(index.centroidCount)")
            }
            if vectors == nil { vectors = index.tokenCount }

            for (v, parameters) in variants().enumerated() {
                var result = search(index, load: load, parameters: parameters)
                result.merge(["dim": dim, "nbits": nbits, "documents": count, "vectors": vectors ?? 0, "centroids": index.centroidCount,
                              "index_bytes": index.bytesOnDisk]) { $1 }
                if let single = load.bruteForceSingle, let batched = load.bruteForceBatched {
                    result["bruteforce_single_query_ms"] = single
                    result["bruteforce_batched_ms_per_query"] = batched
                }
                if reused == nil && v == 0 {
                    result["build_s"] = build
                    result["build_vectors_per_s"] = Double(vectors ?? 0) / build
                    result["build_cpu_s"] = buildCPU
                }
                log("\(dim)-d \(nbits)-bit probe \(parameters.nIVFProbe) full \(parameters.nFullScores) exact \(parameters.exactCount(topK: 10)): "
                    + "p50 \(String(format: "%.2f", result["search_p50_ms"] as! Double)) ms, recall \(result["recall_at_10"] as! Double)")
                results.append(result)
            }
            if updates && !keepIndexes, let spare = load.spare {
                // Add 10 units, five times; each is a full commit (segment file, manifest, fsyncs).
                var times: [Double] = []
                for round in 0..<5 {
                    let batch = (0..<10).map { (id: Int64(count + round * 10 + $0), vectors: spare[round * 10 + $0]) }
                    let start = ContinuousClock.now
                    try index.append(batch, backend: nil)
                    times.append(seconds(since: start) * 1000)
                }
                var last = results.removeLast()
                last["update_add_10_units_ms"] = percentile(times, 0.5)
                last["update_add_10_units_ms_all"] = times
                let start = ContinuousClock.now
                let reopened = try PlaidIndex.open(at: directory)
                last["open_verified_ms"] = seconds(since: start) * 1000
                last["documents_after_updates"] = reopened.documentCount
                results.append(last)
            }
        }
        return results
    }

    /// Times every query one at a time (after 10 warm-up searches) and measures recall@10 against
    /// the brute-force results.
    private func search(_ index: PlaidIndex, load: Workload, parameters: SearchParameters) -> [String: Any] {
        for query in load.queries.prefix(10) { _ = index.search(query: query, topK: 10, parameters: parameters) }
        var latencies: [Double] = []
        var cpuTimes: [Double] = []
        var found: [[Int64]] = []
        var stages: [String: Double] = [:]
        for query in load.queries {
            let start = ContinuousClock.now
            let cpuStart = processCPUSeconds()
            let hits = index.search(query: query, topK: 10, parameters: parameters, subset: nil, stageTimes: &stages)
            cpuTimes.append((processCPUSeconds() - cpuStart) * 1000)
            latencies.append(seconds(since: start) * 1000)
            found.append(hits.map(\.id))
        }
        var recall = 0.0
        for (q, exact) in load.truth.enumerated() {
            recall += Double(Set(found[q]).intersection(exact.map { Int64($0) }).count) / Double(max(1, exact.count))
        }
        recall /= Double(max(1, load.truth.count))
        return [
            "search_p50_ms": percentile(latencies, 0.5), "search_p95_ms": percentile(latencies, 0.95),
            // CPU time of the whole process (all threads) per search: robust to a loaded machine.
            "search_cpu_p50_ms": percentile(cpuTimes, 0.5), "search_cpu_p95_ms": percentile(cpuTimes, 0.95),
            "recall_at_10": recall,
            "n_ivf_probe": parameters.nIVFProbe, "n_full_scores": parameters.nFullScores,
            "n_exact_scores": parameters.exactCount(topK: 10), "centroid_score_threshold": parameters.centroidScoreThreshold,
            // Mean wall time per stage (ms) over the timed queries.
            "search_stage_mean_ms": stages.mapValues { $0 * 1000 / Double(max(1, load.queries.count)) },
        ]
    }

    private func runPeer() throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [peerScript, "--n-docs", String(peerDocuments), "--threads", String(threads),
                             "--n-queries", String(min(queries, 50)), "--no-batch",
                             "--index-dir", URL(fileURLWithPath: workDirectory).appendingPathComponent("colgrep-bench-fastplaid").path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("fast-plaid peer failed (exit \(process.terminationStatus))")
        }
        return object
    }

    /// The machine's 1-minute load average (nil where the system does not report one).
    private func loadAverage() -> Double? {
        var loads = [Double](repeating: 0, count: 3)
        return getloadavg(&loads, 3) >= 1 ? loads[0] : nil
    }

    /// User + system CPU seconds of this process so far.
    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }
}
