import Tensor

/// Hierarchical token pooling as ColGREP applies it to each document before indexing.
///
/// Row 0 (`[CLS]`) is kept unchanged; the other `m` rows are grouped into `max(1, m / factor)` clusters
/// by Ward linkage on cosine distance, and each cluster is replaced by the mean of its rows,
/// re-normalised to unit length. (The reference keeps the shorter means, but its index decompresses
/// every vector normalised, so unit means change nothing it ranks by; they let exact MaxSim over the
/// pooled vectors agree with the index, and spare the residual codec from encoding the lost length.)
/// Like the reference, merges are taken in nearest-neighbour-chain creation order
/// (not sorted by height) and cluster labels follow first appearance in row order.
///
/// Unlike the reference, which allocates a dense `(2n−1)²` `f64` matrix per document, this keeps one
/// `m × m` `Float` matrix whose slots are reused by merged clusters, and stops after the `m − k`
/// merges that decide the clusters.
public enum TokenPooler {
    public static func pool(_ vectors: HostMatrix, factor: Int) -> HostMatrix {
        let n = vectors.rows
        let dim = vectors.cols
        let m = n - 1
        guard factor > 1, n > 2, dim > 0 else { return vectors }
        let k = max(1, m / factor)
        guard k < m else { return vectors }

        // Cosine similarities of rows 1..n−1 through one GEMM on normalised copies.
        var unit = Array(vectors.values[dim...])
        LinearAlgebra.normalizeRows(&unit, cols: dim)
        var distance = [Float](repeating: 0, count: m * m)
        unit.withUnsafeBufferPointer { u in
            distance.withUnsafeMutableBufferPointer { d in
                LinearAlgebra.multiplyTransposed(u.baseAddress!, rows: m, u.baseAddress!, rows: m, depth: dim,
                                                 into: d.baseAddress!)
            }
        }
        // Squared cosine distance, the quantity Ward's Lance–Williams update works on.
        for i in 0..<(m * m) {
            let d = max(0, 1 - distance[i])
            distance[i] = d * d
        }

        let parent = wardMerges(squaredDistance: &distance, count: m, merges: m - k)

        // Labels in order of first appearance, then cluster means.
        var root = [Int](repeating: 0, count: m)
        for i in 0..<m { root[i] = find(parent, i) }
        var label = [Int](repeating: -1, count: m)
        var clusterOf = [Int](repeating: 0, count: m)
        var clusters = 0
        for i in 0..<m {
            if label[root[i]] < 0 { label[root[i]] = clusters; clusters += 1 }
            clusterOf[i] = label[root[i]]
        }
        var output = [Float](repeating: 0, count: (1 + clusters) * dim)
        var counts = [Float](repeating: 0, count: clusters)
        vectors.values.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                for j in 0..<dim { out[j] = input[j] }
                for i in 0..<m {
                    let c = clusterOf[i]
                    counts[c] += 1
                    let target = out.baseAddress! + (1 + c) * dim
                    let source = input.baseAddress! + (1 + i) * dim
                    for j in 0..<dim { target[j] += source[j] }
                }
                for c in 0..<clusters {
                    let target = out.baseAddress! + (1 + c) * dim
                    let norm = LinearAlgebra.dot(target, target, count: dim).squareRoot()
                    // A zero sum (opposite rows) stays zero, as a zero mean would.
                    let inverse = norm > 0 && norm.isFinite ? 1 / norm : 1 / counts[c]
                    for j in 0..<dim { target[j] *= inverse }
                }
            }
        }
        return HostMatrix(rows: 1 + clusters, cols: dim, values: output)
    }

    /// Runs the nearest-neighbour chain for `merges` merges and returns a union-find parent array over
    /// the original rows. Cluster `x` lives in the slot of its first row; the active list keeps the
    /// reference's order (original rows by index, then new clusters in creation order).
    static func wardMerges(squaredDistance d: inout [Float], count m: Int, merges: Int) -> [Int] {
        // Non-finite distances (from NaN or infinite input vectors) would make every comparison false and
        // leave the chain without a neighbour: treat them as very far but finite, so merging still ends.
        for i in d.indices where !d[i].isFinite { d[i] = 1e30 }
        // The nearest-neighbour chain needs d(i, j) == d(j, i): a GEMM's rounding can differ between the
        // two halves, and then the chain can cycle back onto a slot and later merge a cluster that no
        // longer exists (the force-unwrap crash, seen with near-duplicate token vectors).
        for i in 0..<m {
            for j in (i + 1)..<max(i + 1, m) {
                let value = min(d[i * m + j], d[j * m + i])
                d[i * m + j] = value
                d[j * m + i] = value
            }
        }
        var parent = Array(0..<m)
        var size = [Float](repeating: 1, count: m)
        var active = Array(0..<m)          // slots, in reference active-list order
        var chain: [Int] = []
        chain.reserveCapacity(m)
        var done = 0
        d.withUnsafeMutableBufferPointer { dist in
            while done < merges, active.count > 1 {
                if chain.isEmpty { chain.append(active[0]) }
                var x = chain[chain.count - 1]
                var y = -1
                while true {
                    x = chain[chain.count - 1]
                    var best = Float.infinity
                    var previous = -1
                    if chain.count > 1 {
                        previous = chain[chain.count - 2]
                        best = dist[x * m + previous]
                        y = previous
                    }
                    let row = dist.baseAddress! + x * m
                    for candidate in active where candidate != x {
                        let value = row[candidate]
                        if value < best { best = value; y = candidate }
                    }
                    if y == previous { break }
                    chain.append(y)
                }
                chain.removeLast(2)
                // Merge x and y into the slot of the one created earlier in active order.
                let keep = active.firstIndex(of: x)! < active.firstIndex(of: y)! ? x : y
                let gone = keep == x ? y : x
                let nx = size[x], ny = size[y]
                let dxy = dist[x * m + y]
                for k in active where k != x && k != y {
                    let nk = size[k]
                    let value = ((nx + nk) * dist[x * m + k] + (ny + nk) * dist[y * m + k] - nk * dxy) / (nx + ny + nk)
                    dist[keep * m + k] = value
                    dist[k * m + keep] = value
                }
                size[keep] = nx + ny
                parent[gone] = keep
                // The reference removes both and appends the new cluster at the end of the active list.
                active.removeAll { $0 == x || $0 == y }
                active.append(keep)
                done += 1
            }
        }
        return parent
    }

    private static func find(_ parent: [Int], _ i: Int) -> Int {
        var r = i
        while parent[r] != r { r = parent[r] }
        return r
    }
}
