import ArgumentParser
import Foundation
import Plaid
import Tensor
import TensorCUDA

/// `colgrep bench gpu-codec`: the codec's encoding of n clustered unit vectors in a cold build's batches, all on
/// the CPU, assigned on the GPU and packed on the CPU (the path before issue #7's residual packing on the device),
/// and assigned and packed on the GPU (only codes and packed bytes come back), alternating in one process; wall and
/// process CPU seconds of each, and the two GPU runs' outputs compared (codes, bytes and norms must be equal).
struct BenchGPUCodec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gpu-codec",
                                                    abstract: "Codec encoding: CPU vs GPU assignment vs GPU assignment and residual packing.")
    @Option var n = 4_000_000
    @Option var dim = 48
    @Option var k = 16_384
    @Option(help: "Residual bits (1, 2, 4, 8).") var nbits = 4
    @Option(help: "Rounds of the three ways, alternating.") var rounds = 2
    @Option var precision: CUDAPrecision = .bf16

    func run() throws {
        guard n > 0, dim > 0, k > 0, k <= n else { throw ValidationError("need 0 < k ≤ n and dim > 0") }
        let points = BenchGPUKMeans.clusteredUnitVectors(count: n, dim: dim, clusters: max(1, k / 4), seed: 17)
        let gpu = try makeBackend(.cuda, device: 0, precision: precision)
        let result = try CodecEncodeBenchmark.measure(points: points, dim: dim, k: k, nbits: nbits, device: gpu, rounds: rounds)
        let report: [String: Any] = [
            "n": n, "dim": dim, "k": result.k, "nbits": nbits, "gpu": gpu.name, "cpu_threads": UsableCores.count,
            "train_s": result.trainSeconds,
            "runs": result.runs.map { ["way": $0.label, "s": $0.seconds, "process_cpu_s": $0.cpuSeconds] },
            "gpu_pack_vs_host_pack_codes_differing": result.codesDiffering, "bytes_differing": result.bytesDiffering,
            "norms_differing": result.normsDiffering, "codes_equal_to_cpu_path": result.codesEqualToHost,
        ]
        let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }
}
