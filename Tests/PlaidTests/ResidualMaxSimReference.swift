/// The exact stage's score in double arithmetic, the oracle of the 1/2/4-bit and 8-bit kernel tests: token
/// `t` is `centroid[code] + a + b·levels(t)`, query row `i` scores it `(ctable + offset + scale · Σ_d query(i, d) ·
/// level_d) / ‖token‖`; the best per query row, summed. Only the decoding of levels and the query layout differ
/// between the widths, so the callers pass those.
func residualMaxSimReference(tokens: Int, nq: Int, nqPadded: Int, dim: Int, codes: [UInt16], centroids: [Float], ctable: [Float],
                             offset: [Float], scale: [Float], a: Float, b: Float,
                             levels: (Int) -> [Double], query: (Int, Int) -> Double) -> Double {
    var best = [Double](repeating: -.infinity, count: nq)
    for t in 0..<tokens {
        let code = Int(codes[t])
        let v = levels(t)
        var norm = 0.0
        for d in 0..<dim {
            let x = Double(centroids[code * dim + d]) + Double(a) + Double(b) * v[d]
            norm += x * x
        }
        for i in 0..<nq {
            var dot = 0.0
            for d in 0..<dim { dot += query(i, d) * v[d] }
            let score = (Double(ctable[code * nqPadded + i]) + Double(offset[i]) + Double(scale[i]) * dot) / norm.squareRoot()
            best[i] = max(best[i], score)
        }
    }
    return best.reduce(0, +)
}
