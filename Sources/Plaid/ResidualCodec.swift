import Dispatch
import Tensor

/// PLAID's residual codec: a vector is stored as its nearest centroid plus its residual, each
/// residual dimension quantised to `nbits` bits with buckets at quantiles of training residuals.
///
/// Packing (little-endian within a byte): 4 bits — dimension `2j` in the low nibble of byte `j`;
/// 2 bits — dimensions `4j…4j+3` from the low bits up; 1 bit — dimension `8j+i` in bit `i` of byte `j`,
/// so 64-bit words hold 64 consecutive dimensions (the binary scorer relies on this).
struct ResidualCodec: Sendable {
    let dim: Int
    let nbits: Int
    /// `K × dim`, unit rows.
    let centroids: [Float]
    /// `2^nbits − 1` increasing cutoffs: bucket = number of cutoffs strictly below the value.
    let cutoffs: [Float]
    /// `2^nbits` reconstruction values, one per bucket.
    let weights: [Float]
    /// For every byte value, the `8 / nbits` residual values it decodes to.
    let byteTable: [Float]

    var centroidCount: Int { centroids.count / dim }
    var bytesPerToken: Int { dim * nbits / 8 }
    var valuesPerByte: Int { 8 / nbits }

    init(dim: Int, nbits: Int, centroids: [Float], cutoffs: [Float], weights: [Float]) {
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
        let centroids = KMeans.train(points: sample, dim: dim, k: k, config: config, backend: backend).values
        stages.lap("k-means")
        // Residual statistics on up to 50,000 tokens spread over the sample (the reference holds out
        // min(5 %, 50,000) tokens).
        let heldOut = min(tokens, 50_000)
        let stride = max(1, tokens / heldOut)
        var held = [Float](repeating: 0, count: heldOut * dim)
        for i in 0..<heldOut {
            for d in 0..<dim { held[i * dim + d] = sample[(i * stride) * dim + d] }
        }
        let assigner = CentroidAssigner(centroids: centroids, dim: dim)
        let codes = held.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: heldOut, backend: backend) }
        var residuals = [Float](repeating: 0, count: heldOut * dim)
        for i in 0..<heldOut {
            let c = Int(codes[i]) * dim
            for d in 0..<dim { residuals[i * dim + d] = held[i * dim + d] - centroids[c + d] }
        }
        residuals.sort()
        let buckets = 1 << config.nbits
        let cutoffs = (1..<buckets).map { quantile(residuals, Double($0) / Double(buckets)) }
        let weights = bucketMeans(sorted: residuals, cutoffs: cutoffs)
        stages.lap("bucket quantiles")
        return ResidualCodec(dim: dim, nbits: config.nbits, centroids: centroids, cutoffs: cutoffs, weights: weights)
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

    /// Codes and packed residuals of `count` vectors.
    func encode(_ vectors: UnsafePointer<Float>, count: Int, backend: (any Backend)?) -> (codes: [UInt16], residuals: [UInt8]) {
        let assigner = CentroidAssigner(centroids: centroids, dim: dim)
        let assigned = assigner.assign(vectors, count: count, backend: backend)
        var codes = [UInt16](repeating: 0, count: count)
        for i in 0..<count { codes[i] = UInt16(assigned[i]) }
        var packed = [UInt8](repeating: 0, count: count * bytesPerToken)
        let chunk = 4096
        let chunks = (count + chunk - 1) / chunk
        let input = UnsafeSendablePointer(vectors)
        packed.withUnsafeMutableBufferPointer { out in
            let output = UnsafeMutableSendablePointer(out.baseAddress!)
            centroids.withUnsafeBufferPointer { c in
                let centroidBase = UnsafeSendablePointer(c.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: chunks) { index in
                    var residual = [Float](repeating: 0, count: dim)
                    let end = min(count, (index + 1) * chunk)
                    for t in (index * chunk)..<end {
                        let x = input.pointer + t * dim
                        let centroid = centroidBase.pointer + Int(assigned[t]) * dim
                        for d in 0..<dim { residual[d] = x[d] - centroid[d] }
                        quantize(residual, into: output.pointer + t * bytesPerToken)
                    }
                }
            }
        }
        return (codes, packed)
    }

    /// Buckets and packs one residual.
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
