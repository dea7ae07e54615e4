import CKernels
import Dispatch
import Foundation
import Tensor

/// Centroids partitioned into groups around coarse centres (k-means over the centroids): group `g` holds
/// centroids `members[offsets[g]..<offsets[g + 1]]` (two-level training: trained on the points nearest `centers[g]`).
struct CentroidGroups: Sendable, Equatable {
    /// `G × dim` coarse centres.
    let centers: [Float]
    /// `G + 1` increasing offsets into `members`, from 0 to K.
    let offsets: [Int32]
    /// Every centroid index exactly once, group by group.
    let members: [Int32]

    var count: Int { offsets.count - 1 }

    /// True when the offsets and members describe a partition of `0..<k` and the centres are `count × dim` finite values.
    func isValid(centroidCount k: Int, dim: Int) -> Bool {
        guard offsets.count >= 2, offsets.first == 0, Int(offsets.last!) == k, members.count == k,
              centers.count == count * dim, centers.allSatisfy(\.isFinite),
              zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else { return false }
        var seen = [Bool](repeating: false, count: k)
        for m in members {
            guard m >= 0, Int(m) < k, !seen[Int(m)] else { return false }
            seen[Int(m)] = true
        }
        return true
    }
}

/// Centroids packed into the panels `ck_assign_best` / `ck_assign_top` read.
struct PackedCentroids: Sendable {
    let count: Int
    let dim: Int
    let panels: [Float]
    let bias: [Float]

    /// Packs rows `members` of `centroids` (all rows when nil), scored by Euclidean distance.
    init(_ centroids: UnsafePointer<Float>, dim: Int, members: UnsafeBufferPointer<Int32>? = nil, count: Int) {
        self.count = count
        self.dim = dim
        let floats = ck_assign_packed_floats(count, dim)
        let columns = (count + 15) / 16 * 16
        var bias = [Float](repeating: 0, count: max(1, columns))
        panels = [Float](unsafeUninitializedCapacity: max(1, floats)) { buffer, initialized in
            bias.withUnsafeMutableBufferPointer { b in
                ck_assign_pack(centroids, dim, members?.baseAddress, count, 1, buffer.baseAddress!, b.baseAddress!)
            }
            initialized = max(1, floats)
        }
        self.bias = bias
    }

    /// Nearest centroid of each of `count` contiguous rows (exact; ties to the smaller index).
    func nearest(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        panels.withUnsafeBufferPointer { p in
            bias.withUnsafeBufferPointer { b in
                ck_assign_best(points, dim, nil, n, p.baseAddress!, b.baseAddress!, count, out, nil)
            }
        }
    }
}

/// One group's centroids packed for the int16 first pass (`ck_assign_best2_i16`): two dimensions per 32 bits,
/// panels of 16 columns, the group's scale, and each column's exact bias (−½‖c‖², −∞ for padding).
struct PackedCentroids16: Sendable {
    let count: Int
    let scale: Float
    let values: [Int16]
    let bias: [Float]

    /// Packs rows `members` of `centroids`.
    init(_ centroids: UnsafePointer<Float>, dim: Int, members: UnsafeBufferPointer<Int32>) {
        let count = members.count
        self.count = count
        let size = max(1, ck_assign_packed16_count(count, dim))
        var bias = [Float](repeating: -.infinity, count: max(1, (count + 15) / 16 * 16))
        var scale: Float = 1
        values = [Int16](unsafeUninitializedCapacity: size) { buffer, initialized in
            buffer.initialize(repeating: 0)
            scale = ck_assign_pack16(centroids, dim, members.baseAddress, count, buffer.baseAddress!, &bias)
            initialized = size
        }
        self.scale = scale
        self.bias = bias
    }
}

/// Nearest-centroid assignment (`argmin_c ‖x − c‖²`), the arithmetic-heavy step of k-means and encoding.
///
/// On the CPU, centroids with groups (K ≥ 1,024) are searched coarse-to-fine: each vector scores
/// the G ≈ √K group centres, then exactly the centroids of its `probes` best groups (about
/// `(G + probes · K / G) · d` multiply-adds instead of `K · d`: 13× fewer at K = 8,192), in the fused
/// kernel of assign.c (4 × 16 register tiles, argmax in registers, no score matrix). Without groups
/// (small K, or `COLGREP_ASSIGN_PROBES=0`) every centroid is scored, exactly. With AVX2 the fine step's
/// first pass is int16 (`vpmaddwd`: twice the multiply-adds per instruction of the float kernel) and keeps
/// each vector's best two centroids over its probed groups, which are then re-scored in float: the code is
/// the float kernel's unless scores tie within float rounding or three centroids tie within the int16
/// pass's resolution (docs/PERFORMANCE.md, session 9; `COLGREP_ASSIGN_INT16=0` turns it off; an int8 pass
/// measured faster lost the nearest centroid of 0.6 % of the vectors). With a backend (a GPU) the
/// assignment is exhaustive on it: `KMeansAccelerating.assignNearest` (host vectors streamed up in chunks)
/// where the backend offers it, else `backend.nearestCentroids` on uploaded chunks.
final class CentroidAssigner: Sendable {
    let centroids: FloatRows
    let count: Int
    let dim: Int
    private let groups: CentroidGroups?
    private let probes: Int
    private let all: PackedCentroids?
    private let coarse: PackedCentroids?
    /// Each group's packed centroids; empty when the assigner packs on demand (`packsGroupsOnDemand`) or
    /// the fine step is int16 (`fine16`).
    private let fine: [PackedCentroids]
    /// Each group's int16 panels when the fine step is int16; empty otherwise.
    private let fine16: [PackedCentroids16]
    /// True when the fine step is an int16 first pass with a float re-score.
    let isInt16: Bool
    /// Every centroid's bias (−½‖c‖²) for the re-score when the fine step is int16; empty otherwise.
    private let exactBias: [Float]

    /// `COLGREP_ASSIGN_INT16=0` keeps the fine step in float (for measurements and comparisons).
    static let environmentInt16: Bool? = ProcessInfo.processInfo.environment["COLGREP_ASSIGN_INT16"].map { $0 != "0" }

    /// True where the int16 fine step runs: AVX2 and a dimension that is a multiple of 8.
    static func int16Available(dim: Int) -> Bool { ck_has_avx2() != 0 && dim % 8 == 0 && dim > 0 }

    /// Groups probed per vector unless `COLGREP_ASSIGN_PROBES` says otherwise (0: exhaustive). At
    /// K = 8,192 (128 groups) 4 probes gave 98.4 % of vectors their nearest centroid and 8 gave 99.3 %
    /// (MiniLM, 384-d); 8 keep recall closest to exhaustive assignment.
    static let defaultProbes = 8
    static let environmentProbes: Int? = ProcessInfo.processInfo.environment["COLGREP_ASSIGN_PROBES"].flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }

    /// Rows per worker chunk of `assignOnCPU` and of the codec's encode (`COLGREP_ASSIGN_CHUNK` overrides it, for
    /// measurements): a chunk's rows, int16 rows and every group's panels are its working set (~2 MB at 4,096 48-d
    /// rows, the L2 of the Xeon the build goal is measured on), and each group's last 16-row block is partly padding
    /// (~3 % of the fine step at 4,096 rows). 8,192 and 16,384 rows measured no faster on that Xeon (2 cores,
    /// docs/PERFORMANCE.md session 11).
    static let chunkRows: Int = ProcessInfo.processInfo.environment["COLGREP_ASSIGN_CHUNK"].flatMap { Int($0) }.flatMap { $0 >= 256 ? $0 : nil } ?? 4096

    /// Rows up to which `ResidualCodec.makeAssigner(forRows:)` packs groups on demand: one `assignOnCPU` chunk,
    /// so each probed group is packed once. Past it (8 probes × 4,096 rows) nearly every group is probed anyway.
    static let onDemandPackingRows = 4096

    convenience init(centroids: [Float], dim: Int, groups: CentroidGroups? = nil, probes: Int? = nil,
                     packsGroupsOnDemand: Bool = false, int16: Bool? = nil) {
        self.init(centroids: FloatRows(centroids), dim: dim, groups: groups, probes: probes, packsGroupsOnDemand: packsGroupsOnDemand,
                  int16: int16)
    }

    /// With `packsGroupsOnDemand` (coarse-to-fine only) no group's centroids are packed up front: each chunk
    /// packs the groups its rows probe, as the eager packing would (same panels, so the same codes). An
    /// update's few hundred vectors skip packing the groups none of them probes (448 synthetic 384-d vectors
    /// at K = 8,192: the 10-unit append's p50 22.7 → 19.9 ms, `colgrep bench build`).
    init(centroids: FloatRows, dim: Int, groups: CentroidGroups? = nil, probes: Int? = nil, packsGroupsOnDemand: Bool = false,
         int16: Bool? = nil) {
        self.centroids = centroids
        self.dim = dim
        let count = centroids.count / dim
        self.count = count
        let probes = probes ?? Self.environmentProbes ?? Self.defaultProbes
        if let groups, probes > 0, probes < groups.count, groups.isValid(centroidCount: count, dim: dim) {
            self.groups = groups
            self.probes = probes
            all = nil
            coarse = groups.centers.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: groups.count) }
            // Small writes (packed on demand) keep the float step: the int16 pass pays for packing and quantising
            // only over many rows (measured: a 1,135-vector append's encode +1.5–2 ms with it).
            if (int16 ?? Self.environmentInt16 ?? true) && !packsGroupsOnDemand && Self.int16Available(dim: dim) {
                isInt16 = true
                fine = []
                // Groups packed on every core (one thread took ~1–2 ms per assigner at K = 8,192, five assigners a
                // build: serial time between the parallel passes). Each group's panels are the same either way.
                let packed = [PackedCentroids16](unsafeUninitializedCapacity: groups.count) { buffer, initialized in
                    let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
                    let pack: @Sendable (Int) -> Void = { g in
                        (output.pointer + g).initialize(to: Self.packGroup16(g, of: groups, centroids: centroids, dim: dim))
                    }
                    if count >= 4096 { DispatchQueue.concurrentPerform(iterations: groups.count, execute: pack) } else { (0..<groups.count).forEach(pack) }
                    initialized = groups.count
                }
                var bias = [Float](repeating: 0, count: count)
                groups.members.withUnsafeBufferPointer { m in
                    bias.withUnsafeMutableBufferPointer { b in
                        for (g, group) in packed.enumerated() {
                            let members = UnsafeBufferPointer(rebasing: m[Int(groups.offsets[g])..<Int(groups.offsets[g + 1])])
                            for j in 0..<group.count { b[Int(members[j])] = group.bias[j] }
                        }
                    }
                }
                fine16 = packed
                exactBias = bias
                return
            }
            isInt16 = false
            fine16 = []
            exactBias = []
            fine = packsGroupsOnDemand ? [] : centroids.withUnsafeBufferPointer { c in
                groups.members.withUnsafeBufferPointer { m in
                    (0..<groups.count).map { g in
                        let start = Int(groups.offsets[g]), end = Int(groups.offsets[g + 1])
                        return PackedCentroids(c.baseAddress!, dim: dim, members: UnsafeBufferPointer(rebasing: m[start..<end]), count: end - start)
                    }
                }
            }
        } else {
            self.groups = nil
            self.probes = 0
            all = centroids.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: count) }
            coarse = nil
            fine = []
            fine16 = []
            isInt16 = false
            exactBias = []
        }
    }

    /// The centroids of group `g`, packed for the int16 pass.
    private static func packGroup16(_ g: Int, of groups: CentroidGroups, centroids: FloatRows, dim: Int) -> PackedCentroids16 {
        let start = Int(groups.offsets[g]), end = Int(groups.offsets[g + 1])
        return centroids.withUnsafeBufferPointer { c in
            groups.members.withUnsafeBufferPointer { m in
                PackedCentroids16(c.baseAddress!, dim: dim, members: UnsafeBufferPointer(rebasing: m[start..<end]))
            }
        }
    }

    /// The centroids of group `g`, packed.
    private static func packGroup(_ g: Int, of groups: CentroidGroups, centroids: FloatRows, dim: Int) -> PackedCentroids {
        let start = Int(groups.offsets[g]), end = Int(groups.offsets[g + 1])
        return centroids.withUnsafeBufferPointer { c in
            groups.members.withUnsafeBufferPointer { m in
                PackedCentroids(c.baseAddress!, dim: dim, members: UnsafeBufferPointer(rebasing: m[start..<end]), count: end - start)
            }
        }
    }

    /// True when groups are packed per chunk rather than once (see `init`).
    var packsGroupsOnDemand: Bool { groups != nil && fine.isEmpty && fine16.isEmpty }

    /// True when assignment is exhaustive (exact).
    var isExhaustive: Bool { groups == nil }

    /// Index of the best centroid of each of the `n` rows of `points`.
    func assign(_ points: UnsafePointer<Float>, count n: Int, backend: (any Backend)?) -> [UInt32] {
        var result = [UInt32](repeating: 0, count: n)
        guard n > 0 else { return result }
        // Grouped centroids on a backend that prefers the grouped search for these rows (`CoarseToFineAssigning`,
        // a GPU): the same coarse-to-fine search as the CPU's below; otherwise the backend assigns exhaustively (next).
        if let table = deviceGroups(on: backend), let coarse = backend as? any CoarseToFineAssigning {
            let done = result.withUnsafeMutableBufferPointer { out in
                out.baseAddress!.withMemoryRebound(to: Int32.self, capacity: n) {
                    do {
                        try coarse.assignNearest(points: points, count: n, dim: dim, centroids: deviceCentroids, groups: table, probes: probes, into: $0)
                        return true
                    } catch {
                        KMeans.reportFallback("coarse-to-fine assignment", error)
                        return false
                    }
                }
            }
            if done { return result }
        }
        if let accelerated = backend as? any KMeansAccelerating {
            // Vectors streamed to the device in chunks; one code each comes back.
            let done = result.withUnsafeMutableBufferPointer { out in
                out.baseAddress!.withMemoryRebound(to: Int32.self, capacity: n) {
                    do {
                        try accelerated.assignNearest(points: points, count: n, dim: dim, centroids: deviceCentroids, into: $0)
                        return true
                    } catch {
                        KMeans.reportFallback("assignment", error)
                        return false
                    }
                }
            }
            if done { return result }
        } else if let backend, (try? assignOnBackend(points, count: n, backend: backend, into: &result)) != nil {
            return result
        }
        result.withUnsafeMutableBufferPointer { out in
            out.baseAddress!.withMemoryRebound(to: Int32.self, capacity: n) { assignOnCPU(points, count: n, into: $0) }
        }
        return result
    }

    /// The codes of every row of `rows` (vectors already on `backend`'s device): the search `assign` would run
    /// there — coarse-to-fine where the backend prefers it for these rows, else exhaustive —; nil (reported)
    /// when the device fails, and the caller assigns the host rows instead.
    func assign(resident rows: any ResidentKMeansRows, backend: (any Backend)?) -> [UInt32]? {
        guard rows.dim == dim else { return nil }
        let table = deviceGroups(on: backend)
        var failure: (any Error)? = nil
        // Not zero-filled here: the device writes every code, and faults the fresh pages in while its kernels run (10M
        // codes are 40 MB, whose zero fill took 20-30 ms on one thread of the 2-core box).
        let result = [UInt32](unsafeUninitializedCapacity: rows.count) { out, initialized in
            do {
                try out.baseAddress!.withMemoryRebound(to: Int32.self, capacity: rows.count) {
                    try rows.assignNearest(centroids: deviceCentroids, groups: table, probes: table == nil ? 0 : probes, into: $0)
                }
                initialized = rows.count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure {
            KMeans.reportFallback("assignment", failure)
            return nil
        }
        return result
    }

    /// The groups in the form a device searches them, where `backend` prefers the grouped search for these rows
    /// (`CoarseToFineAssigning`, a GPU, within its probes); nil where it searches exhaustively.
    private func deviceGroups(on backend: (any Backend)?) -> CentroidGroupTable? {
        guard let groups, let coarse = backend as? any CoarseToFineAssigning, probes <= coarse.maximumProbes(dim: dim, lloyd: false) else {
            return nil
        }
        return deviceInputs.groups { CentroidGroupTable(centers: groups.centers, offsets: groups.offsets, members: groups.members) }
    }

    /// The centroids as the array a device call takes, copied once per assigner.
    private var deviceCentroids: [Float] { deviceInputs.centroids { centroids.array } }

    /// What the device calls take, made on the first call and then the same arrays every time: a cold build
    /// encodes ~40 batches with one assigner, and each call copied the centroids (6 MB at K = 32,768, 48-d) and
    /// built the group table again, which the GPU's table cache then compared value by value with the last ones
    /// (the same storage now compares equal at once).
    private final class DeviceInputs: @unchecked Sendable {
        private let lock = NSLock()
        private var centroids: [Float]?
        private var groups: CentroidGroupTable?

        func centroids(_ make: () -> [Float]) -> [Float] {
            lock.withLock {
                if let centroids { return centroids }
                let made = make()
                centroids = made
                return made
            }
        }

        func groups(_ make: () -> CentroidGroupTable) -> CentroidGroupTable {
            lock.withLock {
                if let groups { return groups }
                let made = make()
                groups = made
                return made
            }
        }
    }
    private let deviceInputs = DeviceInputs()

    /// `COLGREP_GPU_RESIDUALS=0`: a device assigns and the host packs, as before the device packing (for measuring).
    static let packsOnDevice = ProcessInfo.processInfo.environment["COLGREP_GPU_RESIDUALS"] != "0"

    /// Codes of the `n` rows at `points` and their residuals packed as `ResidualPacking` encodes them against
    /// `cutoffs`, from one pass on `backend`'s device (`ResidualQuantizing`) running the search `assign` would run
    /// there. False when the backend has no such pass or `assign` would not search on it, and (reported) when the
    /// device fails: the caller then encodes on the host.
    func assignAndQuantize(_ points: UnsafePointer<Float>, count n: Int, backend: (any Backend)?, cutoffs: [Float], nbits: Int,
                           codes: UnsafeMutablePointer<UInt16>, packed: UnsafeMutablePointer<UInt8>) -> Bool {
        guard n > 0, Self.packsOnDevice, let quantizing = backend as? any ResidualQuantizing, quantizing.packsResiduals,
              ResidualPacking.isValid(dim: dim, nbits: nbits, cutoffs: cutoffs.count) else { return false }
        let table = deviceGroups(on: backend)
        if table == nil && !(backend is any KMeansAccelerating) { return false }
        var wide = [Int32](repeating: 0, count: n)
        do {
            try wide.withUnsafeMutableBufferPointer {
                try quantizing.assignAndQuantize(points: points, count: n, dim: dim, centroids: deviceCentroids, groups: table,
                                                 probes: table == nil ? 0 : probes, cutoffs: cutoffs, nbits: nbits,
                                                 codes: $0.baseAddress!, packed: packed)
            }
        } catch {
            KMeans.reportFallback("assignment and residual encoding", error)
            return false
        }
        for i in 0..<n { codes[i] = UInt16(truncatingIfNeeded: wide[i]) }
        return true
    }

    private func assignOnBackend(_ points: UnsafePointer<Float>, count n: Int, backend: any Backend,
                                 into result: inout [UInt32]) throws {
        let weight = try backend.upload(HostMatrix(rows: count, cols: dim, values: deviceCentroids))
        // Chunks bound the device's score tile (a backend without the fused path materialises it); a
        // fused backend bounds its own scratch, so it gets large chunks (fewer uploads and round trips).
        let fused = backend is any NearestCentroidAccelerating
        let chunk = max(1, min(n, fused ? 1 << 20 : (256 << 20) / max(1, count * 4)))
        var start = 0
        while start < n {
            let rows = min(chunk, n - start)
            let x = try backend.upload(HostMatrix(rows: rows, cols: dim,
                                                  values: Array(UnsafeBufferPointer(start: points + start * dim, count: rows * dim))))
            let codes = try backend.nearestCentroids(x, centroids: weight, metric: .euclidean)
            for r in 0..<rows { result[start + r] = UInt32(codes[r]) }
            start += rows
        }
    }

    /// Chunks of rows spread over the cores; each chunk is assigned on its own.
    func assignOnCPU(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        let chunk = Self.chunkRows
        let chunks = (n + chunk - 1) / chunk
        let input = UnsafeSendablePointer(points)
        let output = UnsafeMutableSendablePointer(out)
        let body: @Sendable (Int) -> Void = { index in
            let start = index * chunk
            self.assignChunk(input.pointer + start * self.dim, count: min(chunk, n - start), into: output.pointer + start)
        }
        if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
    }

    /// Assigns `n` contiguous rows on the calling thread.
    func assignChunk(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        if let all {
            all.nearest(points, count: n, into: out)
        } else {
            assignCoarseToFine(points, count: n, into: out)
        }
    }

    /// Best groups of each row, then each group's rows scored against its centroids (rows sorted by
    /// group with a counting sort, so a group's panels are read once per chunk). The chunk's working arrays are
    /// one scratch allocation, written through pointers: the Swift arrays of the first version (zero-filled, with a
    /// uniqueness check and a division per scattered row) cost ~2 % of a build's CPU beside the kernels.
    private func assignCoarseToFine(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        guard let groups, let coarse else { return }
        let p = probes, g = groups.count
        let scratch = FineScratch(rows: n, probes: p, groups: g, dim: dim, int16: isInt16)
        defer { scratch.release() }
        let top = scratch.top, starts = scratch.starts, rows = scratch.rows
        coarse.panels.withUnsafeBufferPointer { panels in
            coarse.bias.withUnsafeBufferPointer { bias in
                ck_assign_top(points, dim, n, panels.baseAddress!, bias.baseAddress!, g, p, top)
            }
        }
        // In C: the Swift loop's checked conversions and overflow tests made its scatter ~5 ns an entry in place.
        ck_assign_sort_by_group(top, n, p, g, starts, scratch.fill, rows)
        if isInt16 {
            fineInt16(points, count: n, scratch: scratch, groups: groups, into: out)
            return
        }
        let local = scratch.local, scores = scratch.scores
        for group in 0..<g where starts[group + 1] > starts[group] && groups.offsets[group + 1] > groups.offsets[group] {
            let start = starts[group], m = starts[group + 1] - start
            let packed = fine.isEmpty ? Self.packGroup(group, of: groups, centroids: centroids, dim: dim) : fine[group]
            packed.panels.withUnsafeBufferPointer { panels in
                packed.bias.withUnsafeBufferPointer { bias in
                    ck_assign_best(points, dim, rows + start, m, panels.baseAddress!, bias.baseAddress!, packed.count, local + start, scores + start)
                }
            }
        }
        // Per row: the best of its probes (ties to the smaller centroid index, as exhaustive search).
        let bestScore = scratch.bestScore
        bestScore.initialize(repeating: -.infinity, count: n)
        for i in 0..<n { out[i] = Int32.max }
        groups.members.withUnsafeBufferPointer { members in
            for group in 0..<g where groups.offsets[group + 1] > groups.offsets[group] {
                let base = Int(groups.offsets[group])
                for at in starts[group]..<starts[group + 1] {
                    let row = Int(rows[at])
                    let candidate = members[base + Int(local[at])]
                    let score = scores[at]
                    if score > bestScore[row] || (score == bestScore[row] && candidate < out[row]) {
                        bestScore[row] = score
                        out[row] = candidate
                    }
                }
            }
        }
        // A row whose probed groups were all empty (cannot happen with the groups k-means builds) falls
        // back to exhaustive search.
        for i in 0..<n where out[i] == Int32.max {
            out[i] = exhaustiveNearest(points + i * dim)
        }
    }

    /// The fine step in int16: rows quantised once, each probed group's pass merges its best two into the row's
    /// best two over all its groups, and those two are re-scored in float.
    private func fineInt16(_ points: UnsafePointer<Float>, count n: Int, scratch: FineScratch, groups: CentroidGroups,
                           into out: UnsafeMutablePointer<Int32>) {
        let q = scratch.q, rowScale = scratch.rowScale, rows = scratch.rows, starts = scratch.starts
        ck_assign_quantize_rows16(points, dim, n, q, rowScale)
        let candidates = scratch.candidates, candidateScores = scratch.candidateScores
        candidates.initialize(repeating: -1, count: 2 * n)
        candidateScores.initialize(repeating: -.infinity, count: 2 * n)
        groups.members.withUnsafeBufferPointer { members in
            for group in 0..<groups.count where starts[group + 1] > starts[group] && groups.offsets[group + 1] > groups.offsets[group] {
                let start = starts[group], m = starts[group + 1] - start
                let packed = fine16[group]
                packed.values.withUnsafeBufferPointer { panels in
                    packed.bias.withUnsafeBufferPointer { bias in
                        ck_assign_best2_i16(q, rowScale, dim, rows + start, m, panels.baseAddress!, bias.baseAddress!, packed.scale, packed.count,
                                            members.baseAddress! + Int(groups.offsets[group]), candidates, candidateScores)
                    }
                }
            }
        }
        centroids.withUnsafeBufferPointer { c in
            exactBias.withUnsafeBufferPointer { b in
                ck_assign_rescore(points, dim, n, candidates, c.baseAddress!, b.baseAddress!, out)
            }
        }
        // A row whose probed groups were all empty (cannot happen with the groups k-means builds) falls
        // back to exhaustive search.
        for i in 0..<n where out[i] < 0 {
            out[i] = exhaustiveNearest(points + i * dim)
        }
    }

    private func exhaustiveNearest(_ x: UnsafePointer<Float>) -> Int32 {
        var best = -Float.infinity, at = 0
        centroids.withUnsafeBufferPointer { c in
            for j in 0..<count {
                let row = c.baseAddress! + j * dim
                let score = LinearAlgebra.dot(x, row, count: dim) - 0.5 * LinearAlgebra.dot(row, row, count: dim)
                if score > best { best = score; at = j }
            }
        }
        return Int32(at)
    }
}

/// Raw pointers handed to `concurrentPerform` workers that write disjoint ranges.
struct UnsafeMutableSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Read-only raw pointers shared with `concurrentPerform` workers.
struct UnsafeSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafePointer<T>
    init(_ pointer: UnsafePointer<T>) { self.pointer = pointer }
}

/// The working arrays of one coarse-to-fine chunk, carved out of one allocation (released by `release`): each
/// row's probed groups, the counting sort's group starts and fill positions, the rows in group order, and per
/// fine step either the int16 rows, their scales and each row's best-two candidates, or the float step's per-probe
/// results and each row's best score.
private struct FineScratch {
    let base: UnsafeMutableRawPointer
    let top: UnsafeMutablePointer<Int32>
    let rows: UnsafeMutablePointer<Int32>
    let starts: UnsafeMutablePointer<Int>
    let fill: UnsafeMutablePointer<Int>
    let q: UnsafeMutablePointer<Int16>
    let rowScale: UnsafeMutablePointer<Float>
    let candidates: UnsafeMutablePointer<Int32>
    let candidateScores: UnsafeMutablePointer<Float>
    let local: UnsafeMutablePointer<Int32>
    let scores: UnsafeMutablePointer<Float>
    let bestScore: UnsafeMutablePointer<Float>

    init(rows n: Int, probes p: Int, groups g: Int, dim: Int, int16: Bool) {
        // Byte sizes, each rounded up to 64 so every array starts on a cache line.
        func round(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }
        let sizes = [round(n * p * 4), round(n * p * 4), round((g + 1) * 8), round(g * 8),
                     int16 ? round(n * dim * 2) : 0, int16 ? round(n * 4) : 0, int16 ? round(2 * n * 4) : 0, int16 ? round(2 * n * 4) : 0,
                     int16 ? 0 : round(n * p * 4), int16 ? 0 : round(n * p * 4), int16 ? 0 : round(n * 4)]
        var offsets = [Int](repeating: 0, count: sizes.count)
        for i in 1..<sizes.count { offsets[i] = offsets[i - 1] + sizes[i - 1] }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(64, offsets.last! + sizes.last!), alignment: 64)
        base = memory
        func at<T>(_ i: Int, _ type: T.Type) -> UnsafeMutablePointer<T> {
            (memory + offsets[i]).bindMemory(to: T.self, capacity: sizes[i] / MemoryLayout<T>.stride)
        }
        top = at(0, Int32.self)
        rows = at(1, Int32.self)
        starts = at(2, Int.self)
        fill = at(3, Int.self)
        q = at(4, Int16.self)
        rowScale = at(5, Float.self)
        candidates = at(6, Int32.self)
        candidateScores = at(7, Float.self)
        local = at(8, Int32.self)
        scores = at(9, Float.self)
        bestScore = at(10, Float.self)
    }

    func release() { base.deallocate() }
}
