import CKernels
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

        let parent = wardMerges(squaredDistance: distance, count: m, merges: m - k)

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

    /// Runs the nearest-neighbour chain for `merges` merges over the squared distances `d` (m × m) and
    /// returns a union-find parent array over the original rows; cluster `x` lives in the slot of its
    /// first row. The chain runs in C (`ck_ward_merges`, pool.c: padded rows, keys for the reference's
    /// order, vector minimum), with the reference's merges (`PoolingEquivalenceTests`).
    static func wardMerges(squaredDistance d: [Float], count m: Int, merges: Int) -> [Int] {
        guard m > 1 else { return Array(0..<max(m, 0)) }
        var parent = [Int64](repeating: 0, count: m)
        let status = d.withUnsafeBufferPointer { d in
            parent.withUnsafeMutableBufferPointer { ck_ward_merges(d.baseAddress!, m, merges, $0.baseAddress!) }
        }
        precondition(status == 0, "token pooling: out of memory for a \(m)-token document")
        return parent.map { Int($0) }
    }

    private static func find(_ parent: [Int], _ i: Int) -> Int {
        var r = i
        while parent[r] != r { r = parent[r] }
        return r
    }
}
