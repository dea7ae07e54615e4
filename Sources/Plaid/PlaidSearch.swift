import CKernels
import Dispatch
import Tensor

extension PlaidIndex {
    /// The `topK` best documents for a query (rows = query token vectors, unit length), best first.
    ///
    /// Stages: (1) query × centroid scores (one GEMM), `nIVFProbe` centroids per query token, centroids
    /// whose best score is under `centroidScoreThreshold` dropped; each document reached through the IVF
    /// gets, per query token, the best score among that token's probed centroids it contains; (2) the
    /// best `nFullScores` documents are scored from all their codes (`Σ_q max_t S[q, code_t]`, the
    /// reference's approximate score) through a u8-quantised copy of the table, 32 query tokens per SIMD
    /// max; (3) the best `exactCount(topK)` are re-scored with their residuals:
    /// `Σ_q max_t (S[q, code_t] + q · r_t) / ‖c_t + r_t‖`, asymmetrically (int8 query against the packed
    /// residuals in one fused kernel, see `ResidualScorer`). `subset` restricts results to those ids.
    public func search(query: HostMatrix, topK: Int, parameters: SearchParameters = SearchParameters(),
                       subset: Set<Int64>? = nil) -> [(id: Int64, score: Float)] {
        search(query: query, topK: topK, parameters: parameters, subset: subset, stageTimes: nil)
    }

    /// `search`, adding each stage's wall time in seconds to `stageTimes` (keys: `setup` (live rows and
    /// the centroid GEMM), `probe`, `ivf`, `codes`, `exact`, `select` (top-k selections)).
    public func search(query: HostMatrix, topK: Int, parameters: SearchParameters, subset: Set<Int64>?,
                       stageTimes: UnsafeMutablePointer<[String: Double]>?) -> [(id: Int64, score: Float)] {
        let nq = query.rows
        guard topK > 0, nq > 0, query.cols == manifest.dim, !segments.isEmpty else { return [] }
        var clock = ContinuousClock.now
        func lap(_ stage: String) {
            guard let stageTimes else { return }
            let now = ContinuousClock.now
            let elapsed = now - clock
            stageTimes.pointee[stage, default: 0] += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            clock = now
        }
        var context = SearchContext(index: self, query: query, subset: subset)
        defer { context.recycle() }
        guard context.totalRows > 0 else { return [] }
        lap("setup")
        let (probed, live) = context.probeAndPrune(parameters: parameters)
        lap("probe")
        var firstStage = context.ivfScores(probed: probed)
        lap("ivf")
        // In row order: the codes stage reads the segments front to back.
        let stage2 = context.bestReached(firstStage, k: max(parameters.nFullScores, topK))
        context.recycle(&firstStage)
        lap("select")
        let codeScores = context.codeScores(stage2, live: parameters.pruneCodeScores ? live : nil)
        lap("codes")
        var order = Array(0..<stage2.count).map(Int32.init)
        order = TopK.best(order, k: parameters.exactCount(topK: topK)) { codeScores[Int($0)] }
        let finalists = order.map { stage2[Int($0)] }
        lap("select")
        let exact = context.residualScores(finalists)
        lap("exact")
        let ranked = TopK.best(Array(0..<Int32(finalists.count)), k: topK) { exact[Int($0)] }
        let result = ranked.map { (context.documentID(finalists[Int($0)]), exact[Int($0)]) }
        lap("select")
        return result
    }
}

extension Optional where Wrapped == [UInt8] {
    /// `body` with the array's base address, or nil for no array.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<UInt8>?) -> R) -> R {
        switch self {
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}

/// Raw views of one segment's sections: plain pointers, so the hot loops (and their threads) copy
/// no class references (a `Segment` copy is a retain and a release on a shared counter).
struct SegmentView: @unchecked Sendable {
    let ids: UnsafeBufferPointer<Int64>
    let offsets: UnsafeBufferPointer<UInt64>
    let codes: UnsafeBufferPointer<UInt16>
    let residuals: UnsafeBufferPointer<UInt8>
    let ivfOffsets: UnsafeBufferPointer<UInt32>
    let ivfRows: UnsafeBufferPointer<UInt32>
    let inverseNorms: UnsafeBufferPointer<Float>

    init(_ segment: Segment) {
        ids = segment.ids
        offsets = segment.offsets
        codes = segment.codes
        residuals = segment.residuals
        ivfOffsets = segment.ivfOffsets
        ivfRows = segment.ivfRows
        inverseNorms = segment.inverseNorms
    }

    /// Token range of local document `row`.
    @inline(__always)
    func tokenRange(_ row: Int) -> Range<Int> { Int(offsets[row])..<Int(offsets[row + 1]) }
}

/// State of one search: the query × centroid table and the global row numbering of live documents.
struct SearchContext: @unchecked Sendable {
    let index: PlaidIndex
    let codec: ResidualCodec
    let query: HostMatrix
    let nq: Int
    let dim: Int
    let k: Int
    /// Row stride of `centroidScores`: `nq` rounded up to 8 (the residual kernel's query blocks).
    let tableStride: Int
    /// `K × tableStride`: score of every centroid against every query token, centroid-major (0 in
    /// the padding columns). Borrowed from the index's `SearchScratch` (`recycle` hands it back).
    private(set) var centroidScores: [Float]
    let scratch: SearchScratch
    let views: [SegmentView]
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
        let segments = index.segments
        views = segments.map(SegmentView.init)
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
                let base = bases[s], count = segment.documentCount
                // Whole words at once; rows are live unless tombstoned.
                var row = 0
                while row < count {
                    let g = base + row
                    if g & 63 == 0, row + 64 <= count {
                        allowed[g >> 6] = ~0
                        row += 64
                    } else {
                        allowed[g >> 6] |= 1 << UInt64(g & 63)
                        row += 1
                    }
                }
                allowedCount += count
                index.dead[segment.record.number]?.forEach { dead in
                    let g = base + dead
                    allowed[g >> 6] &= ~(1 << UInt64(g & 63))
                    allowedCount -= 1
                }
            }
        }
        self.allowed = allowed
        self.allowedCount = allowedCount
        self.eligible = eligible
        tableStride = (nq + 7) / 8 * 8
        scratch = index.searchScratch
        var table = scratch.floats(k * tableStride)
        Self.scoreCentroids(index.codec, query: query, stride: tableStride, into: &table)
        centroidScores = table
    }

    /// Hands the borrowed table back to the index's scratch (the context must not search afterwards).
    mutating func recycle() {
        scratch.give(&centroidScores)
    }

    /// Hands stage 1's table back to the index's scratch.
    func recycle(_ first: inout FirstStage) {
        scratch.give(&first.cells)
    }

    /// Centroids × query (zero columns padding it to `stride`), by `ck_centroid_scores` on two threads
    /// (halves of the centroids) when the product is large enough to gain: a BLAS call would wake its
    /// own thread pool for a product of a few dozen MFLOP, which costs more than the product on a busy
    /// machine. Every one of the `K × stride` values of `scores` is overwritten.
    static func scoreCentroids(_ codec: ResidualCodec, query: HostMatrix, stride: Int, into scores: inout [Float]) {
        let k = codec.centroidCount, dim = query.cols
        var transposed = [Float](repeating: 0, count: dim * stride)
        for q in 0..<query.rows {
            for d in 0..<dim { transposed[d * stride + q] = query.values[q * dim + d] }
        }
        precondition(scores.count == k * stride)
        let parts = k * stride * dim >= 1 << 20 ? 2 : 1
        codec.centroids.withUnsafeBufferPointer { c in
            transposed.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { s in
                    let centroids = UnsafeSendablePointer(c.baseAddress!), query = UnsafeSendablePointer(q.baseAddress!)
                    let out = UnsafeMutableSendablePointer(s.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: parts) { part in
                        let from = k * part / parts, to = k * (part + 1) / parts
                        ck_centroid_scores(centroids.pointer + from * dim, to - from, dim, query.pointer, stride, out.pointer + from * stride)
                    }
                }
            }
        }
    }

    /// Pieces the parallel stages split their work into for the two search threads: more than two, so
    /// that when the machine's other work delays one thread the other takes the remaining pieces.
    static let pieces = 4

    /// Segment index and local row of a global row.
    @inline(__always)
    func place(_ row: Int32) -> (segment: Int, row: Int) {
        let g = Int(row)
        var low = 0, high = views.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if bases[mid] <= g { low = mid } else { high = mid - 1 }
        }
        return (low, g - bases[low])
    }

    func documentID(_ row: Int32) -> Int64 {
        let (s, r) = place(row)
        return views[s].ids[r]
    }

    /// For each query token, its probed centroids in decreasing score order.
    func probe(parameters: SearchParameters) -> [[Int32]] { probeAndPrune(parameters: parameters).lists }

    /// `probe`'s lists, and the query's live centroids for the codes stage (`SearchParameters.pruneCodeScores`): those whose best score over
    /// the query tokens reaches the centroid score threshold (the others are the centroids probing drops),
    /// in increasing order; nil when the threshold is negative (nothing pruned).
    func probeAndPrune(parameters: SearchParameters) -> (lists: [[Int32]], live: [Int32]?) {
        var probe = max(1, parameters.nIVFProbe)
        let eligibleCount = eligible.map { $0.lazy.filter { $0 }.count } ?? k
        if eligible != nil, allowedCount > 0 {
            let live = max(1, index.documentCount)
            probe = min(max(probe, probe * live / allowedCount), max(1, eligibleCount))
        }
        probe = min(probe, k)
        // One pass over the table in memory order (centroid-major): each query token keeps its best
        // `probe` centroids sorted decreasing, and each centroid's best score decides the threshold
        // (`ck_probe_centroids`: eight query tokens per compare against their lists' floors).
        let threshold = parameters.centroidScoreThreshold
        var topScores = [Float](repeating: -.infinity, count: nq * probe)
        var topIDs = [Int32](repeating: -1, count: nq * probe)
        var best = [Float](repeating: -.infinity, count: k)
        var floors = [Float](repeating: -.infinity, count: nq)
        let mask = eligible.map { $0.map { UInt8($0 ? 1 : 0) } }
        centroidScores.withUnsafeBufferPointer { table in
            mask.withOptionalBuffer { mask in
                ck_probe_centroids(table.baseAddress!, k, nq, tableStride, probe, mask, &topScores, &topIDs, &best, &floors)
            }
        }
        // The lists hold eligible centroids only; a negative threshold keeps all of them.
        let lists = (0..<nq).map { q in
            topIDs[(q * probe)..<((q + 1) * probe)].filter { c in c >= 0 && (threshold < 0 || best[Int(c)] >= threshold) }
        }
        guard threshold >= 0 else { return (lists, nil) }
        var live: [Int32] = []
        for c in 0..<k where best[c] >= threshold { live.append(Int32(c)) }
        return (lists, live)
    }

    /// Stage 1's result: per global row, its score and a non-zero mark if the IVF stage reached it; the
    /// rows reached and allowed as a bitmap (`keep`), and how many they are.
    struct FirstStage {
        var cells: [ck_ivf_cell]
        var keep: [UInt64]
        var kept: Int
    }

    /// Stage 1: per document, `Σ_q` of the best probed-centroid score it contains for that token.
    /// Candidates are the allowed rows reached (`bestReached`). With enough IVF entries to visit
    /// (`splitAbove`), the rows are split in pieces (on 64-row boundaries, so that each piece writes its
    /// own words of `keep`) over the two threads: the IVF lists are sorted by row, so each piece visits
    /// only its part of every list and writes only its part of one shared table (no second table to
    /// zero, no merge pass), then marks its reached, allowed rows in `keep`.
    func ivfScores(probed: [[Int32]], splitAbove: Int = 1 << 16) -> FirstStage {
        let total = totalRows
        var entries = 0
        for q in 0..<nq {
            for c in probed[q] { for view in views { entries += Int(view.ivfOffsets[Int(c) + 1] - view.ivfOffsets[Int(c)]) } }
        }
        // More pieces than threads: a thread that the machine's other work delays holds up less of the
        // stage (the free thread takes the remaining pieces).
        let pieces = entries >= splitAbove && total >= 64 * SearchContext.pieces ? SearchContext.pieces : 1
        let cuts = (0...pieces).map { $0 == pieces ? total : total * $0 / pieces / 64 * 64 }
        let parts = (0..<pieces).map { cuts[$0]..<cuts[$0 + 1] }
        // Reused array (`SearchScratch`), each piece's rows cleared by the thread that fills them (800 KB
        // at 100k rows: half the clearing on each thread, and the rows in that core's cache).
        var cells = scratch.cells(total)
        var keep = [UInt64](repeating: 0, count: (total + 63) / 64)
        var kept = [Int](repeating: 0, count: pieces)
        cells.withUnsafeMutableBufferPointer { cells in
            keep.withUnsafeMutableBufferPointer { keep in
                kept.withUnsafeMutableBufferPointer { kept in
                    allowed.withUnsafeBufferPointer { allowed in
                        let cells = UnsafeMutableSendablePointer(cells.baseAddress!), keep = UnsafeMutableSendablePointer(keep.baseAddress!)
                        let kept = UnsafeMutableSendablePointer(kept.baseAddress!), allowed = UnsafeSendablePointer(allowed.baseAddress!)
                        DispatchQueue.concurrentPerform(iterations: parts.count) { part in
                            let rows = parts[part]
                            (cells.pointer + rows.lowerBound).update(repeating: ck_ivf_cell(score: 0, mark: 0), count: rows.count)
                            accumulate(probed: probed, rows: rows, cells: cells.pointer)
                            kept.pointer[part] = ck_ivf_keep_words(cells.pointer, allowed.pointer, total, rows.lowerBound / 64,
                                                                   (rows.upperBound + 63) / 64, keep.pointer)
                        }
                    }
                }
            }
        }
        return FirstStage(cells: cells, keep: keep, kept: kept.reduce(0, +))
    }

    /// The best `k` allowed rows that stage 1 reached, by its score, in increasing row order
    /// (`ck_select_reached_rows`: a selection over the dense table, no candidate list, comparison sort or
    /// (row, score) pairs).
    func bestReached(_ first: FirstStage, k: Int) -> [Int32] {
        let total = totalRows, k = min(k, total)
        guard k > 0 else { return [] }
        // Scratch, written before it is read (so not cleared).
        var rows = scratch.rows(total)
        var values = scratch.floats(2 * total)
        defer {
            scratch.give(&rows)
            scratch.give(&values)
        }
        return [Int32](unsafeUninitializedCapacity: k) { buffer, count in
            count = first.cells.withUnsafeBufferPointer { cells in
                first.keep.withUnsafeBufferPointer { keep in
                    ck_select_reached_rows(cells.baseAddress!, keep.baseAddress!, first.kept, total, k, buffer.baseAddress!, &rows, &values)
                }
            }
        }
    }

    /// Stage 1 over the global rows `rows`: per row, the sum of each query token's best probed-centroid
    /// score, into `cells` (zeroed), with a non-zero mark for every row reached.
    private func accumulate(probed: [[Int32]], rows: Range<Int>, cells: UnsafeMutablePointer<ck_ivf_cell>) {
        centroidScores.withUnsafeBufferPointer { table in
            for q in 0..<nq {
                // Marks are 1, 2, …: a row is reached once it holds any.
                let mark = UInt32(truncatingIfNeeded: q + 1)
                // Centroids come best first, so a row's first visit for this token is its best.
                for c in probed[q] {
                    let value = table[Int(c) * tableStride + q]
                    for (s, view) in views.enumerated() {
                        let base = bases[s], count = bases[s + 1] - base
                        // This segment's local rows inside `rows`.
                        let low = min(max(rows.lowerBound - base, 0), count), high = min(max(rows.upperBound - base, 0), count)
                        guard low < high else { continue }
                        var start = Int(view.ivfOffsets[Int(c)]), end = Int(view.ivfOffsets[Int(c) + 1])
                        if low > 0 { start = Self.firstIndex(view.ivfRows, from: start, to: end, atLeast: UInt32(low), of: count) }
                        if high < count { end = Self.firstIndex(view.ivfRows, from: start, to: end, atLeast: UInt32(high), of: count) }
                        if start < end {
                            ck_ivf_accumulate(view.ivfRows.baseAddress! + start, end - start, base, value, mark, cells)
                        }
                    }
                }
            }
        }
    }

    /// The first index in `from..<to` of the sorted `rows` (values below `limit`) holding a value ≥ `value`
    /// (`to` if none). The rows of an IVF list are spread about evenly over the segment, so the search
    /// starts where `value / limit` of the way through would put it and gallops outward from there: a few
    /// probes in the lines the piece reads next anyway, where a plain binary search over the list missed
    /// the cache at every step (80 % of the IVF stage's Swift samples were its compare).
    static func firstIndex(_ rows: UnsafeBufferPointer<UInt32>, from: Int, to: Int, atLeast value: UInt32, of limit: Int) -> Int {
        // rows[i] < value for every i < low, rows[i] ≥ value for every i in high..<to.
        var low = from, high = to
        if from < to {
            let span = to - from
            let guess = from + min(span - 1, Int(UInt64(span) * UInt64(value) / UInt64(max(limit, 1))))
            var step = 1
            if rows[guess] < value {
                low = guess + 1
                while low + step - 1 < high, rows[low + step - 1] < value {
                    low += step
                    step <<= 1
                }
                high = min(high, low + step - 1)
            } else {
                high = guess
                while high - step >= low, rows[high - step] >= value {
                    high -= step
                    step <<= 1
                }
                low = max(low, high - step + 1)
            }
        }
        while low < high {
            let mid = (low + high) / 2
            if rows[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Stage 2: `Σ_q max_t S[q, code_t]` for each row, from the u8-quantised table. With `live` (the
    /// query's live centroids, `probeAndPrune`), PLAID's centroid pruning: tokens of the other centroids
    /// count 0. That is the score of a table whose pruned rows are zero, so it never exceeds the unpruned
    /// score and equals it for a document whose best token for every query token is live. The table then
    /// holds the live rows only (plus a zero row), reached through a K-entry map: 600 rows of 32 bytes
    /// instead of 8,192 at 48-d, in L1 instead of L2. More than `compactBelow` live centroids (the map's
    /// u16 range) take the full table with the pruned rows zeroed instead: the same scores.
    func codeScores(_ rows: [Int32], live: [Int32]? = nil, compactBelow: Int = Int(UInt16.max)) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count)
        let work = rows.count
        let width = (nq + 31) / 32 * 32
        let compact = live.map { $0.count < compactBelow } ?? false
        var table: [UInt8]
        var remap: [UInt16] = []
        if let live, compact {
            table = scratch.bytes((live.count + 1) * width)
            remap = scratch.halves(k)
            remap.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            for (i, c) in live.enumerated() { remap[Int(c)] = UInt16(i + 1) }
            centroidScores.withUnsafeBufferPointer { s in
                table.withUnsafeMutableBufferPointer { t in
                    ck_quantize_live_scores_u8(s.baseAddress!, live, live.count, nq, tableStride, t.baseAddress!, width)
                }
            }
        } else {
            table = QuantizedCentroidTable(scores: centroidScores, centroids: k, nq: nq, stride: tableStride, scratch: scratch).bytes
            if let live {
                // Full table, pruned rows zeroed (the highest score, which sets the scale, is a live one).
                var isLive = [Bool](repeating: false, count: k)
                for c in live { isLive[Int(c)] = true }
                table.withUnsafeMutableBufferPointer { t in
                    for c in 0..<k where !isLive[c] { t[(c * width)..<((c + 1) * width)].update(repeating: 0) }
                }
            }
        }
        defer {
            scratch.give(&table)
            scratch.give(&remap)
        }
        let parts = work >= 1024 ? SearchContext.pieces : 1
        var pointers = [UnsafePointer<UInt16>?](repeating: nil, count: work)
        var counts = [Int](repeating: 0, count: work)
        for i in 0..<work {
            let (si, row) = place(rows[i])
            let view = views[si]
            let start = Int(view.offsets[row])
            pointers[i] = UnsafePointer(view.codes.baseAddress! + start)
            counts[i] = Int(view.offsets[row + 1]) - start
        }
        out.withUnsafeMutableBufferPointer { buffer in
            let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
            table.withUnsafeBufferPointer { bytes in
                remap.withUnsafeBufferPointer { map in
                    pointers.withUnsafeBufferPointer { p in
                        counts.withUnsafeBufferPointer { c in
                            let t = UnsafeSendablePointer(bytes.baseAddress!)
                            let map = map.baseAddress.map(UnsafeSendablePointer.init)
                            let codes = UnsafeSendablePointer(p.baseAddress!), lengths = UnsafeSendablePointer(c.baseAddress!)
                            let nq = self.nq
                            DispatchQueue.concurrentPerform(iterations: parts) { part in
                                // Contiguous halves in row order: nearby rows' codes share pages.
                                let from = work * part / parts, to = work * (part + 1) / parts
                                if compact, let map {
                                    ck_code_maxsum_u8_remap_batch(codes.pointer + from, lengths.pointer + from, to - from, map.pointer,
                                                                  t.pointer, width, nq, output.pointer + from)
                                } else {
                                    ck_code_maxsum_u8_batch(codes.pointer + from, lengths.pointer + from, to - from, t.pointer, width, nq,
                                                            output.pointer + from)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Stage 3: `Σ_q max_t q·normalize(c_t + r_t)`, MaxSim over the normalised reconstructions, by the
    /// fused int8 × packed-residual kernel (see `ResidualScorer`, `ck_residual_maxsim_sorted`) with each
    /// token's `1/‖c_t + r_t‖` read from its segment (`TokenInverseNorms`, stored at encode time: the
    /// kernel no longer derives it from int16 centroid rows). The finalists' tokens are visited in
    /// centroid order (`ck_gather_by_centroid`, which also copies their residuals and norms in that
    /// order), so the table rows and residuals each token needs stream through memory in order
    /// instead of missing the cache at random (4× faster at K = 8192; scoring the documents one after
    /// another instead, with software prefetch, measured 1.2–1.9× slower). 8-bit residuals (a cache line
    /// per 64 dimensions) are not copied: their kernel reads each in place through its address
    /// (`ck_order_by_centroid`), prefetching ahead. Two threads, each with half the documents, when there
    /// is enough work.
    func residualScores(_ rows: [Int32]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count)
        guard !rows.isEmpty else { return out }
        let scorer = query.values.withUnsafeBufferPointer { ResidualScorer(codec: codec, query: $0.baseAddress!, nq: nq, nqPadded: tableStride) }
        // Segments hold every token's norm (`Segment` checks the count), so the kernel needs no centroid
        // tables (the 8-bit kernel reads the codec's float centroids for nothing but its fallback).
        let bytes = codec.bytesPerToken, wide = codec.nbits == 8
        let spans = rows.map { row -> (segment: SegmentView, range: Range<Int>) in
            let (s, r) = place(row)
            return (views[s], views[s].tokenRange(r))
        }
        let tokens = spans.reduce(0) { $0 + $1.range.count }
        // Two parts, not `pieces`: each part streams the centroid and table rows of its tokens once, and
        // smaller parts share fewer rows.
        let parts = tokens >= 8192 ? 2 : 1
        let count = rows.count, k = self.k
        out.withUnsafeMutableBufferPointer { buffer in
            let output = UnsafeMutableSendablePointer(buffer.baseAddress!)
            codec.centroids.withUnsafeBufferPointer { c in
                centroidScores.withUnsafeBufferPointer { table in
                    scorer.withKernelQuery(centroids: c.baseAddress!, table: table.baseAddress!) { kernel in
                        ExactCentroids.withKernelCentroids(nil) { tables in
                            let shared = UnsafeSendablePointer(kernel), exactTables = UnsafeSendablePointer(tables)
                            DispatchQueue.concurrentPerform(iterations: parts) { part in
                                let members = Array(stride(from: part, to: count, by: parts))
                            let docCodes = members.map { Optional(UnsafePointer(spans[$0].segment.codes.baseAddress! + spans[$0].range.lowerBound)) }
                            let docResiduals = members.map {
                                Optional(UnsafePointer(spans[$0].segment.residuals.baseAddress! + spans[$0].range.lowerBound * bytes))
                            }
                            let docNorms = members.map {
                                Optional(UnsafePointer(spans[$0].segment.inverseNorms.baseAddress! + spans[$0].range.lowerBound))
                            }
                            let lengths = members.map { spans[$0].range.count }
                            let total = lengths.reduce(0, +)
                            // This part's tokens in centroid order, their residuals copied next to each other.
                            // (Filled by the kernel, so not zeroed first: about a MB per query at 128-d.)
                            // (Reused arrays from the index's `SearchScratch`.)
                            var starts = scratch.words(k + 1)
                            var sortedCodes = scratch.halves(total)
                            var owner = scratch.words(total)
                            var residuals = scratch.bytes(wide ? 0 : total * bytes)
                            var norms = scratch.floats(total)
                            // 8 bits: each token's residual address instead of a copy.
                            let addresses = UnsafeMutablePointer<UnsafePointer<UInt8>?>.allocate(capacity: wide ? max(total, 1) : 1)
                            defer {
                                scratch.give(&starts)
                                scratch.give(&sortedCodes)
                                scratch.give(&owner)
                                scratch.give(&residuals)
                                scratch.give(&norms)
                                addresses.deallocate()
                            }
                            norms.withUnsafeMutableBufferPointer { norms in
                                if wide {
                                    ck_order_by_centroid(k, members.count, docCodes, docResiduals, docNorms, lengths, bytes, &starts, &sortedCodes,
                                                         &owner, addresses, norms.baseAddress)
                                } else {
                                    ck_gather_by_centroid(k, members.count, docCodes, docResiduals, docNorms, lengths, bytes, &starts,
                                                          &sortedCodes, &owner, &residuals, norms.baseAddress)
                                }
                            }
                            var best = [Float](repeating: 0, count: members.count * scorer.nqPadded)
                            var scores = [Float](repeating: 0, count: members.count)
                            norms.withUnsafeBufferPointer { norms in
                                if wide {
                                    // The kernel query of an 8-bit codec is the base of its ck_residual8_query.
                                    let query8 = UnsafeRawPointer(shared.pointer).assumingMemoryBound(to: ck_residual8_query.self)
                                    ck_residual8_maxsim_batch(query8, members.count, total, sortedCodes, owner, addresses, norms.baseAddress,
                                                              &best, &scores)
                                } else {
                                    ck_residual_maxsim_sorted(shared.pointer, exactTables.pointer, members.count, total, sortedCodes, owner,
                                                              residuals, norms.baseAddress, &best, &scores)
                                }
                            }
                            for (j, i) in members.enumerated() { output.pointer[i] = scores[j] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
