import ArgumentParser
import Dispatch
import Foundation
import Plaid
import Tensor

/// `colgrep bench build`: PLAID index build from precomputed vectors (per stage), the add-10-units
/// update and opening, on synthetic clustered data; with `--peer-python`, fast-plaid builds the same
/// kind of data in the same run for the ratio.
struct BenchBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Benchmark PLAID index build, the 10-unit update and open (fast-plaid build as the peer).")

    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Documents (units) indexed.") var documents = 100_000
    @Option(help: "Vector dimension.") var dim = 48
    @Option(help: "Residual bits (1, 2, 4, 8).") var nbits = 4
    @Option(help: "Median document length in vectors.") var medianLength = 100.0
    @Option(help: "True cluster centres of the synthetic data.") var centres = 4096
    @Option(help: "Threads (BLAS and the build's workers).") var threads = 2
    @Option(help: "Timed updates of 10 units each.") var updates = 10
    @Option(help: "Median length of the units the updates add (default: --median-length). An update's cost depends on K and on what it adds, not on the index size, so a 100k-unit index of short units measures it at a fraction of the build time.")
    var updateMedianLength: Double?
    @Option(help: "Python of a venv with fast-plaid: runs the peer build (skipped when absent).") var peerPython: String?
    @Option(help: "Documents of the fast-plaid peer build (it builds at a few thousand vectors/s).") var peerDocuments = 2_000
    @Option(help: "The fast-plaid baseline script.") var peerScript = "/work/shared/bench/fastplaid_baseline.py"
    @Option(help: "Where the index is built (removed afterwards).") var workDirectory = FileManager.default.temporaryDirectory.path
    @Option(help: "Real token vectors (the `bench recall` file) instead of synthetic data: the first --documents units, pooled by --pool-factor; updates add later units.")
    var vectors: String?
    @Option(help: "Token pooling factor applied to --vectors units (1: none).") var poolFactor = 2

    func run() throws {
        PlaidRuntime.setBLASThreads(threads)
        var clock = ContinuousClock.now
        let spareCount = updates * 20  // warm rounds, then rounds that open the index first
        let indexed: [(id: Int64, vectors: HostMatrix)]
        let spare: [HostMatrix]
        if let vectors {
            let raw = try VectorCache.read(URL(fileURLWithPath: vectors))
            guard raw.count > documents else {
                throw ValidationError("\(vectors) holds \(raw.count) units; pass --documents below that (updates add the units after them)")
            }
            let pooled = raw.map { poolFactor > 1 ? TokenPooler.pool($0, factor: poolFactor) : $0 }
            indexed = pooled.prefix(documents).enumerated().map { (id: Int64($0.offset), vectors: $0.element) }
            // Units after the indexed ones, cycled when the file has fewer than the updates need.
            spare = (0..<spareCount).map { pooled[documents + $0 % (pooled.count - documents)] }
        } else {
            let corpus = SyntheticCorpus(documents: documents, dim: dim, centres: centres, medianLength: medianLength,
                                         queries: 0, seed: UInt64(dim))
            indexed = corpus.documents.enumerated().map { (id: Int64($0.offset), vectors: $0.element) }
            // Same seed, so the same cluster centres.
            spare = SyntheticCorpus(documents: spareCount, dim: dim, centres: centres, medianLength: updateMedianLength ?? medianLength,
                                    queries: 0, seed: UInt64(dim)).documents
        }
        let dim = indexed.first?.vectors.cols ?? dim
        let vectors = indexed.reduce(0) { $0 + $1.vectors.rows }
        let source = self.vectors ?? "synthetic"

        log("\(documents) documents, \(vectors) \(dim)-d vectors generated in \((ContinuousClock.now - clock).seconds) s")

        let directory = URL(fileURLWithPath: workDirectory).appendingPathComponent("colgrep-bench-build-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try? FileManager.default.removeItem(at: directory)
        clock = .now
        let cpuStart = processCPUSeconds()
        let index = try PlaidIndex.create(at: directory, documents: indexed, config: PlaidConfig(nbits: nbits), backend: nil)
        let build = (ContinuousClock.now - clock).seconds
        let buildCPU = processCPUSeconds() - cpuStart
        log(String(format: "built in %.2f s: %.0f vectors/s, K = %d", build, Double(vectors) / build, index.centroidCount))

        // Coarse-to-fine assignment against exhaustive search, on up to 20,000 indexed vectors.
        var sampleValues: [Float] = []
        let stride = max(1, vectors / 20_000)
        for i in Swift.stride(from: 0, to: indexed.count, by: stride) where sampleValues.count < 20_000 * dim {
            sampleValues.append(contentsOf: indexed[i].vectors.values)
        }
        let quality = try index.assignmentQuality(HostMatrix(rows: sampleValues.count / dim, cols: dim, values: sampleValues))
        log(String(format: "assignment: %.4f of %d vectors get their nearest centroid; mean cosine %.4f (exhaustive %.4f)",
                   quality.agreement, quality.vectors, quality.meanCosineAssigned, quality.meanCosineExact))
        let balance = index.centroidBalance()

        var updateTimes: [Double] = []
        var updateCPU: [Double] = []
        var updateStages: [String: [Double]] = [:]
        for round in 0..<updates {
            let batch = (0..<10).map { (id: Int64(documents + round * 10 + $0), vectors: spare[round * 10 + $0]) }
            let start = ContinuousClock.now
            let cpu = processCPUSeconds()
            try index.append(batch, backend: nil)
            updateTimes.append((ContinuousClock.now - start).seconds * 1000)
            updateCPU.append((processCPUSeconds() - cpu) * 1000)
            for (stage, seconds) in index.writeStages { updateStages[stage, default: []].append(seconds * 1000) }
        }
        // As a fresh `colgrep` process updates: open the index, then add 10 units.
        var coldTimes: [Double] = []
        var coldCPU: [Double] = []
        for round in updates..<(2 * updates) {
            let batch = (0..<10).map { (id: Int64(documents + round * 10 + $0), vectors: spare[round * 10 + $0]) }
            let start = ContinuousClock.now
            let cpu = processCPUSeconds()
            let opened = try PlaidIndex.open(at: directory)
            try opened.append(batch, backend: nil)
            coldTimes.append((ContinuousClock.now - start).seconds * 1000)
            coldCPU.append((processCPUSeconds() - cpu) * 1000)
        }
        let current = try PlaidIndex.open(at: directory)
        var start = ContinuousClock.now
        try current.delete(ids: Set((0..<10).map(Int64.init)))
        let deleteTime = (ContinuousClock.now - start).seconds * 1000
        start = .now
        let reopened = try PlaidIndex.open(at: directory)
        let openTime = (ContinuousClock.now - start).seconds * 1000
        start = .now
        try PlaidIndex.verify(at: directory)
        let verifyTime = (ContinuousClock.now - start).seconds * 1000

        var report: [String: Any] = [
            "documents": documents, "dim": dim, "source": source, "median_length": medianLength,
            "update_median_length": updateMedianLength ?? medianLength, "update_vectors_per_10_units": spare.reduce(0) { $0 + $1.rows } / max(1, 2 * updates), "nbits": nbits, "vectors": vectors, "centroids": index.centroidCount,
            "threads": threads, "cpu_count": UsableCores.count,
            "build_s": build, "build_cpu_s": buildCPU, "build_vectors_per_s": Double(vectors) / build,
            "build_vectors_per_cpu_s": Double(vectors) / buildCPU,
            "build_stages_s": Dictionary(index.buildStages.map { ($0.stage, $0.seconds) }, uniquingKeysWith: +),
            "build_stages_cpu_s": Dictionary(index.buildStagesCPU.map { ($0.stage, $0.seconds) }, uniquingKeysWith: +),
            "update_add_10_units_ms_p50": percentile(updateTimes, 0.5), "update_add_10_units_ms_max": updateTimes.max() ?? 0,
            "update_add_10_units_ms_all": updateTimes, "update_add_10_units_cpu_ms_p50": percentile(updateCPU, 0.5),
            "update_add_10_units_stage_ms_p50": updateStages.mapValues { percentile($0, 0.5) }, "delete_10_units_ms": deleteTime,
            "update_open_and_add_10_units_ms_p50": percentile(coldTimes, 0.5), "update_open_and_add_10_units_cpu_ms_p50": percentile(coldCPU, 0.5),
            "update_open_and_add_10_units_ms_all": coldTimes,
            "open_ms": openTime, "verify_all_checksums_ms": verifyTime, "documents_after_updates": reopened.documentCount,
            "segments_after_updates": reopened.segmentCount,
            "assignment": ["vectors": quality.vectors, "exact_agreement": quality.agreement, "mean_cosine": quality.meanCosineAssigned,
                           "mean_cosine_exhaustive": quality.meanCosineExact, "exhaustive": quality.exhaustive],
            "centroid_balance": ["empty": balance.empty, "at_most_2_vectors": balance.tiny, "largest": balance.largest,
                                 "p99": balance.percentile99, "mean": balance.mean, "size_seen_by_vector": balance.sizeSeenByVector],
            "goals": ["build_vectors_per_s_min": 1_000_000, "update_add_10_units_ms_max": 50],
        ]
        if let peerPython {
            log("peer: fast-plaid building \(peerDocuments) documents")
            let peer = try runPeer(python: peerPython)
            report["peer_fast_plaid"] = peer
            if let rate = peer["index_vectors_per_s"] as? Double, rate > 0 {
                report["build_speedup_vs_fast_plaid"] = Double(vectors) / build / rate
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    private func runPeer(python: String) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [peerScript, "--n-docs", String(peerDocuments), "--threads", String(threads), "--dim", String(dim),
                             "--len-median", String(medianLength), "--nbits", String(nbits), "--n-queries", "5", "--warmup", "1",
                             "--no-batch",
                             "--index-dir", URL(fileURLWithPath: workDirectory).appendingPathComponent("colgrep-bench-build-peer").path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("fast-plaid peer failed (exit \(process.terminationStatus)); pass a venv with fast-plaid or drop --peer-python")
        }
        return object
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data("bench build: \(message)\n".utf8))
    }

    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    private func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }
}
