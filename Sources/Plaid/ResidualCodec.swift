import CKernels
import Dispatch
import Foundation
import Tensor

/// PLAID's residual codec: a vector is stored as its nearest centroid plus its residual, each
/// residual dimension quantised to `nbits` bits with buckets at quantiles of training residuals.
///
/// Packing (little-endian within a byte): 8 bits — dimension `j` in byte `j` (256 buckets, scored by the
/// int16 kernel of `residual8.c`); 4 bits — dimension `2j` in the low nibble of byte `j`;
/// 2 bits — dimensions `4j…4j+3` from the low bits up; 1 bit — dimension `8j+i` in bit `i` of byte `j`,
/// so 64-bit words hold 64 consecutive dimensions (the binary scorer relies on this).
struct ResidualCodec: Sendable {
    let dim: Int
    let nbits: Int
    /// `K × dim`, unit rows (in place in the codec file's mapping when read from an index).
    let centroids: FloatRows
    /// `2^nbits − 1` increasing cutoffs: bucket = number of cutoffs strictly below the value.
    let cutoffs: [Float]
    /// `2^nbits` reconstruction values, one per bucket.
    let weights: [Float]
    /// For every byte value, the `8 / nbits` residual values it decodes to.
    let byteTable: [Float]
    /// Coarse groups of the centroids (two-level k-means), for coarse-to-fine assignment; nil for
    /// small K and for indexes written before groups were stored (assignment is then exhaustive).
    let groups: CentroidGroups?
    /// The centroid tables the token norms come from, as the codec file stores them (nil: built when encoding).
    var exactCentroids: ExactCentroids?

    var centroidCount: Int { centroids.count / dim }
    var bytesPerToken: Int { dim * nbits / 8 }
    var valuesPerByte: Int { 8 / nbits }

    init(dim: Int, nbits: Int, centroids: [Float], cutoffs: [Float], weights: [Float], groups: CentroidGroups? = nil) {
        self.init(dim: dim, nbits: nbits, centroids: FloatRows(centroids), cutoffs: cutoffs, weights: weights, groups: groups)
    }

    init(dim: Int, nbits: Int, centroids: FloatRows, cutoffs: [Float], weights: [Float], groups: CentroidGroups? = nil) {
        self.groups = groups
        self.dim = dim
        self.nbits = nbits
        self.centroids = centroids
        self.cutoffs = cutoffs
        self.weights = weights
        let perByte = 8 / nbits
        let mask = (1 << nbits) - 1
        var table = [Float](repeating: 0, count: 256 * perByte)
        for byte in 0..<256 {
            for i in 0..<perByte { table[byte * perByte + i] = weights[(byte >> (i * nbits)) & mask] }
        }
        self.byteTable = table
    }

    /// Trains `k` centroids and bucket boundaries on `sample` (row-major `count × dim`).
    static func train(sample: [Float], k requested: Int, dim: Int, config: PlaidConfig, backend: (any Backend)?,
                      stages: inout StageClock) -> ResidualCodec {
        let tokens = sample.count / dim
        let k = max(1, min(requested, tokens))
        let trained = KMeans.trainGrouped(points: sample, dim: dim, k: k, config: config, backend: backend)
        let centroids = trained.centroids
        stages.lap("k-means")
        // Residual statistics on up to 50,000 tokens spread over the sample (the reference holds out
        // min(5 %, 50,000) tokens), quantiles over at most 2^18 of their values (strided: a quantile's rank
        // error at that size is far below a bucket's width).
        let heldOut = min(tokens, 50_000)
        let stride = max(1, tokens / heldOut)
        // Row copies (the element-by-element loop took one thread ~8 ms of a 100k-unit build's serial time).
        let held = [Float](unsafeUninitializedCapacity: heldOut * dim) { buffer, initialized in
            sample.withUnsafeBufferPointer { s in
                for i in 0..<heldOut { (buffer.baseAddress! + i * dim).initialize(from: s.baseAddress! + i * stride * dim, count: dim) }
            }
            initialized = heldOut * dim
        }
        let assigner = CentroidAssigner(centroids: centroids, dim: dim, groups: trained.groups)
        let codes = held.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: heldOut, backend: backend) }
        let valueStride = max(1, (heldOut * dim) >> 18)
        let residuals = sortedResiduals(held: held, codes: codes, centroids: centroids, dim: dim, stride: valueStride)
        let buckets = 1 << config.nbits
        let cutoffs = (1..<buckets).map { quantile(residuals, Double($0) / Double(buckets)) }
        let weights = bucketMeans(sorted: residuals, cutoffs: cutoffs)
        stages.lap("bucket quantiles")
        return ResidualCodec(dim: dim, nbits: config.nbits, centroids: centroids, cutoffs: cutoffs, weights: weights, groups: trained.groups)
    }

    /// Every `stride`-th value of the held-out rows' residuals (value m at flat position m · stride), sorted
    /// ascending. Computed and sorted in two halves on two threads, then merged (equal values keep the first half's
    /// first): the values of one sort of the whole, in the same order (a 100k-unit build's ~270k values took ~25 ms
    /// on one thread, serial time in its 1.2 s budget).
    static func sortedResiduals(held: [Float], codes: [UInt32], centroids: [Float], dim: Int, stride: Int) -> [Float] {
        let total = (held.count + stride - 1) / stride
        guard total > 0 else { return [] }
        @Sendable func values(_ range: Range<Int>) -> [Float] {
            var part = [Float](unsafeUninitializedCapacity: range.count) { buffer, initialized in
                held.withUnsafeBufferPointer { h in
                    centroids.withUnsafeBufferPointer { c in
                        for m in range {
                            let position = m * stride, row = position / dim
                            buffer[m - range.lowerBound] = h[position] - c[Int(codes[row]) * dim + position - row * dim]
                        }
                    }
                }
                initialized = range.count
            }
            part.sort()
            return part
        }
        guard total >= 1 << 15, UsableCores.count > 1 else { return values(0..<total) }
        let middle = total / 2
        let halves = SortedHalves()
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            let part = values(half == 0 ? 0..<middle : middle..<total)
            halves.store(part, first: half == 0)
        }
        let (low, high) = (halves.first, halves.second)
        return [Float](unsafeUninitializedCapacity: total) { buffer, initialized in
            var i = 0, j = 0, o = 0
            while i < low.count && j < high.count {
                // Ties take the first half's value first, as a stable sort of the whole would.
                if high[j] < low[i] { buffer[o] = high[j]; j += 1 } else { buffer[o] = low[i]; i += 1 }
                o += 1
            }
            while i < low.count { buffer[o] = low[i]; i += 1; o += 1 }
            while j < high.count { buffer[o] = high[j]; j += 1; o += 1 }
            initialized = total
        }
    }

    /// The reconstruction value of each bucket: the mean of the training residuals that fall in it
    /// (the squared-error optimum for those cutoffs; the reference's mid-bucket quantile sits inside
    /// the outer buckets' tails and shrinks them). A bucket no value falls in gets its cutoffs' middle.
    static func bucketMeans(sorted: [Float], cutoffs: [Float]) -> [Float] {
        var weights: [Float] = []
        var start = 0
        for bucket in 0...cutoffs.count {
            // The values with exactly `bucket` cutoffs strictly below them (as `quantize` buckets them).
            var end = start
            if bucket < cutoffs.count {
                while end < sorted.count, sorted[end] <= cutoffs[bucket] { end += 1 }
            } else {
                end = sorted.count
            }
            if end > start {
                var sum = 0.0
                for i in start..<end { sum += Double(sorted[i]) }
                weights.append(Float(sum / Double(end - start)))
            } else {
                let low = bucket > 0 ? cutoffs[bucket - 1] : cutoffs.first ?? 0
                let high = bucket < cutoffs.count ? cutoffs[bucket] : cutoffs.last ?? 0
                weights.append((low + high) / 2)
            }
            start = end
        }
        return weights
    }

    /// NumPy's default (linear interpolation) quantile of sorted values.
    static func quantile(_ sorted: [Float], _ q: Double) -> Float {
        guard !sorted.isEmpty else { return 0 }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = Float(position - Double(lower))
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// The assigner for this codec's centroids (packs them: build once per write, not per batch).
    func makeAssigner() -> CentroidAssigner {
        CentroidAssigner(centroids: centroids, dim: dim, groups: groups)
    }

    /// The assigner for one write of `rows` vectors: up to `CentroidAssigner.onDemandPackingRows` it packs only
    /// the groups those rows probe (an update's few hundred vectors leave some of K = 8,192's 128 groups
    /// unread), else all centroids once. Both give the same codes.
    func makeAssigner(forRows rows: Int) -> CentroidAssigner {
        CentroidAssigner(centroids: centroids, dim: dim, groups: groups,
                         packsGroupsOnDemand: rows <= CentroidAssigner.onDemandPackingRows)
    }

    /// Codes and packed residuals of `count` vectors, written to `codes` and `residuals`
    /// (`count · bytesPerToken` bytes), and with `inverseNorms` (`count` floats) each token's stored
    /// `1/‖c + r‖` (`TokenInverseNorms`). On the CPU each chunk of rows is assigned,
    /// quantised and normed by one worker while it is in cache (assign, subtract, bucketize, pack: no
    /// intermediate float arrays). A backend that is `ResidualQuantizing` (a GPU) assigns and packs the rows in
    /// one pass on its device, the same bytes for the same codes; the host then only computes the norms.
    func encode(_ vectors: UnsafePointer<Float>, count: Int, assigner: CentroidAssigner, backend: (any Backend)?,
                codes: UnsafeMutablePointer<UInt16>, residuals: UnsafeMutablePointer<UInt8>, inverseNorms: UnsafeMutablePointer<Float>? = nil,
                times: UnsafeMutablePointer<CodecEncodeTimes>? = nil) {
        guard count > 0 else { return }
        let norms = inverseNorms != nil ? TokenInverseNorms(codec: self) : nil
        let normsOut = inverseNorms.map(UnsafeMutableSendablePointer.init)
        let begin = ContinuousClock.now
        let bytes = bytesPerToken
        let chunk = CentroidAssigner.chunkRows
        let chunks = (count + chunk - 1) / chunk
        let input = UnsafeSendablePointer(vectors)
        let codesOut = UnsafeMutableSendablePointer(codes), residualsOut = UnsafeMutableSendablePointer(residuals)
        // A device that encodes the residuals where it assigned the rows: only the norms are left for the host.
        let onDevice = backend != nil
            && assigner.assignAndQuantize(vectors, count: count, backend: backend, cutoffs: cutoffs, nbits: nbits, codes: codes, packed: residuals)
        let precomputed: [UInt32]? = backend != nil && !onDevice ? assigner.assign(vectors, count: count, backend: backend) : nil
        let assigned = ContinuousClock.now
        defer {
            times?.pointee.assignSeconds += (assigned - begin).seconds
            times?.pointee.quantizeSeconds += (ContinuousClock.now - assigned).seconds
            if onDevice { times?.pointee.packedOnDevice = true }
        }
        // On the device path the codes and bytes are in place and each chunk only gets its norms.
        if onDevice && norms == nil { return }
        let dim = self.dim, nbits = self.nbits
        centroids.withUnsafeBufferPointer { c in
            cutoffs.withUnsafeBufferPointer { cut in
                let centroidBase = UnsafeSendablePointer(c.baseAddress!), cutBase = UnsafeSendablePointer(cut.baseAddress!)
                let body: @Sendable (Int) -> Void = { index in
                    let start = index * chunk, rows = min(chunk, count - start)
                    let x = input.pointer + start * dim
                    if !onDevice {
                        if let precomputed {
                            for r in 0..<rows { codesOut.pointer[start + r] = UInt16(precomputed[start + r]) }
                        } else {
                            var local = [Int32](repeating: 0, count: rows)
                            local.withUnsafeMutableBufferPointer { assigner.assignChunk(x, count: rows, into: $0.baseAddress!) }
                            for r in 0..<rows { codesOut.pointer[start + r] = UInt16(local[r]) }
                        }
                        ResidualPacking.encode(points: x, count: rows, dim: dim, centroids: centroidBase.pointer, codes: codesOut.pointer + start,
                                               cutoffs: cutBase.pointer, nbits: nbits, into: residualsOut.pointer + start * bytes)
                    }
                    if let norms, let normsOut {
                        norms.compute(codes: codesOut.pointer + start, packed: residualsOut.pointer + start * bytes, count: rows,
                                      into: normsOut.pointer + start)
                    }
                }
                if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
            }
        }
    }

    /// Codes and packed residuals of `count` vectors.
    func encode(_ vectors: UnsafePointer<Float>, count: Int, backend: (any Backend)?) -> (codes: [UInt16], residuals: [UInt8]) {
        var codes = [UInt16](repeating: 0, count: count)
        var packed = [UInt8](repeating: 0, count: count * bytesPerToken)
        let assigner = makeAssigner()
        codes.withUnsafeMutableBufferPointer { c in
            packed.withUnsafeMutableBufferPointer { p in
                encode(vectors, count: count, assigner: assigner, backend: backend, codes: c.baseAddress!, residuals: p.baseAddress!)
            }
        }
        return (codes, packed)
    }

    /// Buckets and packs one residual (the scalar reference of `ck_residual_encode`).
    func quantize(_ residual: [Float], into out: UnsafeMutablePointer<UInt8>) {
        let perByte = valuesPerByte
        var j = 0
        var d = 0
        while d < dim {
            var byte = 0
            for i in 0..<perByte {
                let value = residual[d + i]
                // Branch-free binary search: the number of cutoffs strictly below the value.
                var bucket = 0
                var step = 1 << (nbits - 1)
                while step > 0 {
                    if cutoffs[bucket + step - 1] < value { bucket += step }
                    step >>= 1
                }
                byte |= bucket << (i * nbits)
            }
            out[j] = UInt8(byte)
            j += 1
            d += perByte
        }
    }

    /// Writes the decoded residual of one token (`dim` floats) into `out`: one table row per byte,
    /// copied as one SIMD value.
    @inline(__always)
    func decodeResidual(_ packed: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>) {
        let raw = UnsafeRawPointer(table)
        let target = UnsafeMutableRawPointer(out)
        switch nbits {
        case 8:
            for j in 0..<bytesPerToken { out[j] = table[Int(packed[j])] }
        case 4:
            for j in 0..<bytesPerToken {
                target.storeBytes(of: raw.loadUnaligned(fromByteOffset: Int(packed[j]) * 8, as: SIMD2<Float>.self),
                                  toByteOffset: j * 8, as: SIMD2<Float>.self)
            }
        case 2:
            for j in 0..<bytesPerToken {
                target.storeBytes(of: raw.loadUnaligned(fromByteOffset: Int(packed[j]) * 16, as: SIMD4<Float>.self),
                                  toByteOffset: j * 16, as: SIMD4<Float>.self)
            }
        default:
            for j in 0..<bytesPerToken {
                target.storeBytes(of: raw.loadUnaligned(fromByteOffset: Int(packed[j]) * 32, as: SIMD8<Float>.self),
                                  toByteOffset: j * 32, as: SIMD8<Float>.self)
            }
        }
    }

    /// The full reconstruction `normalize(centroid + residual)` of one token.
    func decode(code: Int, packed: UnsafePointer<UInt8>) -> [Float] {
        var out = [Float](repeating: 0, count: dim)
        byteTable.withUnsafeBufferPointer { table in
            out.withUnsafeMutableBufferPointer { o in decodeResidual(packed, into: o.baseAddress!, table: table.baseAddress!) }
        }
        for d in 0..<dim { out[d] += centroids[code * dim + d] }
        LinearAlgebra.normalizeRows(&out, cols: dim)
        return out
    }
}

/// Where a batch encode's time went: the backend's bulk assignment (a GPU's upload, search and codes back)
/// and the CPU's residual quantisation (with the assignment itself when there is no backend); `gatherSeconds`
/// is `PlaidIndex.encode`'s copy of each batch's documents into one buffer.
struct CodecEncodeTimes {
    var gatherSeconds = 0.0
    /// The backend's assignment; with `packedOnDevice`, its residual packing too.
    var assignSeconds = 0.0
    /// The host's quantisation and norms; with `packedOnDevice`, the norms alone.
    var quantizeSeconds = 0.0
    /// A device packed the residuals (`ResidualQuantizing`) in at least one of the encodes timed.
    var packedOnDevice = false

    /// The parts as the profile names them.
    var laps: [(String, Double)] {
        [("encode: gather rows", gatherSeconds),
         (packedOnDevice ? "encode: assign + pack (device)" : "encode: assign", assignSeconds),
         (packedOnDevice ? "encode: norms" : "encode: quantize", quantizeSeconds)]
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The two sorted halves of `ResidualCodec.sortedResiduals`, each stored once by its own worker.
private final class SortedHalves: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: [Float] = []
    private(set) var second: [Float] = []

    func store(_ values: [Float], first isFirst: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if isFirst { first = values } else { second = values }
    }
}
