import Dispatch
import Tensor

/// Nearest-centroid assignment (`argmax_c 2·x·c − ‖c‖²`), the GEMM-heavy step of k-means and encoding.
///
/// With a backend the scores come from `backend.linear(x, weight: centroids)`; without one, from
/// CBLAS. For many centroids on the CPU a two-level search is used: points are routed to coarse
/// groups of centroids and scored only against their group's neighbourhood (about a tenth of the
/// centroids), one GEMM per group. A point may then get a near-nearest centroid; its residual is
/// still exact, so encoding stays faithful.
final class CentroidAssigner: Sendable {
    let centroids: [Float]
    let count: Int
    let dim: Int
    private let halfNormSquared: [Float]
    private let coarse: CoarseRouting?

    /// `exhaustive` forces exact scoring against every centroid.
    init(centroids: [Float], dim: Int, exhaustive: Bool = false) {
        self.centroids = centroids
        let count = centroids.count / dim
        self.dim = dim
        self.count = count
        var norms = [Float](repeating: 0, count: count)
        centroids.withUnsafeBufferPointer { c in
            for i in 0..<count { norms[i] = 0.5 * LinearAlgebra.dot(c.baseAddress! + i * dim, c.baseAddress! + i * dim, count: dim) }
        }
        self.halfNormSquared = norms
        self.coarse = (!exhaustive && count >= 1024) ? CoarseRouting(centroids: centroids, count: count, dim: dim) : nil
    }

    /// Index of the best centroid of each of the `n` rows of `points`.
    func assign(_ points: UnsafePointer<Float>, count n: Int, backend: (any Backend)?) -> [UInt32] {
        var result = [UInt32](repeating: 0, count: n)
        guard n > 0 else { return result }
        if let backend, (try? assignOnBackend(points, count: n, backend: backend, into: &result)) != nil {
            return result
        }
        result.withUnsafeMutableBufferPointer { out in
            if let coarse {
                assignRouted(points, count: n, coarse: coarse, into: out.baseAddress!)
            } else {
                assignExhaustive(points, count: n, into: out.baseAddress!)
            }
        }
        return result
    }

    private func assignOnBackend(_ points: UnsafePointer<Float>, count n: Int, backend: any Backend,
                                 into result: inout [UInt32]) throws {
        let weight = try backend.upload(HostMatrix(rows: count, cols: dim, values: centroids))
        let chunk = max(1, min(n, (256 << 20) / max(1, count * 4)))
        var start = 0
        while start < n {
            let rows = min(chunk, n - start)
            let x = try backend.upload(HostMatrix(rows: rows, cols: dim,
                                                  values: Array(UnsafeBufferPointer(start: points + start * dim, count: rows * dim))))
            let scores = try backend.download(try backend.linear(x, weight: weight, bias: nil, activation: .none, residual: nil))
            scores.values.withUnsafeBufferPointer { s in
                for r in 0..<rows { result[start + r] = argmax(s.baseAddress! + r * count, subset: nil) }
            }
            start += rows
        }
    }

    private func assignExhaustive(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<UInt32>) {
        let chunk = max(1, min(1024, (64 << 20) / max(1, count * 4)))
        let chunks = (n + chunk - 1) / chunk
        centroids.withUnsafeBufferPointer { c in
            var scores = [Float](repeating: 0, count: chunk * count)
            scores.withUnsafeMutableBufferPointer { s in
                for index in 0..<chunks {
                    let start = index * chunk
                    let rows = min(chunk, n - start)
                    LinearAlgebra.multiplyTransposed(points + start * dim, rows: rows, c.baseAddress!, rows: count,
                                                     depth: dim, into: s.baseAddress!)
                    for r in 0..<rows { out[start + r] = argmax(s.baseAddress! + r * count, subset: nil) }
                }
            }
        }
    }

    private func assignRouted(_ points: UnsafePointer<Float>, count n: Int, coarse: CoarseRouting,
                              into out: UnsafeMutablePointer<UInt32>) {
        // Route every point to its best coarse group.
        let groups = coarse.router.assign(points, count: n, backend: nil)
        var grouping = [[Int32]](repeating: [], count: coarse.groupCount)
        for i in 0..<n { grouping[Int(groups[i])].append(Int32(i)) }
        let members = grouping
        let output = UnsafeMutableSendablePointer(out)
        let sendablePoints = UnsafeSendablePointer(points)
        let dim = self.dim
        DispatchQueue.concurrentPerform(iterations: coarse.groupCount) { g in
            let rows = members[g]
            guard !rows.isEmpty else { return }
            let candidates = coarse.neighbourhood[g]
            let local = coarse.neighbourhoodVectors[g]
            let block = 256
            var gathered = [Float](repeating: 0, count: block * dim)
            var scores = [Float](repeating: 0, count: block * candidates.count)
            var start = 0
            while start < rows.count {
                let m = min(block, rows.count - start)
                gathered.withUnsafeMutableBufferPointer { x in
                    for r in 0..<m {
                        (x.baseAddress! + r * dim).update(from: sendablePoints.pointer + Int(rows[start + r]) * dim, count: dim)
                    }
                    local.withUnsafeBufferPointer { c in
                        scores.withUnsafeMutableBufferPointer { s in
                            LinearAlgebra.multiplyTransposed(x.baseAddress!, rows: m, c.baseAddress!, rows: candidates.count,
                                                             depth: dim, into: s.baseAddress!)
                            for r in 0..<m {
                                let best = argmax(s.baseAddress! + r * candidates.count, subset: candidates)
                                output.pointer[Int(rows[start + r])] = best
                            }
                        }
                    }
                }
                start += m
            }
        }
    }

    /// Best centroid for one row of dot products; `subset` maps local columns to centroid ids.
    @inline(__always)
    private func argmax(_ scores: UnsafePointer<Float>, subset: [UInt32]?) -> UInt32 {
        var best = 0
        var bestValue = -Float.infinity
        if let subset {
            for j in 0..<subset.count {
                let value = scores[j] - halfNormSquared[Int(subset[j])]
                if value > bestValue { bestValue = value; best = j }
            }
            return subset[best]
        }
        for j in 0..<count {
            let value = scores[j] - halfNormSquared[j]
            if value > bestValue { bestValue = value; best = j }
        }
        return UInt32(best)
    }
}

/// Coarse groups over a large centroid set and, for each group, the centroids worth scoring.
private final class CoarseRouting: Sendable {
    let groupCount: Int
    let router: CentroidAssigner
    /// Centroid ids scored for points routed to each group.
    let neighbourhood: [[UInt32]]
    /// Their vectors, contiguous, for one GEMM per block.
    let neighbourhoodVectors: [[Float]]

    init(centroids: [Float], count: Int, dim: Int) {
        let groups = max(2, Int(Double(count).squareRoot()))
        // Coarse centroids: a short k-means over the centroids themselves.
        let coarse = KMeans.lloyd(points: centroids, count: count, dim: dim, k: groups, iterations: 6, seed: 7, backend: nil)
        let router = CentroidAssigner(centroids: coarse, dim: dim, exhaustive: true)
        let owner = centroids.withUnsafeBufferPointer { router.assign($0.baseAddress!, count: count, backend: nil) }
        var owned = [[UInt32]](repeating: [], count: groups)
        for c in 0..<count { owned[Int(owner[c])].append(UInt32(c)) }
        // Each group scores its own centroids and those of its nearest groups.
        let spread = min(groups, 8)
        var coarseSimilarity = [Float](repeating: 0, count: groups * groups)
        coarse.withUnsafeBufferPointer { g in
            coarseSimilarity.withUnsafeMutableBufferPointer { s in
                LinearAlgebra.multiplyTransposed(g.baseAddress!, rows: groups, g.baseAddress!, rows: groups, depth: dim, into: s.baseAddress!)
            }
        }
        var neighbourhood: [[UInt32]] = []
        var vectors: [[Float]] = []
        for g in 0..<groups {
            let row = coarseSimilarity[(g * groups)..<((g + 1) * groups)]
            let nearest = row.indices.sorted { row[$0] > row[$1] }.prefix(spread).map { $0 - g * groups }
            var ids: [UInt32] = []
            for h in nearest { ids.append(contentsOf: owned[h]) }
            if ids.isEmpty { ids = [0] }
            var local = [Float](repeating: 0, count: ids.count * dim)
            for (j, id) in ids.enumerated() {
                for d in 0..<dim { local[j * dim + d] = centroids[Int(id) * dim + d] }
            }
            neighbourhood.append(ids)
            vectors.append(local)
        }
        self.groupCount = groups
        self.router = router
        self.neighbourhood = neighbourhood
        self.neighbourhoodVectors = vectors
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
