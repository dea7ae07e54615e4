import Foundation
import Tensor

/// The codec's encoding of a corpus's vectors as a cold build runs it (batches of 262,144 rows, the size
/// `PlaidIndex` hands a device), three ways on the same codec: all on the host; assigned on a device and packed
/// on the host; assigned and packed on the device (`ResidualQuantizing`). Wall and process CPU seconds of each,
/// and whether the two device runs gave the same codes, bytes and norms (`colgrep bench gpu-codec`).
public enum CodecEncodeBenchmark {
    public struct Run: Sendable {
        public let label: String
        public let seconds: Double
        public let cpuSeconds: Double
    }

    public struct Result: Sendable {
        public let k: Int
        public let trainSeconds: Double
        /// Every timed run, in the order they ran (the three ways alternate, `rounds` times).
        public let runs: [Run]
        /// Device assignment with host packing against device assignment and packing: positions that differ.
        public let codesDiffering: Int, bytesDiffering: Int, normsDiffering: Int
        /// Share of the host run's codes the device runs also chose (the searches differ only on near-ties).
        public let codesEqualToHost: Double
    }

    /// Rows a device encode call takes, as `PlaidIndex.encode` batches them for a backend.
    static let batchRows = 262_144

    /// Trains a `k`-centroid codec at `nbits` on (a sample of) `points` with `device`, then encodes all of them
    /// each way `rounds` times. `device` must search on its own (`KMeansAccelerating` and `CoarseToFineAssigning`)
    /// and pack (`ResidualQuantizing`), as the CUDA backend does.
    public static func measure(points: [Float], dim: Int, k: Int, nbits: Int, device: any Backend, rounds: Int) throws -> Result {
        guard let searching = device as? any KMeansAccelerating & CoarseToFineAssigning, device is any ResidualQuantizing else {
            throw PlaidError.invalidInput("bench gpu-codec: \(device.name) cannot both search and pack residuals on its device")
        }
        let count = points.count / dim
        var config = PlaidConfig()
        config.nbits = nbits
        var stages = StageClock()
        let trainStart = ContinuousClock.now
        let sample = Array(points.prefix(min(count, k * config.maxPointsPerCentroid) * dim))
        let codec = ResidualCodec.train(sample: sample, k: k, dim: dim, config: config, backend: device, stages: &stages)
        let trainSeconds = (ContinuousClock.now - trainStart).seconds
        let hostPacking = HostPacking(device: searching, forwardee: device)
        let ways: [(label: String, backend: (any Backend)?)] = [("host", nil), ("device assign, host pack", hostPacking),
                                                                ("device assign and pack", device)]
        var runs: [Run] = []
        var outputs: [String: Encoded] = [:]
        for _ in 0..<max(1, rounds) {
            for way in ways {
                let cpu0 = ProcessCPU.seconds(), start = ContinuousClock.now
                let encoded = encode(points, count: count, codec: codec, backend: way.backend)
                runs.append(Run(label: way.label, seconds: (ContinuousClock.now - start).seconds, cpuSeconds: ProcessCPU.seconds() - cpu0))
                outputs[way.label] = encoded
            }
        }
        let host = outputs["host"]!, split = outputs["device assign, host pack"]!, fused = outputs["device assign and pack"]!
        func differing<T: Equatable>(_ a: [T], _ b: [T]) -> Int { zip(a, b).filter { $0 != $1 }.count + abs(a.count - b.count) }
        return Result(k: codec.centroidCount, trainSeconds: trainSeconds, runs: runs, codesDiffering: differing(split.codes, fused.codes),
                      bytesDiffering: differing(split.packed, fused.packed), normsDiffering: differing(split.norms, fused.norms),
                      codesEqualToHost: Double(count - differing(host.codes, fused.codes)) / Double(max(1, count)))
    }

    private struct Encoded { var codes: [UInt16], packed: [UInt8], norms: [Float] }

    private static func encode(_ points: [Float], count: Int, codec: ResidualCodec, backend: (any Backend)?) -> Encoded {
        let dim = codec.dim, bytes = codec.bytesPerToken
        var out = Encoded(codes: [UInt16](repeating: 0, count: count), packed: [UInt8](repeating: 0, count: count * bytes),
                          norms: [Float](repeating: 0, count: count))
        let assigner = codec.makeAssigner()
        points.withUnsafeBufferPointer { x in
            out.codes.withUnsafeMutableBufferPointer { c in
                out.packed.withUnsafeMutableBufferPointer { p in
                    out.norms.withUnsafeMutableBufferPointer { r in
                        var start = 0
                        while start < count {
                            let rows = min(batchRows, count - start)
                            codec.encode(x.baseAddress! + start * dim, count: rows, assigner: assigner, backend: backend,
                                         codes: c.baseAddress! + start, residuals: p.baseAddress! + start * bytes,
                                         inverseNorms: r.baseAddress! + start)
                            start += rows
                        }
                    }
                }
            }
        }
        return out
    }

    /// The device's searches without its packing: the codec then packs on the host, as before `ResidualQuantizing`.
    private final class HostPacking: ForwardingBackend, KMeansAccelerating, CoarseToFineAssigning {
        let device: any KMeansAccelerating & CoarseToFineAssigning
        let forwardee: any Backend

        init(device: any KMeansAccelerating & CoarseToFineAssigning, forwardee: any Backend) {
            self.device = device
            self.forwardee = forwardee
        }

        func maximumProbes(dim: Int, lloyd: Bool) -> Int { device.maximumProbes(dim: dim, lloyd: lloyd) }

        func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] {
            try device.lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations)
        }

        func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int, exhaustiveIterations: Int,
                             probes: Int, grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] {
            try device.lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations,
                                       exhaustiveIterations: exhaustiveIterations, probes: probes, grouping: grouping)
        }

        func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
            try device.assignNearest(points: points, count: count, dim: dim, centroids: centroids, into: codes)
        }

        func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable, probes: Int,
                           into codes: UnsafeMutablePointer<Int32>) throws {
            try device.assignNearest(points: points, count: count, dim: dim, centroids: centroids, groups: groups, probes: probes, into: codes)
        }
    }
}
