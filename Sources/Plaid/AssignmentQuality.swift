import Tensor

/// How close an index's (coarse-to-fine) centroid assignment comes to exhaustive search.
public struct AssignmentQuality: Sendable {
    /// Vectors compared.
    public var vectors: Int
    /// Share of vectors given exactly their nearest centroid.
    public var agreement: Double
    /// Mean cosine between a vector and its nearest centroid (exhaustive search).
    public var meanCosineExact: Double
    /// Mean cosine between a vector and the centroid the index assigns it.
    public var meanCosineAssigned: Double
    /// True when the index assigns exhaustively (then agreement is 1 by construction).
    public var exhaustive: Bool
}

extension PlaidIndex {
    /// Assigns `vectors` (rows of one matrix, the index's dimension) as the index's writer does and
    /// exhaustively, and compares the two (`colgrep bench build` reports it; tests bound it).
    public func assignmentQuality(_ vectors: HostMatrix) throws -> AssignmentQuality {
        guard vectors.cols == dimension, vectors.rows > 0 else {
            throw PlaidError.invalidInput("assignmentQuality needs \(dimension)-d vectors, got \(vectors.rows) × \(vectors.cols)")
        }
        let assigner = codec.makeAssigner()
        let exhaustive = CentroidAssigner(centroids: codec.centroids, dim: codec.dim, groups: nil)
        let n = vectors.rows, dim = codec.dim
        let (assigned, exact) = vectors.values.withUnsafeBufferPointer { v in
            (assigner.assign(v.baseAddress!, count: n, backend: nil), exhaustive.assign(v.baseAddress!, count: n, backend: nil))
        }
        var same = 0
        var cosineExact = 0.0, cosineAssigned = 0.0
        vectors.values.withUnsafeBufferPointer { v in
            codec.centroids.withUnsafeBufferPointer { c in
                for i in 0..<n {
                    let x = v.baseAddress! + i * dim
                    let norm = LinearAlgebra.dot(x, x, count: dim).squareRoot()
                    func cosine(_ j: UInt32) -> Double {
                        let row = c.baseAddress! + Int(j) * dim
                        let denominator = norm * LinearAlgebra.dot(row, row, count: dim).squareRoot()
                        return denominator > 0 ? Double(LinearAlgebra.dot(x, row, count: dim) / denominator) : 0
                    }
                    if assigned[i] == exact[i] { same += 1 }
                    cosineExact += cosine(exact[i])
                    cosineAssigned += cosine(assigned[i])
                }
            }
        }
        return AssignmentQuality(vectors: n, agreement: Double(same) / Double(n), meanCosineExact: cosineExact / Double(n),
                                 meanCosineAssigned: cosineAssigned / Double(n), exhaustive: assigner.isExhaustive)
    }
}

/// How evenly an index's vectors spread over its centroids (what probing a centroid costs and finds).
public struct CentroidBalance: Sendable {
    /// Centroids.
    public var centroids: Int
    /// Centroids no stored vector is assigned to.
    public var empty: Int
    /// Centroids holding at most 2 vectors.
    public var tiny: Int
    /// Most vectors on one centroid.
    public var largest: Int
    /// Vectors per centroid at the 99th percentile.
    public var percentile99: Int
    /// Mean vectors per centroid.
    public var mean: Double
    /// Size of the centroid a random stored vector sits on (Σ n² / Σ n): the list a probe of a
    /// vector's own centroid reads; equals `mean` only for perfectly balanced clusters.
    public var sizeSeenByVector: Double
}

extension PlaidIndex {
    /// Vectors per centroid over all live segments (deleted rows included; they are few).
    public func centroidBalance() -> CentroidBalance {
        let k = centroidCount
        var sizes = [Int](repeating: 0, count: k)
        for segment in segments {
            for code in segment.codes where Int(code) < k { sizes[Int(code)] += 1 }
        }
        let total = sizes.reduce(0, +)
        let squares = sizes.reduce(0.0) { $0 + Double($1) * Double($1) }
        let sorted = sizes.sorted()
        return CentroidBalance(centroids: k, empty: sizes.filter { $0 == 0 }.count, tiny: sizes.filter { $0 <= 2 }.count,
                               largest: sorted.last ?? 0, percentile99: sorted.isEmpty ? 0 : sorted[min(k - 1, k * 99 / 100)],
                               mean: k > 0 ? Double(total) / Double(k) : 0, sizeSeenByVector: total > 0 ? squares / Double(total) : 0)
    }
}
