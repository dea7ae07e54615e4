import CKernels
import Dispatch
import Foundation
import Tensor

/// k-means as the reference trains its centroids (fastkmeans: random initial points, a few Lloyd
/// iterations on at most `maxPointsPerCentroid · k` points, L2-normalised centroids), with each Lloyd
/// iteration's assignment coarse-to-fine from K = 1,024 up: the current centroids are grouped around
/// G ≈ √K centres (k-means over the centroids) and each point scores the G centres, then the members
/// of its 8 best groups (`CentroidAssigner`), about `(G + 8·K/G)·d` multiply-adds instead of `K·d`
/// (12.8× fewer at K = 8,192). The same grouping of the final centroids is what encoding probes.
public enum KMeans {
    /// Trained centroids (`k × dim`, unit rows) and, for two-level training, their groups.
    struct Trained {
        var centroids: [Float]
        var groups: CentroidGroups?
        /// Wall seconds of each training step, in order (for `bench gpu-kmeans`).
        var steps: [(step: String, seconds: Double)] = []
    }

    /// Seconds since `start`.
    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Trains `k` unit centroids on the rows of `points` (row-major `count × dim`).
    public static func train(points: [Float], dim: Int, k: Int, config: PlaidConfig) -> HostMatrix {
        let trained = trainGrouped(points: points, dim: dim, k: k, config: config)
        return HostMatrix(rows: trained.centroids.count / dim, cols: dim, values: trained.centroids)
    }

    /// The index build's k-means and assignment in one call (for `colgrep bench gpu-kmeans`): `train`,
    /// with every Lloyd assignment on `backend` when one is given (a GPU's fused nearest-centroid
    /// search; without one, the CPU's coarse-to-fine path), then the first `assignCount` points (all
    /// by default) assigned to their nearest trained centroid the way the codec assigns them.
    public static func trainAndAssign(points: [Float], dim: Int, k: Int, config: PlaidConfig, backend: (any Backend)?,
                                      assignCount: Int? = nil, sampleOnDevice: Bool? = nil)
        -> (centroids: HostMatrix, codes: [UInt32], trainSeconds: Double, steps: [(step: String, seconds: Double)]) {
        let begin = ContinuousClock.now
        let count = points.count / dim
        // A backend that holds the vectors: copied up once (during sampling), trained on and assigned where they are.
        if let residentBackend = backend as? any ResidentKMeansBackend, (assignCount ?? count) >= count {
            let run = points.withUnsafeBufferPointer { p -> (centroids: HostMatrix, codes: [UInt32], trainSeconds: Double, steps: [(step: String, seconds: Double)])? in
                guard let rows = beginResident(residentBackend, points: p.baseAddress!, count: count, dim: dim) else { return nil }
                defer { _ = try? rows.finishUpload() }
                let trained = trainGrouped(points: points, dim: dim, k: k, config: config, backend: backend, resident: rows,
                                           sampleOnDevice: sampleOnDevice ?? residentSampleOnDevice)
                let trainSeconds = seconds(since: begin)
                // Training on a host-gathered sample leaves the copy running behind Lloyd: the assignment's passes wait
                // for their own rows only.
                var clock = ContinuousClock.now
                // Host panels only if the device fails (then packed per chunk, as the grouped search reads them).
                let assigner = CentroidAssigner(centroids: trained.centroids, dim: dim, groups: trained.groups, packsGroupsOnDemand: true)
                let setupSeconds = seconds(since: clock)
                clock = ContinuousClock.now
                let codes = assigner.assign(resident: rows, backend: backend) ?? assigner.assign(p.baseAddress!, count: count, backend: backend)
                let steps = trained.steps + [("assigner setup", setupSeconds), ("assign", seconds(since: clock))]
                return (HostMatrix(rows: trained.centroids.count / dim, cols: dim, values: trained.centroids), codes, trainSeconds, steps)
            }
            if let run { return run }
        }
        let trained = trainGrouped(points: points, dim: dim, k: k, config: config, backend: backend)
        let trainSeconds = seconds(since: begin)
        let n = min(assignCount ?? points.count / dim, points.count / dim)
        var clock = ContinuousClock.now
        // A backend with the grouped search reads the centroids as they are: no host panels packed up front.
        let assigner = CentroidAssigner(centroids: trained.centroids, dim: dim, groups: trained.groups,
                                        packsGroupsOnDemand: ((backend as? any CoarseToFineAssigning)?.maximumProbes(dim: dim, lloyd: false) ?? 0) > 0)
        let setupSeconds = seconds(since: clock)
        clock = ContinuousClock.now
        let codes = points.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: n, backend: backend) }
        let steps = trained.steps + [("assigner setup", setupSeconds), ("assign", seconds(since: clock))]
        return (HostMatrix(rows: trained.centroids.count / dim, cols: dim, values: trained.centroids), codes, trainSeconds, steps)
    }

    /// Two-level training: Lloyd iterations over all centroids after the per-group training (on MiniLM vectors the mean
    /// point–centroid cosine rose 0.8869 → 0.8879 from 2 to 4; each costs one coarse-to-fine pass
    /// over the sample).
    static let refinementIterations = 4

    /// How the centroids are trained.
    enum Training: Equatable, Sendable {
        /// Lloyd with every point scored against every centroid in every iteration (the reference).
        case flat
        /// Lloyd on √K coarse centres, per-group Lloyd, then refinement (`trainTwoLevel`).
        case twoLevel
        /// Lloyd whose first `exhaustiveIterations` iterations score every centroid and whose later
        /// ones assign coarse-to-fine over groups of the current centroids (`CentroidAssigner`).
        case coarseToFine(exhaustiveIterations: Int)
    }

    /// `COLGREP_KMEANS=flat | two-level | coarse[:N]` (N exhaustive iterations first, default 1); unset:
    /// `defaultTraining`.
    static let environmentTraining: Training? = {
        guard let value = ProcessInfo.processInfo.environment["COLGREP_KMEANS"] else { return nil }
        if value == "flat" { return .flat }
        if value == "two-level" { return .twoLevel }
        if value.hasPrefix("coarse") {
            let n = value.split(separator: ":").dropFirst().first.flatMap { Int($0) } ?? 1
            return .coarseToFine(exhaustiveIterations: max(0, n))
        }
        return nil
    }()

    /// Coarse-to-fine from the first iteration. Measured (docs/PERFORMANCE.md, "Session 4: k-means"):
    /// k-means 10.6 → 2.5 CPU s on 1.2M 48-d vectors (K = 8,192), 8-bit MiniLM build 170 → 29 CPU s,
    /// recall@10 within the seed-to-seed spread of flat training on both data sets (MiniLM: flat
    /// 0.952–0.965, coarse-to-fine 0.951–0.961; synthetic: flat 0.933–0.957, coarse-to-fine
    /// 0.953–0.957). Halving the sample (16 points per centroid) saves another 1.2 CPU s but measured
    /// 0.01 lower on MiniLM, and two-level training leaves ~11 % of the centroids empty.
    static let defaultTraining: Training = .coarseToFine(exhaustiveIterations: 0)

    /// `COLGREP_KMEANS_POINTS`: sample points per centroid instead of `PlaidConfig.maxPointsPerCentroid`
    /// (for measurements).
    /// Groups probed per sample point in Lloyd's grouped iterations: 4, half of what the final assignment of every
    /// vector probes (`CentroidAssigner.defaultProbes`). A point that misses its nearest centroid during training only
    /// nudges a mean; measured (docs/PERFORMANCE.md, "Session 13"): k-means CPU −36 % on the build goal's 2 Xeon
    /// cores, the same quality — synthetic recall@10 0.963 / 0.969 (48-d / 128-d) against 0.952 / 0.967 with 8,
    /// dev-split NDCG@10 hybrid 0.8510 against 0.8507, semantic-only 0.7102 against 0.7112. 2 probes left 854 of
    /// 8,192 centroids empty (8 probes: 287, 4: 364). `COLGREP_LLOYD_PROBES` overrides it, for measurements.
    static let defaultLloydProbes = 4
    static let lloydProbes: Int = ProcessInfo.processInfo.environment["COLGREP_LLOYD_PROBES"].flatMap { Int($0) }
        .flatMap { $0 > 0 ? $0 : nil } ?? defaultLloydProbes

    static let environmentPointsPerCentroid: Int? = ProcessInfo.processInfo.environment["COLGREP_KMEANS_POINTS"]
        .flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }

    /// `COLGREP_KMEANS_SEED`: mixed into the configured seed (to measure how recall varies between
    /// equally good trainings).
    static let environmentSeed: UInt64 = ProcessInfo.processInfo.environment["COLGREP_KMEANS_SEED"].flatMap { UInt64($0) } ?? 0

    /// Groups for coarse-to-fine assignment over centroids: Lloyd k-means on the centroids
    /// themselves; centres are the means of their members.
    static func group(centroids: [Float], dim: Int, groupCount: Int, seed: UInt64, backend: (any Backend)? = nil) -> CentroidGroups? {
        let k = centroids.count / dim
        guard k >= 4 * groupCount else { return nil }
        return group(centroids: centroids, dim: dim, initialCenters: initialGroupCenters(groupCount, of: k, seed: seed), backend: backend)
    }

    /// `group` from the centroids `initialCenters` as the group centres' starting points (what a backend grouping on its
    /// own side is handed: `groupingPlan`).
    static func group(centroids: [Float], dim: Int, initialCenters: [Int], backend: (any Backend)? = nil) -> CentroidGroups? {
        let k = centroids.count / dim, groupCount = initialCenters.count
        guard groupCount > 0, k >= 4 * groupCount else { return nil }
        let centers = centroids.withUnsafeBufferPointer {
            lloyd(points: $0.baseAddress!, count: k, dim: dim, k: groupCount, iterations: groupIterations, seed: 0, parallel: true,
                  backend: backend, startingFrom: initialCenters)
        }
        var labels = [Int32](repeating: 0, count: k)
        let packed = centers.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: groupCount) }
        centroids.withUnsafeBufferPointer { c in
            labels.withUnsafeMutableBufferPointer { nearestInParallel(packed, points: c.baseAddress!, count: k, into: $0.baseAddress!) }
        }
        var sizes = [Int](repeating: 0, count: groupCount)
        for label in labels { sizes[Int(label)] += 1 }
        let used = (0..<groupCount).filter { sizes[$0] > 0 }
        // Members group by group, each in increasing index order: a counting sort, one pass over the labels
        // (was one pass per group: 256 × 32,768 visits at K = 32,768, ~10 ms a grouping).
        var next = [Int](repeating: 0, count: groupCount)
        var offsets: [Int32] = [0]
        var usedCenters: [Float] = []
        for g in used {
            next[g] = Int(offsets.last!)
            offsets.append(offsets.last! + Int32(sizes[g]))
            usedCenters.append(contentsOf: centers[(g * dim)..<((g + 1) * dim)])
        }
        var members = [Int32](repeating: 0, count: k)
        for (j, label) in labels.enumerated() {
            members[next[Int(label)]] = Int32(j)
            next[Int(label)] += 1
        }
        return CentroidGroups(centers: usedCenters, offsets: offsets, members: members)
    }

    /// Lloyd iterations of the centroids into their group centres (`group`).
    static let groupIterations = 8

    /// The centroids `group(centroids:…, seed:)` starts its `groupCount` centres from.
    static func initialGroupCenters(_ groupCount: Int, of k: Int, seed: UInt64) -> [Int] {
        randomlyChosenFirst(groupCount, of: k, seed: seed ^ 0xC0A7)
    }

    /// What a backend that groups on its own side needs to group Lloyd iteration i's centroids as
    /// `group(centroids:…, seed: seed &+ i)` does here: the initial centres `lloyd` draws there.
    static func groupingPlan(k: Int, groupCount: Int, iterations: Int, seed: UInt64) -> CentroidGroupingPlan {
        CentroidGroupingPlan(groups: groupCount, iterations: groupIterations, initialCenters: (0..<max(0, iterations)).map { iteration in
            initialGroupCenters(groupCount, of: k, seed: seed &+ UInt64(iteration)).map { Int32($0) }
        })
    }

    /// Coarse groups for `k` centroids: none below 1,024 (exhaustive assignment is cheap there), else
    /// the power of two nearest above √k (128 at K = 8,192: 64 centroids a group).
    static func groupCount(centroids k: Int) -> Int {
        guard k >= 1024 else { return 0 }
        return 1 << Int((log2(Double(k)) / 2).rounded(.up))
    }

    static func trainGrouped(points: [Float], dim: Int, k requested: Int, config: PlaidConfig,
                             training: Training? = nil, backend: (any Backend)? = nil, resident: (any ResidentKMeansRows)? = nil,
                             sampleOnDevice: Bool = residentSampleOnDevice) -> Trained {
        let training = training ?? environmentTraining ?? defaultTraining
        let count = points.count / dim
        precondition(count > 0 && requested > 0, "KMeans.train needs points and k > 0")
        let k = min(requested, count)
        let seed = config.seed ^ environmentSeed
        let perCentroid = environmentPointsPerCentroid ?? config.maxPointsPerCentroid
        var clock = ContinuousClock.now
        let limit = k * max(1, perCentroid)
        let iterations = max(0, config.kmeansIterations)
        let groupCount = Self.groupCount(centroids: k)
        let twoLevel = groupCount > 1 && min(count, limit) >= 4 * groupCount && training == .twoLevel
        // With a backend that holds the rows on the device: the sample gathered there (same rows as below).
        if !twoLevel, sampleOnDevice || count <= limit, let residentBackend = backend as? any ResidentKMeansBackend {
            let trained: Trained? = points.withUnsafeBufferPointer { p in
                let run = ResidentRun(points: p.baseAddress!, count: count, dim: dim, k: k, limit: limit, iterations: iterations,
                                      training: training, seed: seed, groupCount: groupCount, backend: backend)
                if let resident { return trainResident(run, rows: resident) }
                guard let rows = beginResident(residentBackend, points: p.baseAddress!, count: count, dim: dim) else { return nil }
                defer { _ = try? rows.finishUpload() }
                return trainResident(run, rows: rows)
            }
            if let trained { return trained }
        }
        var exhaustive = iterations
        if case .coarseToFine(let n) = training,
           backend == nil || ((backend as? any CoarseToFineAssigning)?.maximumProbes(dim: dim, lloyd: true) ?? 0) >= lloydProbes {
            exhaustive = n
        }
        // A backend that groups the centroids itself runs the grouped iterations whole, as the CPU does them below.
        let groupsOnDevice = training == .coarseToFine(exhaustiveIterations: 0) && groupCount > 1 && k >= 4 * groupCount
            ? (backend as? any DeviceGroupedLloyd).flatMap { $0.groupsLloydOnDevice(dim: dim) ? $0 : nil } : nil
        // A backend that runs every Lloyd iteration gathers the sample itself (`subsample`'s rows, in its order) straight
        // into its upload staging; if it fails, the host path below runs.
        var wholeLloydFailed = false
        if !twoLevel, count > limit, k < limit, exhaustive >= iterations || groupsOnDevice != nil, !hostGatheredSample,
           let accelerated = backend as? any KMeansAccelerating {
            let sample = randomlyChosenFirst(limit, of: count, seed: sampleSeed(seed))
            var steps = [(step: "sample", seconds: seconds(since: clock))]
            clock = ContinuousClock.now
            // `lloyd`'s initial centroids: the first k rows of its shuffle of the sample.
            let order = randomlyChosenFirst(k, of: limit, seed: seed)
            var centroids = [Float](repeating: 0, count: k * dim)
            let trained: [Float]? = points.withUnsafeBufferPointer { p in
                centroids.withUnsafeMutableBufferPointer { c in
                    for i in 0..<k { (c.baseAddress! + i * dim).update(from: p.baseAddress! + sample[order[i]] * dim, count: dim) }
                }
                do {
                    if let groupsOnDevice {
                        return try groupsOnDevice.groupedLloydIterations(
                            points: p.baseAddress!, sample: sample, dim: dim, centroids: centroids, iterations: iterations, probes: lloydProbes,
                            grouping: groupingPlan(k: k, groupCount: groupCount, iterations: iterations, seed: seed))
                    }
                    return try accelerated.lloydIterations(points: p.baseAddress!, sample: sample, dim: dim, centroids: centroids, iterations: iterations)
                } catch {
                    reportFallback("k-means", error)
                    return nil
                }
            }
            if let trained {
                steps.append(("lloyd", seconds(since: clock)))
                return normalisedAndGrouped(trained, dim: dim, groupCount: groupCount, seed: seed, backend: backend, steps: steps)
            }
            wholeLloydFailed = true
            clock = ContinuousClock.now
        }
        let sample = subsample(points, count: count, dim: dim, limit: limit, seed: sampleSeed(seed))
        let steps = [(step: "sample", seconds: seconds(since: clock))]
        let sampleCount = sample.count / dim
        guard twoLevel else {
            clock = ContinuousClock.now
            let centroids = sample.withUnsafeBufferPointer {
                lloyd(points: $0.baseAddress!, count: sampleCount, dim: dim, k: k, iterations: iterations, seed: seed, parallel: true,
                      exhaustiveIterations: exhaustive, backend: backend, wholeIterationsOnBackend: !wholeLloydFailed)
            }
            return normalisedAndGrouped(centroids, dim: dim, groupCount: groupCount, seed: seed, backend: backend,
                                        steps: steps + [("lloyd", seconds(since: clock))])
        }
        return sample.withUnsafeBufferPointer { s in
            trainTwoLevel(points: s.baseAddress!, count: sampleCount, dim: dim, k: k, groupCount: groupCount, iterations: iterations,
                     seed: seed)
        }
    }

    /// `COLGREP_KM_HOST_SAMPLE=1`: the sample is gathered on the host even for a backend that would gather it (for measuring).
    static let hostGatheredSample = ProcessInfo.processInfo.environment["COLGREP_KM_HOST_SAMPLE"] == "1"

    /// The end of a flat training: the centroids normalised and, with enough of them, grouped (on the backend too
    /// where it runs whole Lloyd iterations: the same Lloyd, on the device).
    private static func normalisedAndGrouped(_ trained: [Float], dim: Int, groupCount: Int, seed: UInt64, backend: (any Backend)?,
                                             steps: [(step: String, seconds: Double)]) -> Trained {
        let clock = ContinuousClock.now
        var centroids = trained
        LinearAlgebra.normalizeRows(&centroids, cols: dim)
        let groupBackend = backend is any KMeansAccelerating ? backend : nil
        let groups = groupCount > 1 ? group(centroids: centroids, dim: dim, groupCount: groupCount, seed: seed, backend: groupBackend) : nil
        return Trained(centroids: centroids, groups: groups, steps: steps + [("normalise and group", seconds(since: clock))])
    }

    /// The first `min(prefix, count)` entries of a partial Fisher–Yates shuffle of `0..<count`: a uniform
    /// random choice without replacement, in shuffle order.
    static func randomlyChosenFirst(_ prefix: Int, of count: Int, seed: UInt64) -> [Int] {
        guard count <= Int(Int32.max) else {
            var generator = SplitMix64(seed: seed)
            var order = Array(0..<count)
            for i in 0..<min(prefix, count) { order.swapAt(i, Int.random(in: i..<count, using: &generator)) }
            return Array(order.prefix(min(prefix, count)))
        }
        let chosen = randomlyChosenFirst32(prefix, of: count, seed: seed)
        var trace = DrawTrace()
        defer { trace.mark("as Int") }
        return chosen.map { Int($0) }
    }

    /// `randomlyChosenFirst` as 4-byte indices (`count` at most `Int32.max`): the same draws, the same result.
    /// `KMeansSampleDraw.swift` computes them in parallel; this sequential form is its fallback and its reference.
    static func randomlyChosenFirst32(_ prefix: Int, of count: Int, seed: UInt64) -> [Int32] {
        precondition(count <= Int(Int32.max), "randomlyChosenFirst32: \(count) rows need 64-bit indices")
        if let drawn = randomlyChosenFirst32InParallel(prefix, of: count, seed: seed) { return drawn }
        return randomlyChosenFirst32Sequentially(prefix, of: count, seed: seed)
    }

    static func randomlyChosenFirst32Sequentially(_ prefix: Int, of count: Int, seed: UInt64) -> [Int32] {
        var generator = SplitMix64(seed: seed)
        let chosen = min(prefix, count)
        // 4-byte indices: half the bytes written and read at random of an Int array (10M rows: 40 MB, not 80;
        // init + shuffle of 1M 0.22 -> 0.12-0.13 s on the 2-core box, loaded).
        var order = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = Int32(truncatingIfNeeded: i) }
            initialized = count
        }
        for i in 0..<chosen { order.swapAt(i, Int.random(in: i..<count, using: &generator)) }
        return Array(order.prefix(chosen))
    }

    /// The seed of the training sample's draw (`subsample`, and the device-resident path's indices).
    static func sampleSeed(_ seed: UInt64) -> UInt64 { seed ^ 0x5A5A }

    /// At most `limit` rows of `points`, chosen at random without replacement (all when fewer).
    static func subsample(_ points: [Float], count: Int, dim: Int, limit: Int, seed: UInt64) -> [Float] {
        guard count > limit else { return points }
        let order = randomlyChosenFirst(limit, of: count, seed: seed)
        // Rows gathered in parallel blocks (random reads of a large array; the same result as one loop), each block
        // prefetching the rows ahead of the one it copies (`ck_gather_rows_f32`).
        return [Float](unsafeUninitializedCapacity: limit * dim) { buffer, initialized in
            let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
            points.withUnsafeBufferPointer { p in
                let input = UnsafeSendablePointer(p.baseAddress!)
                order.withUnsafeBufferPointer { o in
                    o.withMemoryRebound(to: Int64.self) { wide in
                        let rows = UnsafeSendablePointer(wide.baseAddress!)
                        let block = 16_384
                        DispatchQueue.concurrentPerform(iterations: (limit + block - 1) / block) { b in
                            let first = b * block
                            ck_gather_rows_f32(input.pointer, dim, rows.pointer + first, min(block, limit - first), output.pointer + first * dim)
                        }
                    }
                }
            }
            initialized = limit * dim
        }
    }

    private static func trainTwoLevel(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, groupCount: Int, iterations: Int,
                                 seed: UInt64) -> Trained {
        let centers = lloyd(points: points, count: count, dim: dim, k: groupCount, iterations: iterations, seed: seed, parallel: true)
        var labels = [Int32](repeating: 0, count: count)
        let packed = centers.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: groupCount) }
        labels.withUnsafeMutableBufferPointer { l in nearestInParallel(packed, points: points, count: count, into: l.baseAddress!) }
        // Points grouped by coarse centre (counting sort).
        var starts = [Int](repeating: 0, count: groupCount + 1)
        for label in labels { starts[Int(label) + 1] += 1 }
        for g in 0..<groupCount { starts[g + 1] += starts[g] }
        var order = [Int](repeating: 0, count: count)
        var fill = starts
        for (i, label) in labels.enumerated() {
            order[fill[Int(label)]] = i
            fill[Int(label)] += 1
        }
        let shares = allocate(k, over: (0..<groupCount).map { starts[$0 + 1] - starts[$0] })
        let used = (0..<groupCount).filter { shares[$0] > 0 }
        var offsets: [Int32] = [0]
        for g in used { offsets.append(offsets.last! + Int32(shares[g])) }
        var centroids = [Float](repeating: 0, count: k * dim)
        let input = UnsafeSendablePointer(points)
        let groupStarts = starts, groupOffsets = offsets
        centroids.withUnsafeMutableBufferPointer { c in
            let output = UnsafeMutableSendablePointer(c.baseAddress!)
            order.withUnsafeBufferPointer { o in
                let rows = UnsafeSendablePointer(o.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: used.count) { slot in
                    let g = used[slot]
                    let n = groupStarts[g + 1] - groupStarts[g]
                    let local = [Float](unsafeUninitializedCapacity: n * dim) { buffer, initialized in
                        for i in 0..<n {
                            (buffer.baseAddress! + i * dim).initialize(from: input.pointer + rows.pointer[groupStarts[g] + i] * dim, count: dim)
                        }
                        initialized = n * dim
                    }
                    let trained = local.withUnsafeBufferPointer {
                        lloyd(points: $0.baseAddress!, count: n, dim: dim, k: shares[g], iterations: iterations,
                              seed: seed &+ UInt64(g) &* 0x9E37_79B9, parallel: false)
                    }
                    (output.pointer + Int(groupOffsets[slot]) * dim).update(from: trained, count: shares[g] * dim)
                }
            }
        }
        var usedCenters = [Float]()
        usedCenters.reserveCapacity(used.count * dim)
        for g in used { usedCenters.append(contentsOf: centers[(g * dim)..<((g + 1) * dim)]) }
        let groups = CentroidGroups(centers: usedCenters, offsets: offsets, members: (0..<Int32(k)).map { $0 })
        // Lloyd iterations over all centroids with coarse-to-fine assignment: points near a group's
        // border move to the best centroid of a neighbouring group, which per-group training cannot
        // do (without them the mean point–centroid cosine stayed ~0.003 below flat k-means' on
        // synthetic data).
        var labels32 = [Int32](repeating: 0, count: count)
        for _ in 0..<refinementIterations {
            let assigner = CentroidAssigner(centroids: centroids, dim: dim, groups: groups)
            labels32.withUnsafeMutableBufferPointer { assigner.assignOnCPU(points, count: count, into: $0.baseAddress!) }
            updateMeans(points: points, count: count, dim: dim, labels: labels32, centroids: &centroids)
        }
        LinearAlgebra.normalizeRows(&centroids, cols: dim)
        return Trained(centroids: centroids, groups: groups)
    }

    /// Splits `total` over groups in proportion to `sizes` (largest remainders first), never more
    /// than a group's size (`total` at most the sum of sizes).
    static func allocate(_ total: Int, over sizes: [Int]) -> [Int] {
        let sum = sizes.reduce(0, +)
        guard sum > 0 else { return sizes.map { _ in 0 } }
        var shares = sizes.map { $0 * total / sum }
        var remaining = total - shares.reduce(0, +)
        let byRemainder = sizes.indices.sorted {
            let a = sizes[$0] * total % sum, b = sizes[$1] * total % sum
            return a != b ? a > b : $0 < $1
        }
        for g in byRemainder where remaining > 0 && shares[g] < sizes[g] {
            shares[g] += 1
            remaining -= 1
        }
        return shares
    }

    /// Exact nearest packed centroid of each row, rows split over the cores.
    static func nearestInParallel(_ packed: PackedCentroids, points: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Int32>) {
        let chunk = 4096
        let chunks = (count + chunk - 1) / chunk
        let input = UnsafeSendablePointer(points), output = UnsafeMutableSendablePointer(out)
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let start = index * chunk
            packed.nearest(input.pointer + start * packed.dim, count: min(chunk, count - start), into: output.pointer + start)
        }
    }

    /// Plain Lloyd iterations from `k` distinct random points; empty clusters keep their centroid.
    /// Iterations from `exhaustiveIterations` on (when K has groups) assign coarse-to-fine over groups
    /// of the current centroids. `wholeIterationsOnBackend: false` skips handing the whole run to the backend (it
    /// already failed it); its assignments are still tried there.
    static func lloyd(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, iterations: Int, seed: UInt64,
                      parallel: Bool, exhaustiveIterations: Int = .max, backend: (any Backend)? = nil,
                      wholeIterationsOnBackend: Bool = true, startingFrom initial: [Int]? = nil) -> [Float] {
        // The initial centroids: the points `initial` names, else the first k of a shuffle drawn with `seed`.
        let order = initial ?? randomlyChosenFirst(k, of: count, seed: seed)
        var centroids = [Float](repeating: 0, count: k * dim)
        centroids.withUnsafeMutableBufferPointer { c in
            for i in 0..<k { (c.baseAddress! + i * dim).update(from: points + order[i] * dim, count: dim) }
        }
        guard k < count else { return centroids }
        // A backend with grouped (coarse-to-fine) search runs the iterations as the CPU does below, grouping
        // the current centroids on the host side each iteration; if it fails, the iterations below run.
        let grouped = Self.groupCount(centroids: k)
        if let coarse = backend as? any CoarseToFineAssigning, exhaustiveIterations < iterations, grouped > 1,
           lloydProbes <= coarse.maximumProbes(dim: dim, lloyd: true) {
            do {
                return try coarse.lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations,
                                                  exhaustiveIterations: exhaustiveIterations, probes: lloydProbes) { current, iteration in
                    group(centroids: current, dim: dim, groupCount: grouped, seed: seed &+ UInt64(iteration), backend: backend)
                        .map { CentroidGroupTable(centers: $0.centers, offsets: $0.offsets, members: $0.members) }
                }
            } catch {
                reportFallback("k-means", error)
            }
        }
        // A backend with device-resident Lloyd runs every (exhaustive) iteration there; if it fails, the
        // iterations below run as without it.
        if wholeIterationsOnBackend, let accelerated = backend as? any KMeansAccelerating, exhaustiveIterations >= iterations {
            do {
                return try accelerated.lloydIterations(points: points, count: count, dim: dim, centroids: centroids, iterations: iterations)
            } catch {
                reportFallback("k-means", error)
            }
        }
        var labels = [Int32](repeating: 0, count: count)
        let groupCount = Self.groupCount(centroids: k)
        for iteration in 0..<iterations {
            if iteration >= exhaustiveIterations, groupCount > 1,
               let groups = group(centroids: centroids, dim: dim, groupCount: groupCount, seed: seed &+ UInt64(iteration)) {
                let assigner = CentroidAssigner(centroids: centroids, dim: dim, groups: groups, probes: lloydProbes)
                labels.withUnsafeMutableBufferPointer { assigner.assignOnCPU(points, count: count, into: $0.baseAddress!) }
                updateMeans(points: points, count: count, dim: dim, labels: labels, centroids: &centroids)
                continue
            }
            if let backend {
                // A GPU assigns (exhaustively) where it is given; the assigner falls back to the CPU if it fails.
                let codes = CentroidAssigner(centroids: centroids, dim: dim, groups: nil).assign(points, count: count, backend: backend)
                for i in 0..<count { labels[i] = Int32(codes[i]) }
                updateMeans(points: points, count: count, dim: dim, labels: labels, centroids: &centroids)
                continue
            }
            let packed = centroids.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
            labels.withUnsafeMutableBufferPointer { l in
                if parallel {
                    nearestInParallel(packed, points: points, count: count, into: l.baseAddress!)
                } else {
                    packed.nearest(points, count: count, into: l.baseAddress!)
                }
            }
            updateMeans(points: points, count: count, dim: dim, labels: labels, centroids: &centroids)
        }
        return centroids
    }

    /// Says on stderr that a backend's k-means step failed and the CPU takes over (the result is the
    /// same function; only the speed differs, which a benchmark must not mistake for the GPU's).
    /// Starts copying the rows to a backend that keeps them; nil when it declines (they do not fit) or fails
    /// (reported, and the caller runs the host path).
    static func beginResident(_ backend: any ResidentKMeansBackend, points: UnsafePointer<Float>, count: Int, dim: Int)
        -> (any ResidentKMeansRows)? {
        do {
            return try backend.beginResidentRows(points: points, count: count, dim: dim)
        } catch {
            reportFallback("k-means upload", error)
            return nil
        }
    }

    static func reportFallback(_ step: String, _ error: any Error) {
        FileHandle.standardError.write(Data("colgrep: GPU \(step) failed (\(error)); running it on the CPU\n".utf8))
    }

    /// Moves each centroid to the mean of the points labelled with it (empty clusters stay put). Large inputs are
    /// split by centroid range over the cores: each worker scans every label and sums only its own centroids' points,
    /// in point order, so every sum is the one-thread loop's, bit for bit (a 262k-point Lloyd update took one thread
    /// ~5 ms, four times per build, serial time in a build whose goal is 1.2 s on 2 threads).
    static func updateMeans(points: UnsafePointer<Float>, count: Int, dim: Int, labels: [Int32], centroids: inout [Float]) {
        let k = centroids.count / dim
        let parts = count >= 1 << 16 && k >= 64 ? min(UsableCores.count, 16) : 1
        let input = UnsafeSendablePointer(points)
        labels.withUnsafeBufferPointer { l in
            let label = UnsafeSendablePointer(l.baseAddress!)
            centroids.withUnsafeMutableBufferPointer { c in
                let output = UnsafeMutableSendablePointer(c.baseAddress!)
                let body: @Sendable (Int) -> Void = { part in
                    let low = k * part / parts, high = k * (part + 1) / parts
                    guard high > low else { return }
                    var sums = [Float](repeating: 0, count: (high - low) * dim)
                    var sizes = [Int](repeating: 0, count: high - low)
                    sums.withUnsafeMutableBufferPointer { s in
                        sizes.withUnsafeMutableBufferPointer { n in
                            for i in 0..<count {
                                let c = Int(label.pointer[i])
                                guard c >= low && c < high else { continue }
                                n[c - low] += 1
                                let target = s.baseAddress! + (c - low) * dim
                                let source = input.pointer + i * dim
                                for d in 0..<dim { target[d] += source[d] }
                            }
                            for c in low..<high where n[c - low] > 0 {
                                let inverse = 1 / Float(n[c - low])
                                let sum = s.baseAddress! + (c - low) * dim, target = output.pointer + c * dim
                                for d in 0..<dim { target[d] = sum[d] * inverse }
                            }
                        }
                    }
                }
                if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
            }
        }
    }
}
