import Dispatch
import Tensor

extension PlaidIndex {
    /// The `topK` best documents for a query (rows = query token vectors, unit length), best first.
    ///
    /// Stages: (1) query × centroid scores, `nIVFProbe` centroids per query token, centroids whose
    /// best score is under `centroidScoreThreshold` dropped; each document reached through the IVF
    /// gets, per query token, the best score among that token's probed centroids it contains; (2) the
    /// best `nFullScores` documents are scored from all their codes (`Σ_q max_t S[q, code_t]`, the
    /// reference's approximate score); (3) the best `exactCount(topK)` are re-scored with their
    /// residuals: `Σ_q max_t (S[q, code_t] + q · r_t) / ‖c_t + r_t‖` with residuals decoded through a
    /// byte lookup table and multiplied with the query in one GEMM per block (asymmetric: the query
    /// stays float, the centroid term is read from stage 1's table). `subset` restricts results to those ids.
    public func search(query: HostMatrix, topK: Int, parameters: SearchParameters = SearchParameters(),
                       subset: Set<Int64>? = nil) -> [(id: Int64, score: Float)] {
        let nq = query.rows
        guard topK > 0, nq > 0, query.cols == manifest.dim, !segments.isEmpty else { return [] }
        let context = SearchContext(index: self, query: query, subset: subset)
        guard context.totalRows > 0 else { return [] }
        let probed = context.probe(parameters: parameters)
        let firstStage = context.ivfScores(probed: probed)
        let stage2 = TopK.best(firstStage.candidates, k: max(parameters.nFullScores, topK)) { firstStage.scores[Int($0)] }
        let codeScores = context.codeScores(stage2)
        var order = Array(0..<stage2.count).map(Int32.init)
        order = TopK.best(order, k: parameters.exactCount(topK: topK)) { codeScores[Int($0)] }
        let finalists = order.map { stage2[Int($0)] }
        let exact = context.residualScores(finalists)
        let ranked = TopK.best(Array(0..<Int32(finalists.count)), k: topK) { exact[Int($0)] }
        return ranked.map { (context.documentID(finalists[Int($0)]), exact[Int($0)]) }
    }
}

/// State of one search: the query × centroid table and the global row numbering of live documents.
struct SearchContext {
    let index: PlaidIndex
    let codec: ResidualCodec
    let query: HostMatrix
    let nq: Int
    let dim: Int
    let k: Int
    /// `K × nq`: score of every centroid against every query token, centroid-major.
    let centroidScores: [Float]
    let segments: [Segment]
    /// First global row of each segment, plus the total.
    let bases: [Int]
    /// Rows that may be returned (live, and in the subset if one is given).
    let allowed: [UInt64]
    let allowedCount: Int
    /// Centroids used by the subset (nil without a subset).
    let eligible: [Bool]?

    var totalRows: Int { bases[bases.count - 1] }

    init(index: PlaidIndex, query: HostMatrix, subset: Set<Int64>?) {
        self.index = index
        codec = index.codec
        self.query = query
        nq = query.rows
        dim = query.cols
        k = codec.centroidCount
        segments = index.segments
        var bases = [0]
        for segment in segments { bases.append(bases[bases.count - 1] + segment.documentCount) }
        self.bases = bases
        let total = bases[bases.count - 1]
        var allowed = [UInt64](repeating: 0, count: (total + 63) / 64)
        var allowedCount = 0
        var eligible: [Bool]?
        if let subset {
            var used = [Bool](repeating: false, count: codec.centroidCount)
            let numbers = Dictionary(uniqueKeysWithValues: segments.enumerated().map { ($1.record.number, $0) })
            for id in subset {
                guard let place = index.location[id], let s = numbers[Int(place.segment)] else { continue }
                let row = bases[s] + Int(place.row)
                allowed[row >> 6] |= 1 << UInt64(row & 63)
                allowedCount += 1
                for t in segments[s].tokenRange(Int(place.row)) { used[Int(segments[s].codes[t])] = true }
            }
            eligible = used
        } else {
            for (s, segment) in segments.enumerated() {
                let dead = index.dead[segment.record.number]
                for row in 0..<segment.documentCount where !(dead?.contains(row) ?? false) {
                    let g = bases[s] + row
                    allowed[g >> 6] |= 1 << UInt64(g & 63)
                    allowedCount += 1
                }
            }
        }
        self.allowed = allowed
        self.allowedCount = allowedCount
        self.eligible = eligible
        centroidScores = Self.scoreCentroids(index.codec, query: query)
    }

    static func scoreCentroids(_ codec: ResidualCodec, query: HostMatrix) -> [Float] {
        var scores = [Float](repeating: 0, count: codec.centroidCount * query.rows)
        codec.centroids.withUnsafeBufferPointer { c in
            query.values.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { s in
                    LinearAlgebra.multiplyTransposed(c.baseAddress!, rows: codec.centroidCount, q.baseAddress!, rows: query.rows,
                                                     depth: query.cols, into: s.baseAddress!)
                }
            }
        }
        return scores
    }

    @inline(__always)
    func isAllowed(_ row: Int) -> Bool { allowed[row >> 6] & (1 << UInt64(row & 63)) != 0 }

    /// Segment index and local row of a global row.
    @inline(__always)
    func place(_ row: Int32) -> (segment: Int, row: Int) {
        let g = Int(row)
        var low = 0, high = segments.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if bases[mid] <= g { low = mid } else { high = mid - 1 }
        }
        return (low, g - bases[low])
    }

    func documentID(_ row: Int32) -> Int64 {
        let (s, r) = place(row)
        return segments[s].ids[r]
    }

    /// For each query token, its probed centroids in decreasing score order.
    func probe(parameters: SearchParameters) -> [[Int32]] {
        var probe = max(1, parameters.nIVFProbe)
        let eligibleCount = eligible.map { $0.lazy.filter { $0 }.count } ?? k
        if eligible != nil, allowedCount > 0 {
            let live = max(1, index.documentCount)
            probe = min(max(probe, probe * live / allowedCount), max(1, eligibleCount))
        }
        probe = min(probe, k)
        // Best score of each centroid over the query tokens, for the threshold.
        var keep = [Bool](repeating: true, count: k)
        if parameters.centroidScoreThreshold >= 0 {
            for c in 0..<k {
                var best = -Float.infinity
                for q in 0..<nq { best = max(best, centroidScores[c * nq + q]) }
                keep[c] = best >= parameters.centroidScoreThreshold
            }
        }
        if let eligible { for c in 0..<k where !eligible[c] { keep[c] = false } }
        var result: [[Int32]] = []
        result.reserveCapacity(nq)
        var top = [(Float, Int32)]()
        for q in 0..<nq {
            top.removeAll(keepingCapacity: true)
            var floor = -Float.infinity
            for c in 0..<k where eligible?[c] ?? true {
                let score = centroidScores[c * nq + q]
                if top.count < probe || score > floor {
                    // Insert keeping `top` sorted decreasing; drop the worst beyond `probe`.
                    var i = top.count
                    top.append((score, Int32(c)))
                    while i > 0, top[i - 1].0 < score { top[i] = top[i - 1]; i -= 1 }
                    top[i] = (score, Int32(c))
                    if top.count > probe { top.removeLast() }
                    if top.count == probe { floor = top[top.count - 1].0 }
                }
            }
            result.append(top.filter { keep[Int($0.1)] }.map(\.1))
        }
        return result
    }

    /// Stage 1: per document, `Σ_q` of the best probed-centroid score it contains for that token.
    func ivfScores(probed: [[Int32]]) -> (scores: [Float], candidates: [Int32]) {
        let total = totalRows
        var scores = [Float](repeating: 0, count: total)
        var stamp = [UInt16](repeating: 0, count: total)
        var touched = [Bool](repeating: false, count: total)
        var candidates: [Int32] = []
        scores.withUnsafeMutableBufferPointer { score in
            stamp.withUnsafeMutableBufferPointer { stamp in
                touched.withUnsafeMutableBufferPointer { touched in
                    for q in 0..<nq {
                        let mark = UInt16(truncatingIfNeeded: q + 1)
                        for c in probed[q] {
                            let value = centroidScores[Int(c) * nq + q]
                            for (s, segment) in segments.enumerated() {
                                let base = bases[s]
                                let start = Int(segment.ivfOffsets[Int(c)]), end = Int(segment.ivfOffsets[Int(c) + 1])
                                for e in start..<end {
                                    let g = base + Int(segment.ivfRows[e])
                                    if stamp[g] != mark {
                                        stamp[g] = mark
                                        score[g] += value
                                        if !touched[g] {
                                            touched[g] = true
                                            if isAllowed(g) { candidates.append(Int32(g)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (scores, candidates)
    }

    /// Stage 2: `Σ_q max_t S[q, code_t]` for each row.
    func codeScores(_ rows: [Int32]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count)
        let work = rows.count
        let parts = work >= 2048 ? 2 : 1
        out.withUnsafeMutableBufferPointer { buffer in
            let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
            centroidScores.withUnsafeBufferPointer { table in
                let s = UnsafeSendablePointer(table.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    var best = [Float](repeating: 0, count: nq)
                    for i in stride(from: part, to: work, by: parts) {
                        let (si, r) = place(rows[i])
                        let segment = segments[si]
                        let range = segment.tokenRange(r)
                        output.pointer[i] = best.withUnsafeMutableBufferPointer { b in
                            maxPool(codes: segment.codes.baseAddress! + range.lowerBound, count: range.count, table: s.pointer, into: b.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }

    /// `Σ_q max_t table[code_t · nq + q]`, vectorised over query tokens.
    @inline(__always)
    private func maxPool(codes: UnsafePointer<UInt16>, count: Int, table: UnsafePointer<Float>, into best: UnsafeMutablePointer<Float>) -> Float {
        let nq = self.nq
        let first = table + Int(codes[0]) * nq
        best.update(from: first, count: nq)
        let vectors = nq / 8
        for t in 1..<max(1, count) {
            let row = table + Int(codes[t]) * nq
            for v in 0..<vectors {
                let current = UnsafeRawPointer(best + v * 8).loadUnaligned(as: SIMD8<Float>.self)
                let candidate = UnsafeRawPointer(row + v * 8).loadUnaligned(as: SIMD8<Float>.self)
                // Compare and blend (pointwiseMax's NaN handling keeps it from vectorising).
                UnsafeMutableRawPointer(best + v * 8).storeBytes(of: current.replacing(with: candidate, where: candidate .> current),
                                                                 as: SIMD8<Float>.self)
            }
            for q in (vectors * 8)..<nq { best[q] = max(best[q], row[q]) }
        }
        var sum: Float = 0
        for q in 0..<nq { sum += best[q] }
        return sum
    }

    /// Stage 3: `Σ_q max_t (S[q, code_t] + q · r_t) / ‖c_t + r_t‖` (MaxSim over the normalised
    /// reconstructions) with residuals decoded by lookup table and multiplied with the query in one
    /// GEMM per block of documents; the centroid term comes from the query × centroid table.
    func residualScores(_ rows: [Int32]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count)
        guard !rows.isEmpty else { return out }
        let bytes = codec.bytesPerToken
        let blockTokens = 4096
        var decoded = [Float](repeating: 0, count: blockTokens * dim)
        var products = [Float](repeating: 0, count: blockTokens * nq)
        var best = [Float](repeating: 0, count: nq)
        var inverseNorms = [Float](repeating: 0, count: blockTokens)
        var i = 0
        let centroids = codec.centroids
        codec.byteTable.withUnsafeBufferPointer { table in
            while i < rows.count {
                // Gather whole documents until the block is full.
                var members: [(segment: Int, range: Range<Int>)] = []
                var tokens = 0
                let first = i
                while i < rows.count {
                    let (s, r) = place(rows[i])
                    let range = segments[s].tokenRange(r)
                    if tokens > 0, tokens + range.count > blockTokens { break }
                    if tokens + range.count > decoded.count / dim {
                        decoded = [Float](repeating: 0, count: (tokens + range.count) * dim)
                        products = [Float](repeating: 0, count: (tokens + range.count) * nq)
                        inverseNorms = [Float](repeating: 0, count: tokens + range.count)
                    }
                    members.append((s, range))
                    tokens += range.count
                    i += 1
                }
                decoded.withUnsafeMutableBufferPointer { d in
                    var t = 0
                    centroids.withUnsafeBufferPointer { c in
                        for member in members {
                            let residuals = segments[member.segment].residuals.baseAddress!
                            let codes = segments[member.segment].codes
                            for token in member.range {
                                let r = d.baseAddress! + t * dim
                                codec.decodeResidual(residuals + token * bytes, into: r, table: table.baseAddress!)
                                // ‖c + r‖ for unit c: the reconstruction is normalised, as the reference does.
                                let centroid = c.baseAddress! + Int(codes[token]) * dim
                                let squared = 1 + 2 * LinearAlgebra.dot(centroid, r, count: dim) + LinearAlgebra.dot(r, r, count: dim)
                                inverseNorms[t] = squared > 0 ? 1 / squared.squareRoot() : 0
                                t += 1
                            }
                        }
                    }
                    query.values.withUnsafeBufferPointer { q in
                        products.withUnsafeMutableBufferPointer { p in
                            LinearAlgebra.multiplyTransposed(d.baseAddress!, rows: tokens, q.baseAddress!, rows: nq, depth: dim, into: p.baseAddress!)
                        }
                    }
                }
                centroidScores.withUnsafeBufferPointer { table in
                    products.withUnsafeBufferPointer { product in
                        best.withUnsafeMutableBufferPointer { best in
                            var t = 0
                            for (j, member) in members.enumerated() {
                                let codes = segments[member.segment].codes
                                for q in 0..<nq { best[q] = -Float.infinity }
                                for token in member.range {
                                    let centroid = table.baseAddress! + Int(codes[token]) * nq
                                    let row = product.baseAddress! + t * nq
                                    let scale = inverseNorms[t]
                                    var q = 0
                                    while q + 8 <= nq {
                                        let value = (UnsafeRawPointer(centroid + q).loadUnaligned(as: SIMD8<Float>.self)
                                            + UnsafeRawPointer(row + q).loadUnaligned(as: SIMD8<Float>.self)) * scale
                                        let current = UnsafeRawPointer(best.baseAddress! + q).loadUnaligned(as: SIMD8<Float>.self)
                                        UnsafeMutableRawPointer(best.baseAddress! + q).storeBytes(
                                            of: current.replacing(with: value, where: value .> current), as: SIMD8<Float>.self)
                                        q += 8
                                    }
                                    while q < nq {
                                        let value = (centroid[q] + row[q]) * scale
                                        if value > best[q] { best[q] = value }
                                        q += 1
                                    }
                                    t += 1
                                }
                                var sum: Float = 0
                                for q in 0..<nq { sum += best[q] }
                                out[first + j] = sum
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
