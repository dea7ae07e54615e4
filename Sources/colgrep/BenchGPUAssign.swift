import ArgumentParser
import Foundation
import Tensor
import TensorCUDA

/// `colgrep bench gpu-assign`: nearest-centroid assignment (k-means / codec assignment step) of n random
/// unit vectors to k centroids on the GPU, against the CPU backend's path on a sample of the same vectors
/// (extrapolated linearly to n), with the agreement of the codes.
struct BenchGPUAssign: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpu-assign", abstract: "Nearest-centroid assignment: CUDA vs CPU.")
    @Option var n = 10_000_000
    @Option var dim = 128
    @Option var k = 32768
    @Option(help: "Vectors the CPU path assigns (timed, then scaled to n).") var cpuSample = 100_000
    @Option var precision: CUDAPrecision = .bf16

    func run() throws {
        var random = SeededGenerator(seed: 5)
        func unitRows(_ rows: Int) -> HostMatrix {
            var values = [Float](repeating: 0, count: rows * dim)
            for r in 0..<rows {
                var norm: Float = 0
                for c in 0..<dim { let v = Float.random(in: -1...1, using: &random); values[r * dim + c] = v; norm += v * v }
                let inv = 1 / norm.squareRoot()
                for c in 0..<dim { values[r * dim + c] *= inv }
            }
            return HostMatrix(rows: rows, cols: dim, values: values)
        }
        let vectors = unitRows(n), centroids = unitRows(k)
        let gpu = try makeBackend(.cuda, device: 0, precision: precision) as! CUDABackend
        var start = ContinuousClock.now
        let deviceVectors = try gpu.upload(vectors), deviceCentroids = try gpu.upload(centroids)
        try gpu.synchronize()
        let uploadSeconds = seconds(ContinuousClock.now - start)
        _ = try gpu.nearestCentroids(try gpu.upload(unitRows(1000)), centroids: deviceCentroids)  // warm-up
        // Three timed runs (vectors already on the device); the median is the result.
        var codes: [Int32] = []
        var runs: [Double] = []
        // Device time of the assignment kernel itself (events around each launch), apart from conversions and the download.
        gpu.profiling = true
        for _ in 0..<3 {
            start = ContinuousClock.now
            codes = try gpu.nearestCentroids(deviceVectors, centroids: deviceCentroids)
            runs.append(seconds(ContinuousClock.now - start))
        }
        let gpuSeconds = runs.sorted()[1]
        let kernelMilliseconds = try gpu.profileReport().filter { $0.op.hasPrefix("km_assign") }
        gpu.profiling = false
        let cpu = CPUBackend()
        let sample = min(cpuSample, n)
        let cpuCentroids = try cpu.upload(centroids)
        var cpuCodes: [Int32] = []
        start = ContinuousClock.now
        var row = 0
        while row < sample {  // chunks bound the n × k score matrix
            let count = min(4096, sample - row)
            let chunk = HostMatrix(rows: count, cols: dim, values: Array(vectors.values[(row * dim)..<((row + count) * dim)]))
            cpuCodes += try cpu.nearestCentroids(cpu.upload(chunk), centroids: cpuCentroids)
            row += count
        }
        let cpuSampleSeconds = seconds(ContinuousClock.now - start)
        let agree = zip(cpuCodes, codes.prefix(sample)).filter { $0 == $1 }.count
        let cpuSeconds = cpuSampleSeconds * Double(n) / Double(sample)
        let report: [String: Any] = ["n": n, "dim": dim, "k": k, "gpu": gpu.name, "cpu": cpu.name,
                                     "gpu_assign_s": gpuSeconds, "gpu_assign_runs_s": runs, "nearest_kernel": gpu.nearestCentroidKernel.rawValue, "gpu_upload_s": uploadSeconds,
                                     "kernel_ms_per_run": Dictionary(uniqueKeysWithValues: kernelMilliseconds.map { ($0.op, $0.milliseconds / Double($0.calls)) }),
                                     "cpu_sample": sample, "cpu_sample_s": cpuSampleSeconds, "cpu_extrapolated_s": cpuSeconds,
                                     "speedup_assign": cpuSeconds / gpuSeconds, "speedup_with_upload": cpuSeconds / (gpuSeconds + uploadSeconds),
                                     "code_agreement": Double(agree) / Double(sample)]
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }
}
