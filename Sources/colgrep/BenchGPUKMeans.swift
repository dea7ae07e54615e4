import ArgumentParser
import Dispatch
import Foundation
import Plaid
import Tensor
import TensorCUDA

/// `colgrep bench gpu-kmeans`: the index build's k-means + assignment (`KMeans.trainAndAssign`, the
/// code path of `ResidualCodec.train` and the codec's assignment) on n clustered unit vectors, with
/// every Lloyd assignment and the final assignment on the GPU (`backend.nearestCentroids`, fused GEMM +
/// argmax; coarse-to-fine where the backend offers the grouped search, as the CPU) against the CPU path
/// (coarse-to-fine, all cores) on the same vectors. The CPU trains on the
/// same bounded k-means sample; its assignment runs on `cpuAssignSample` of the vectors and is scaled
/// to n. Quality: the mean squared distance of `evalPoints` vectors to their nearest centroid under each
/// training (ratio GPU / CPU; 1 means equally good centroids), and to the centroid each path assigned,
/// with the share of assigned codes equal to the exact nearest centroid.
struct BenchGPUKMeans: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpu-kmeans", abstract: "k-means + assignment: CUDA vs CPU on the same vectors.")
    @Option var n = 10_000_000
    @Option var dim = 128
    @Option var k = 32768
    @Option(help: "Vectors the CPU path assigns (timed, then scaled to n).") var cpuAssignSample = 1_000_000
    @Option(help: "Vectors the quality comparison scores.") var evalPoints = 200_000
    @Option var precision: CUDAPrecision = .bf16
    @Option(help: "GPU runs (the first is reported as the result; later ones show the steady state).") var gpuRuns = 2
    @Option(name: .customLong("split-gpus"),
            help: "Also run with bulk assignment split over GPUs 0..<N (issue #9; 1 = skip), checking the codes equal one GPU's.")
    var splitGPUs = 1

    func run() throws {
        guard n > 0, dim > 0, k > 0, k <= n else { throw ValidationError("need 0 < k ≤ n and dim > 0") }
        var clock = ContinuousClock.now
        let points = Self.clusteredUnitVectors(count: n, dim: dim, clusters: max(1, k / 4), seed: 17)
        let generateSeconds = seconds(ContinuousClock.now - clock)
        let config = PlaidConfig()
        let gpu = try makeBackend(.cuda, device: 0, precision: precision)
        _ = KMeans.trainAndAssign(points: Array(points.prefix(4096 * dim)), dim: dim, k: 256, config: config, backend: gpu)  // kernels, cuBLASLt plans

        // Wall and process CPU (user + sys) seconds of each GPU run; the first is the result.
        var gpuRunsSeconds: [Double] = [], gpuRunsCPUSeconds: [Double] = [], gpuRunsTrainSeconds: [Double] = []
        var firstGPU: (centroids: HostMatrix, codes: [UInt32], trainSeconds: Double, steps: [(step: String, seconds: Double)])? = nil
        var gpuRunsSteps: [[String]] = []
        for _ in 0..<max(1, gpuRuns) {
            let cpuBefore = ProcessCPU.seconds()
            clock = ContinuousClock.now
            let run = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: gpu)
            gpuRunsSeconds.append(seconds(ContinuousClock.now - clock))
            gpuRunsCPUSeconds.append(ProcessCPU.seconds() - cpuBefore)
            gpuRunsTrainSeconds.append(run.trainSeconds)
            gpuRunsSteps.append(run.steps.map { "\($0.step) \(String(format: "%.4f", $0.seconds))" })
            if firstGPU == nil { firstGPU = run }
        }
        let onGPU = firstGPU!
        let gpuSeconds = gpuRunsSeconds[0]
        // The host feed alone (every row streamed up through the pinned buffers, nothing computed): what the
        // assignment's copy costs where its kernels are faster than the link.
        let feed = try (gpu as? CUDABackend).map { cuda in try points.withUnsafeBufferPointer { try cuda.measureRowFeed($0.baseAddress!, count: n, dim: dim) } }
        let feedBF16 = try (gpu as? CUDABackend).map { cuda in
            try points.withUnsafeBufferPointer { try cuda.measureRowFeed($0.baseAddress!, count: n, dim: dim, bf16: true) }
        }

        // The same training and assignment with assignment split over several GPUs (training stays on GPU 0).
        var split: [String: Any] = [:]
        if splitGPUs > 1 {
            var members: [CUDABackend] = []
            for ordinal in 0..<splitGPUs { members.append(try CUDABackend(device: ordinal, precision: precision)) }
            let group = SplitKMeansBackend(members: members)
            _ = KMeans.trainAndAssign(points: Array(points.prefix(65_536 * splitGPUs * dim)), dim: dim, k: 256, config: config, backend: group)
            var totals: [Double] = [], trains: [Double] = []
            for _ in 0..<max(1, gpuRuns) {
                clock = ContinuousClock.now
                let run = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: group)
                totals.append(seconds(ContinuousClock.now - clock))
                trains.append(run.trainSeconds)
            }
            // Same centroids, one GPU against the split: training on a GPU is not bit-reproducible (atomic
            // sums), so the codes are compared for one fixed set of centroids.
            var one = [Int32](repeating: -1, count: n), several = [Int32](repeating: -2, count: n)
            try points.withUnsafeBufferPointer { p in
                try one.withUnsafeMutableBufferPointer {
                    try members[0].assignNearest(points: p.baseAddress!, count: n, dim: dim, centroids: onGPU.centroids.values, into: $0.baseAddress!)
                }
                try several.withUnsafeMutableBufferPointer {
                    try group.assignNearest(points: p.baseAddress!, count: n, dim: dim, centroids: onGPU.centroids.values, into: $0.baseAddress!)
                }
            }
            let codesEqual = one == several
            split = ["split_gpus": splitGPUs, "split_runs_total_s": totals, "split_runs_train_s": trains,
                     "split_assign_speedup_first_run": (gpuSeconds - onGPU.trainSeconds) / max(1e-9, totals[0] - trains[0]),
                     "split_codes_equal_one_gpu": codesEqual]
        }

        let cpuSample = min(cpuAssignSample, n)
        let cpuBefore = ProcessCPU.seconds()
        clock = ContinuousClock.now
        let onCPU = KMeans.trainAndAssign(points: points, dim: dim, k: k, config: config, backend: nil, assignCount: cpuSample)
        let cpuSampleSeconds = seconds(ContinuousClock.now - clock)
        let cpuProcessSeconds = ProcessCPU.seconds() - cpuBefore
        let cpuAssignSeconds = cpuSampleSeconds - onCPU.trainSeconds
        let cpuSeconds = onCPU.trainSeconds + cpuAssignSeconds * Double(n) / Double(cpuSample)

        // Quality: exact nearest centroid (fp32 GPU search, host-side distances) under each training.
        let evaluator = try makeBackend(.cuda, device: 0, precision: .fp32)
        let evalCount = min(evalPoints, n)
        let evalVectors = HostMatrix(rows: evalCount, cols: dim, values: Array(points.prefix(evalCount * dim)))
        func meanCost(_ centroids: HostMatrix, _ codes: [Int32]) -> Double {
            var total = 0.0
            for (i, code) in codes.enumerated() {
                for d in 0..<dim {
                    let diff = Double(evalVectors.values[i * dim + d]) - Double(centroids.values[Int(code) * dim + d])
                    total += diff * diff
                }
            }
            return total / Double(codes.count)
        }
        // Each path's centroids: the exact nearest (fp32 GPU search) and the codes the path assigned; the
        // share of equal codes is the assignment's agreement with exact search (coarse-to-fine on both paths).
        func exactCodes(_ centroids: HostMatrix) throws -> [Int32] {
            try evaluator.nearestCentroids(evaluator.upload(evalVectors), centroids: evaluator.upload(centroids), metric: .euclidean)
        }
        let gpuExact = try exactCodes(onGPU.centroids), cpuExact = try exactCodes(onCPU.centroids)
        let gpuCost = meanCost(onGPU.centroids, gpuExact), cpuCost = meanCost(onCPU.centroids, cpuExact)
        let gpuAssigned = onGPU.codes.prefix(evalCount).map { Int32(bitPattern: $0) }
        let cpuAssigned = onCPU.codes.prefix(min(evalCount, cpuSample)).map { Int32(bitPattern: $0) }
        func agreement(_ a: [Int32], _ b: [Int32]) -> Double { Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(1, min(a.count, b.count))) }
        let gpuAssignedCost = meanCost(onGPU.centroids, gpuAssigned), cpuAssignedCost = meanCost(onCPU.centroids, cpuAssigned)
        var used = [Bool](repeating: false, count: k)
        for code in onGPU.codes { used[Int(code)] = true }
        let emptyGPU = used.filter { !$0 }.count
        var report: [String: Any] = [
            "n": n, "dim": dim, "k": k, "gpu": gpu.name, "kmeans_sample_points": min(n, k * config.maxPointsPerCentroid),
            "kmeans_iterations": config.kmeansIterations, "generate_s": generateSeconds,
            "gpu_train_s": onGPU.trainSeconds, "gpu_assign_s": gpuSeconds - onGPU.trainSeconds, "gpu_total_s": gpuSeconds,
            "cpu_train_s": onCPU.trainSeconds, "cpu_assign_sample": cpuSample, "cpu_assign_sample_s": cpuAssignSeconds,
            "cpu_total_scaled_s": cpuSeconds, "cpu_threads": UsableCores.count,
            "speedup_train": onCPU.trainSeconds / onGPU.trainSeconds, "speedup_total": cpuSeconds / gpuSeconds,
            "eval_points": evalCount, "mean_sq_distance_gpu": gpuCost, "mean_sq_distance_cpu": cpuCost,
            "cost_ratio_gpu_over_cpu": gpuCost / cpuCost, "gpu_centroids_without_points": emptyGPU,
            "gpu_codes_equal_exact": agreement(gpuAssigned, gpuExact), "cpu_codes_equal_exact": agreement(cpuAssigned, cpuExact),
            "assigned_mean_sq_distance_gpu": gpuAssignedCost, "assigned_mean_sq_distance_cpu": cpuAssignedCost,
            "assigned_cost_ratio_gpu_over_cpu": gpuAssignedCost / cpuAssignedCost,
            "gpu_runs_total_s": gpuRunsSeconds, "gpu_runs_train_s": gpuRunsTrainSeconds, "gpu_runs_process_cpu_s": gpuRunsCPUSeconds,
            "cpu_path_process_cpu_s_unscaled": cpuProcessSeconds, "gpu_runs_steps_s": gpuRunsSteps,
            "cpu_steps_s": onCPU.steps.map { "\($0.step) \(String(format: "%.4f", $0.seconds))" },
            "nearest_kernel": (gpu as? CUDABackend)?.nearestCentroidKernel.rawValue ?? "none",
        ]
        if let feed { report["row_feed_s"] = feed.seconds; report["row_feed_gbps"] = Double(feed.bytes) / feed.seconds / 1e9 }
        // Rows rounded to bf16 while staged (the exhaustive assignment's feed), in fp32 bytes a second.
        if let feedBF16 { report["row_feed_bf16_s"] = feedBF16.seconds; report["row_feed_bf16_gbps_as_fp32"] = Double(feedBF16.bytes) / feedBF16.seconds / 1e9 }
        report.merge(split) { $1 }
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }

    /// `count` unit vectors scattered around `clusters` random unit centres (noise 0.35 per unit of
    /// norm), generated in parallel with one seeded stream per block (deterministic for a seed).
    static func clusteredUnitVectors(count: Int, dim: Int, clusters: Int, seed: UInt64) -> [Float] {
        var centres = [Float](repeating: 0, count: clusters * dim)
        var state = seed
        @Sendable func next(_ s: inout UInt64) -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s) >> 40) / Float(1 << 23)  // uniform in [-1, 1)
        }
        for c in 0..<clusters {
            var norm: Float = 0
            for d in 0..<dim { let v = next(&state); centres[c * dim + d] = v; norm += v * v }
            let inverse = 1 / max(norm.squareRoot(), 1e-6)
            for d in 0..<dim { centres[c * dim + d] *= inverse }
        }
        let block = 65536
        let blocks = (count + block - 1) / block
        let noise = 0.35 / Float(dim).squareRoot() * 1.73
        return [Float](unsafeUninitializedCapacity: count * dim) { buffer, initialized in
            let out = SendablePointer(pointer: buffer.baseAddress!)
            centres.withUnsafeBufferPointer { centreBuffer in
                let centrePointer = SendablePointer(pointer: UnsafeMutablePointer(mutating: centreBuffer.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: blocks) { b in
                    var s = seed &+ UInt64(b + 1) &* 0x9E37_79B9_7F4A_7C15
                    for i in (b * block)..<min(count, (b + 1) * block) {
                        _ = next(&s)
                        let c = Int((s >> 33) % UInt64(clusters))
                        let row = out.pointer + i * dim
                        var norm: Float = 0
                        for d in 0..<dim {
                            let v = centrePointer.pointer[c * dim + d] + noise * next(&s)
                            row[d] = v
                            norm += v * v
                        }
                        let inverse = 1 / max(norm.squareRoot(), 1e-6)
                        for d in 0..<dim { row[d] *= inverse }
                    }
                }
            }
            initialized = count * dim
        }
    }
}

/// A pointer handed to concurrent blocks that write disjoint rows.
private struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
}
