import Foundation
import Tensor

/// Brute-force late interaction: the exact `Σ_q max_t q·d_t` of every document, the ground truth that
/// PLAID's recall is measured against.
public enum ExactMaxSim {
    /// Top `k` document indices (into `documents`) and scores for each query, best first.
    public static func topK(queries: [HostMatrix], documents: [HostMatrix], k: Int) -> [[(index: Int, score: Float)]] {
        guard let dim = queries.first?.cols, !documents.isEmpty else { return queries.map { _ in [] } }
        let allQueries = queries.flatMap(\.values)
        let width = allQueries.count / dim
        var queryOffsets = [0]
        for q in queries { queryOffsets.append(queryOffsets[queryOffsets.count - 1] + q.rows) }
        var scores = [[Float]](repeating: [Float](repeating: 0, count: documents.count), count: queries.count)
        let chunkTokens = max(1, (32 << 20) / max(1, width * 4))
        var buffer = [Float]()
        var products = [Float]()
        var start = 0
        while start < documents.count {
            var end = start
            var tokens = 0
            buffer.removeAll(keepingCapacity: true)
            while end < documents.count, tokens == 0 || tokens + documents[end].rows <= chunkTokens {
                buffer.append(contentsOf: documents[end].values)
                tokens += documents[end].rows
                end += 1
            }
            if products.count < tokens * width { products = [Float](repeating: 0, count: tokens * width) }
            buffer.withUnsafeBufferPointer { d in
                allQueries.withUnsafeBufferPointer { q in
                    products.withUnsafeMutableBufferPointer { p in
                        LinearAlgebra.multiplyTransposed(d.baseAddress!, rows: tokens, q.baseAddress!, rows: width, depth: dim, into: p.baseAddress!)
                    }
                }
            }
            var t = 0
            var best = [Float](repeating: 0, count: width)
            for doc in start..<end {
                for j in 0..<width { best[j] = -Float.infinity }
                for _ in 0..<documents[doc].rows {
                    let row = t * width
                    for j in 0..<width where products[row + j] > best[j] { best[j] = products[row + j] }
                    t += 1
                }
                for (qi, _) in queries.enumerated() {
                    var sum: Float = 0
                    for j in queryOffsets[qi]..<queryOffsets[qi + 1] { sum += best[j] }
                    scores[qi][doc] = sum
                }
            }
            start = end
        }
        return scores.map { row in
            TopK.best(Array(0..<Int32(row.count)), k: k) { row[Int($0)] }.map { (Int($0), row[Int($0)]) }
        }
    }
}

/// Synthetic ColBERT-like data (the generator of `shared/bench/fastplaid_baseline.py`): token vectors
/// `normalize(centre + noise·n/√d)` around random unit centres, document lengths log-normal around
/// a median; each query has half its vectors near tokens of one target document, half near random centres.
public struct SyntheticCorpus {
    public var documents: [HostMatrix]
    public var queries: [HostMatrix]
    public var targets: [Int]

    public init(documents count: Int, dim: Int, centres: Int, medianLength: Double, noise: Float = 0.3,
                queries queryCount: Int, queryLength: Int = 32, seed: UInt64 = 0) {
        var generator = SplitMix64(seed: seed)
        var spare: Float?
        // Box–Muller, both outputs used.
        func gaussian() -> Float {
            if let value = spare { spare = nil; return value }
            let u1 = max(Float.random(in: 0..<1, using: &generator), 1e-12)
            let u2 = Float.random(in: 0..<1, using: &generator)
            let radius = (-2 * log(u1)).squareRoot()
            spare = radius * sin(2 * .pi * u2)
            return radius * cos(2 * .pi * u2)
        }
        var centreValues = (0..<(centres * dim)).map { _ in gaussian() }
        LinearAlgebra.normalizeRows(&centreValues, cols: dim)
        let scale = noise / Float(dim).squareRoot()
        func around(_ centre: Int, into out: UnsafeMutablePointer<Float>) {
            var norm: Float = 0
            for d in 0..<dim {
                let value = centreValues[centre * dim + d] + scale * gaussian()
                out[d] = value
                norm += value * value
            }
            let inverse = 1 / norm.squareRoot()
            for d in 0..<dim { out[d] *= inverse }
        }
        var documents: [HostMatrix] = []
        var tokenCentres: [[Int32]] = []
        documents.reserveCapacity(count)
        for _ in 0..<count {
            let length = min(300, max(8, Int((exp(log(medianLength) + 0.5 * Double(gaussian()))).rounded())))
            var values = [Float](repeating: 0, count: length * dim)
            var ids: [Int32] = []
            values.withUnsafeMutableBufferPointer { v in
                for t in 0..<length {
                    let c = Int.random(in: 0..<centres, using: &generator)
                    ids.append(Int32(c))
                    around(c, into: v.baseAddress! + t * dim)
                }
            }
            tokenCentres.append(ids)
            documents.append(HostMatrix(rows: length, cols: dim, values: values))
        }
        var queries: [HostMatrix] = []
        var targets: [Int] = []
        for _ in 0..<queryCount {
            let target = Int.random(in: 0..<count, using: &generator)
            targets.append(target)
            var values = [Float](repeating: 0, count: queryLength * dim)
            values.withUnsafeMutableBufferPointer { v in
                for i in 0..<queryLength {
                    let c = i < queryLength / 2 ? Int(tokenCentres[target][Int.random(in: 0..<tokenCentres[target].count, using: &generator)])
                        : Int.random(in: 0..<centres, using: &generator)
                    around(c, into: v.baseAddress! + i * dim)
                }
            }
            queries.append(HostMatrix(rows: queryLength, cols: dim, values: values))
        }
        self.documents = documents
        self.queries = queries
        self.targets = targets
    }
}
