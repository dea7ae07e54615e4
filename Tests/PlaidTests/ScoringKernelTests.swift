import CKernels
import Foundation
@testable import Plaid
import Testing

/// The SIMD scoring kernels of search against their scalar references (bit-identical), and the
/// scalar reference against plain float arithmetic.
@Suite struct ScoringKernelTests {
    /// Random inputs for one residual MaxSim call.
    struct Case {
        var dim: Int, nq: Int, nbits: Int, tokens: Int, k: Int
        var dimPadded: Int { (dim + 31) / 32 * 32 }
        var nqPadded: Int { (nq + 7) / 8 * 8 }
        var q: [Int8], scale: [Float], offset: [Float], lut: [UInt8], a: Float, b: Float
        var centroids: [Float], ctable: [Float], codes: [UInt16], packed: [UInt8]

        init(dim: Int, nq: Int, nbits: Int, tokens: Int, seed: UInt64) {
            var g = SplitMix64(seed: seed)
            let k = 37
            self.dim = dim; self.nq = nq; self.nbits = nbits; self.tokens = tokens; self.k = k
            let dp = (dim + 31) / 32 * 32, nqp = (nq + 7) / 8 * 8
            q = [Int8](repeating: 0, count: nqp * dp)
            scale = [Float](repeating: 0, count: nqp)
            offset = [Float](repeating: 0, count: nqp)
            for i in 0..<nq {
                for d in 0..<dim { q[i * dp + d] = Int8.random(in: -127...127, using: &g) }
                scale[i] = Float.random(in: 0.0001...0.001, using: &g)
                offset[i] = Float.random(in: -0.1...0.1, using: &g)
            }
            lut = [UInt8](repeating: 0, count: 16)
            if nbits == 1 { lut[1] = 1 } else { for i in 0..<(1 << nbits) { lut[i] = UInt8.random(in: 0...63, using: &g) } }
            a = Float.random(in: -0.05...0, using: &g)
            b = Float.random(in: 0.001...0.01, using: &g)
            centroids = (0..<(k * dim)).map { _ in Float.random(in: -1...1, using: &g) }
            for c in 0..<k {
                var norm: Float = 0
                for d in 0..<dim { norm += centroids[c * dim + d] * centroids[c * dim + d] }
                for d in 0..<dim { centroids[c * dim + d] /= norm.squareRoot() }
            }
            ctable = (0..<(k * nqp)).map { i in i % nqp < nq ? Float.random(in: -1...1, using: &g) : 0 }
            codes = (0..<tokens).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }
            packed = (0..<(tokens * dim * nbits / 8)).map { _ in UInt8.random(in: 0...255, using: &g) }
        }

        func run(_ kernel: (UnsafePointer<ck_residual_query>, UnsafePointer<UInt16>, UnsafePointer<UInt8>, Int,
                            UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>) -> Float) -> Float {
            var best = [Float](repeating: 0, count: nqPadded)
            var levels = [UInt8](repeating: 0, count: dimPadded)
            return q.withUnsafeBufferPointer { q in scale.withUnsafeBufferPointer { s in offset.withUnsafeBufferPointer { o in
                lut.withUnsafeBufferPointer { l in centroids.withUnsafeBufferPointer { c in ctable.withUnsafeBufferPointer { t in
                    var query = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: nq, nq_padded: nqPadded, nbits: nbits,
                                                  q: q.baseAddress, scale: s.baseAddress, offset: o.baseAddress, lut: l.baseAddress,
                                                  a: a, b: b, centroids: c.baseAddress, ctable: t.baseAddress)
                    return kernel(&query, codes, packed, tokens, &best, &levels)
                } } }
            } } }
        }

        /// The same score in plain float arithmetic over the decoded residual levels.
        func floatReference() -> Double {
            var best = [Double](repeating: -.infinity, count: nq)
            for t in 0..<tokens {
                let code = Int(codes[t])
                var levels = [Double](repeating: 0, count: dim)
                for d in 0..<dim {
                    let bit = (t * dim + d) * nbits
                    levels[d] = Double(lut[(Int(packed[bit >> 3]) >> (bit & 7)) & ((1 << nbits) - 1)])
                }
                var norm = 0.0
                for d in 0..<dim {
                    let v = Double(centroids[code * dim + d]) + Double(a) + Double(b) * levels[d]
                    norm += v * v
                }
                for i in 0..<nq {
                    var dot = 0.0
                    for d in 0..<dim { dot += Double(q[i * dimPadded + d]) * levels[d] }
                    let score = (Double(ctable[code * nqPadded + i]) + Double(offset[i]) + Double(scale[i]) * dot) / norm.squareRoot()
                    best[i] = max(best[i], score)
                }
            }
            return best.reduce(0, +)
        }
    }

    @Test(arguments: [1, 2, 4])
    func residualMaxSimMatchesScalarExactly(nbits: Int) {
        var seed: UInt64 = UInt64(nbits) * 100
        for dim in [48, 128, 64, 40, 96, 160] {
            for nq in [1, 5, 32, 33] {
                for tokens in [1, 7, 100] {
                    seed += 1
                    let c = Case(dim: dim, nq: nq, nbits: nbits, tokens: tokens, seed: seed)
                    let fast = c.run(ck_residual_maxsim)
                    let scalar = c.run(ck_residual_maxsim_scalar)
                    #expect(fast.bitPattern == scalar.bitPattern, "dim \(dim) nq \(nq) tokens \(tokens): \(fast) vs \(scalar)")
                    let reference = c.floatReference()
                    #expect(abs(Double(scalar) - reference) <= 1e-4 * max(1, abs(reference)),
                            "dim \(dim) nq \(nq) tokens \(tokens): \(scalar) vs float \(reference)")
                }
            }
        }
    }

    @Test func codeMaxSumMatchesScalarAndPlainMax() {
        var g = SplitMix64(seed: 7)
        for nq in [1, 20, 32, 40, 64] {
            let width = (nq + 31) / 32 * 32, k = 300
            var table = [UInt8](repeating: 0, count: k * width)
            for c in 0..<k { for q in 0..<nq { table[c * width + q] = UInt8.random(in: 0...255, using: &g) } }
            for count in [1, 3, 4, 5, 130] {
                let codes = (0..<count).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }
                var plain = 0
                for q in 0..<nq { plain += Int(codes.map { table[Int($0) * width + q] }.max()!) }
                #expect(Int(ck_code_maxsum_u8(codes, count, table, width, nq)) == plain)
                #expect(Int(ck_code_maxsum_u8_scalar(codes, count, table, width, nq)) == plain)
            }
        }
    }
}

@Suite struct BatchKernelTests {
    /// The centroid-ordered batch kernel gives every document the single-document kernel's score, bit
    /// for bit, in its SIMD and scalar bodies.
    @Test(arguments: [1, 4])
    func batchMatchesSingleDocumentKernel(nbits: Int) {
        for dim in [48, 128] {
            let docs = 5, length = 9
            let c = ScoringKernelTests.Case(dim: dim, nq: 32, nbits: nbits, tokens: docs * length, seed: UInt64(dim + nbits))
            let bytes = dim * nbits / 8
            // Tokens in centroid order, as search passes them.
            let order = (0..<(docs * length)).sorted { (c.codes[$0], $0) < (c.codes[$1], $1) }
            c.packed.withUnsafeBufferPointer { packed in
                let pointers: [UnsafePointer<UInt8>?] = order.map { packed.baseAddress! + $0 * bytes }
                let owners = order.map { UInt32($0 / length) }
                let codes = order.map { c.codes[$0] }
                var fast = [Float](repeating: 0, count: docs), slow = [Float](repeating: 0, count: docs)
                _ = c.run { query, _, _, _, _, u in
                    var best = [Float](repeating: 0, count: docs * c.nqPadded)
                    ck_residual_maxsim_batch(query, docs, order.count, codes, owners, pointers, &best, &fast, u)
                    ck_residual_maxsim_batch_scalar(query, docs, order.count, codes, owners, pointers, &best, &slow, u)
                    return 0
                }
                for doc in 0..<docs {
                    var single = c
                    single.codes = Array(c.codes[(doc * length)..<((doc + 1) * length)])
                    single.packed = Array(c.packed[(doc * length * bytes)..<((doc + 1) * length * bytes)])
                    single.tokens = length
                    let expected = single.run(ck_residual_maxsim_scalar)
                    #expect(fast[doc].bitPattern == expected.bitPattern, "dim \(dim) doc \(doc): \(fast[doc]) vs \(expected)")
                    #expect(slow[doc].bitPattern == expected.bitPattern, "dim \(dim) doc \(doc): \(slow[doc]) vs \(expected)")
                }
            }
        }
    }
}
