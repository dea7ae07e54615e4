import Foundation
import Tensor

/// k-means with the vectors held on the device (`ResidentKMeansBackend`): the same training as `trainGrouped`'s
/// flat / coarse-to-fine path — the same sample rows (the indices `subsample` draws), the same initial centroids,
/// the same Lloyd iterations on the backend, the same grouping — except that the sample is gathered on the
/// device from rows copied there in the background while the host draws it, instead of gathered on the host
/// and copied up.
extension KMeans {
    /// What `trainResident` needs of `trainGrouped`'s setup.
    struct ResidentRun {
        let points: UnsafePointer<Float>
        let count: Int, dim: Int, k: Int, limit: Int, iterations: Int
        let training: Training
        let seed: UInt64
        let groupCount: Int
        let backend: (any Backend)?
    }

    /// Where the device-resident path draws Lloyd's sample from when it is a subset of the rows
    /// (`COLGREP_GPU_SAMPLE`): `host` (default) gathers it on the host and streams it up as without resident rows,
    /// Lloyd then running while the rest of the copy finishes behind it (the assignment waits for what is left);
    /// `device` gathers it from the rows copied up, once the whole copy is done (no second copy of the sample, but
    /// the copy of every row before Lloyd: 1.92 GB at 48-d, 5.12 GB at 128-d for 10M vectors).
    static let residentSampleOnDevice = ProcessInfo.processInfo.environment["COLGREP_GPU_SAMPLE"] == "device"

    /// The rows of `points` the training sample holds, in sample order: nil for all of them, in order (when
    /// there are at most `limit`), else the first `limit` of `subsample`'s shuffle. Gathering these rows gives
    /// `subsample`'s result exactly.
    static func sampleIndices(count: Int, limit: Int, seed: UInt64) -> [Int32]? {
        count > limit ? randomlyChosenFirst32(limit, of: count, seed: sampleSeed(seed)) : nil
    }

    /// Trains on `rows` (the device copy of `run.points`); nil when the backend fails (the caller then trains
    /// on the host-gathered sample, as without it).
    static func trainResident(_ run: ResidentRun, rows: any ResidentKMeansRows) -> Trained? {
        let dim = run.dim, k = run.k, iterations = run.iterations
        var clock = ContinuousClock.now
        let indices = sampleIndices(count: run.count, limit: run.limit, seed: run.seed)
        let sampleCount = indices?.count ?? run.count
        var steps = [(step: "sample", seconds: seconds(since: clock))]
        do {
            steps.append(("upload wait", try rows.finishUpload()))
        } catch {
            reportFallback("k-means upload", error)
            return nil
        }
        clock = ContinuousClock.now
        // As `trainGrouped` and `lloyd` decide: grouped Lloyd iterations where the backend prefers them.
        let probes = Self.lloydProbes
        let backendProbes = (run.backend as? any CoarseToFineAssigning)?.maximumProbes(dim: dim, lloyd: true) ?? 0
        var exhaustive = iterations
        if case .coarseToFine(let n) = run.training, backendProbes >= probes { exhaustive = n }
        let grouped = groupCount(centroids: k)
        let groupsIterations = exhaustive < iterations && grouped > 1 && probes <= backendProbes
        // Initial centroids: `lloyd`'s first k rows of its shuffle of the sample.
        let order = randomlyChosenFirst(k, of: sampleCount, seed: run.seed)
        var centroids = [Float](repeating: 0, count: k * dim)
        centroids.withUnsafeMutableBufferPointer { c in
            for i in 0..<k {
                let row = indices.map { Int($0[order[i]]) } ?? order[i]
                (c.baseAddress! + i * dim).update(from: run.points + row * dim, count: dim)
            }
        }
        if k < sampleCount {
            let seed = run.seed, backend = run.backend
            do {
                centroids = try rows.lloydIterations(sample: indices, centroids: centroids, iterations: iterations,
                                                     exhaustiveIterations: groupsIterations ? exhaustive : iterations, probes: probes) { current, iteration in
                    group(centroids: current, dim: dim, groupCount: grouped, seed: seed &+ UInt64(iteration), backend: backend)
                        .map { CentroidGroupTable(centers: $0.centers, offsets: $0.offsets, members: $0.members) }
                }
            } catch {
                reportFallback("k-means", error)
                return nil
            }
        }
        steps.append(("lloyd", seconds(since: clock)))
        clock = ContinuousClock.now
        LinearAlgebra.normalizeRows(&centroids, cols: dim)
        let groupBackend = run.backend is any KMeansAccelerating ? run.backend : nil
        let groups = run.groupCount > 1 ? group(centroids: centroids, dim: dim, groupCount: run.groupCount, seed: run.seed, backend: groupBackend) : nil
        steps.append(("normalise and group", seconds(since: clock)))
        return Trained(centroids: centroids, groups: groups, steps: steps)
    }
}
