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
