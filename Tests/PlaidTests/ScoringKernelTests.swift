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

        /// The int16 centroid tables of the exact stage for these centroids.
        func exactTables() -> (rows: [Int16], scales: [Float], sums: [Float]) {
            var rows = [Int16](repeating: 0, count: k * dimPadded)
            var scales = [Float](repeating: 0, count: k), sums = [Float](repeating: 0, count: k)
            ck_exact_centroids_build(centroids, k, dim, dimPadded, &rows, &scales, &sums)
            return (rows, scales, sums)
        }

        /// Each token's 1/‖c + r‖ as the encoder stores it (`ck_residual_inverse_norms`, or its scalar body).
        func inverseNorms(scalar: Bool = false) -> [Float] {
            let tables = exactTables()
            var out = [Float](repeating: .nan, count: tokens)
            lut.withUnsafeBufferPointer { l in
                tables.rows.withUnsafeBufferPointer { r in tables.scales.withUnsafeBufferPointer { cs in tables.sums.withUnsafeBufferPointer { sums in
                    var query = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: 0, nq_padded: 0, nbits: nbits, q: nil, scale: nil,
                                                  offset: nil, lut: l.baseAddress, a: a, b: b, centroids: nil, ctable: nil)
                    var centroidTables = ck_exact_centroids(c16: r.baseAddress, scale: cs.baseAddress, sum: sums.baseAddress)
                    if scalar {
                        ck_residual_inverse_norms_scalar(&query, &centroidTables, tokens, codes, packed, &out)
                    } else {
                        ck_residual_inverse_norms(&query, &centroidTables, tokens, codes, packed, &out)
                    }
                } } }
            }
            return out
        }

        /// Scores of the documents made of consecutive runs of `lengths` tokens (summing to at most
        /// `tokens`), their tokens handed to `kernel` (ck_residual_maxsim_sorted or its scalar body) in
        /// centroid order, as search does. With `storedNorms`, the kernel gets each token's norm
        /// (`inverseNorms()`, gathered with the tokens) and no centroid tables (null rows: it must not read
        /// them); without, it computes the norms from the tables.
        func scores(lengths: [Int], storedNorms: Bool = false,
                    _ kernel: (UnsafePointer<ck_residual_query>, UnsafePointer<ck_exact_centroids>, Int, Int, UnsafePointer<UInt16>,
                               UnsafePointer<UInt32>, UnsafePointer<UInt8>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>,
                               UnsafeMutablePointer<Float>) -> Void) -> [Float] {
            let bytes = dim * nbits / 8
            let tables = exactTables()
            let total = lengths.reduce(0, +)
            let norms = storedNorms ? inverseNorms() : []
            var sortedNorms = [Float](repeating: .nan, count: storedNorms ? total : 0)
            // Centroid order by ck_gather_by_centroid, checked against a plain stable sort.
            var starts = [UInt32](repeating: 0, count: k + 1)
            var sortedCodes = [UInt16](repeating: 0, count: total), sortedOwners = [UInt32](repeating: 0, count: total)
            var sortedResiduals = [UInt8](repeating: 0, count: total * bytes)
            codes.withUnsafeBufferPointer { codes in
                packed.withUnsafeBufferPointer { packed in
                    norms.withUnsafeBufferPointer { norms in
                        var codeLists: [UnsafePointer<UInt16>?] = [], residualLists: [UnsafePointer<UInt8>?] = []
                        var normLists: [UnsafePointer<Float>?] = []
                        var start = 0
                        for length in lengths {
                            codeLists.append(codes.baseAddress! + start)
                            residualLists.append(packed.baseAddress! + start * bytes)
                            if storedNorms { normLists.append(norms.baseAddress! + start) }
                            start += length
                        }
                        sortedNorms.withUnsafeMutableBufferPointer { sortedNorms in
                            ck_gather_by_centroid(k, lengths.count, codeLists, residualLists, storedNorms ? normLists : nil, lengths, bytes,
                                                  &starts, &sortedCodes, &sortedOwners, &sortedResiduals,
                                                  storedNorms ? sortedNorms.baseAddress : nil)
                        }
                        // The same order without the copy: each slot's address is its token's residual in place.
                        var orderedCodes = [UInt16](repeating: 0, count: total), orderedOwners = [UInt32](repeating: 0, count: total)
                        var addresses = [UnsafePointer<UInt8>?](repeating: nil, count: total)
                        var orderedNorms = [Float](repeating: .nan, count: storedNorms ? total : 0)
                        orderedNorms.withUnsafeMutableBufferPointer { orderedNorms in
                            ck_order_by_centroid(k, lengths.count, codeLists, residualLists, storedNorms ? normLists : nil, lengths, bytes,
                                                 &starts, &orderedCodes, &orderedOwners, &addresses, storedNorms ? orderedNorms.baseAddress : nil)
                        }
                        #expect(orderedCodes == sortedCodes && orderedOwners == sortedOwners)
                        #expect(orderedNorms.map(\.bitPattern) == sortedNorms.map(\.bitPattern))
                        let pointed = addresses.flatMap { Array(UnsafeBufferPointer(start: $0!, count: bytes)) }
                        #expect(pointed == sortedResiduals, "addresses point at the residuals the copy holds")
                    }
                }
            }
            var owners: [UInt32] = []
            for (doc, length) in lengths.enumerated() { owners += [UInt32](repeating: UInt32(doc), count: length) }
            let order = (0..<total).sorted { (codes[$0], $0) < (codes[$1], $1) }
            #expect(sortedCodes == order.map { codes[$0] })
            #expect(sortedOwners == order.map { owners[$0] })
            #expect(sortedResiduals == order.flatMap { packed[($0 * bytes)..<(($0 + 1) * bytes)] })
            if storedNorms { #expect(sortedNorms.map(\.bitPattern) == order.map { norms[$0].bitPattern }) }
            var out = [Float](repeating: 0, count: lengths.count)
            var best = [Float](repeating: 0, count: lengths.count * nqPadded)
            q.withUnsafeBufferPointer { q in scale.withUnsafeBufferPointer { s in offset.withUnsafeBufferPointer { o in
                lut.withUnsafeBufferPointer { l in centroids.withUnsafeBufferPointer { c in ctable.withUnsafeBufferPointer { t in
                    sortedResiduals.withUnsafeBufferPointer { packed in
                        tables.rows.withUnsafeBufferPointer { r in tables.scales.withUnsafeBufferPointer { cs in
                            tables.sums.withUnsafeBufferPointer { sums in
                                var query = ck_residual_query(dim: dim, dim_padded: dimPadded, nq: nq, nq_padded: nqPadded, nbits: nbits,
                                                              q: q.baseAddress, scale: s.baseAddress, offset: o.baseAddress,
                                                              lut: l.baseAddress, a: a, b: b, centroids: c.baseAddress, ctable: t.baseAddress)
                                var centroidTables = storedNorms ? ck_exact_centroids(c16: nil, scale: nil, sum: nil)
                                    : ck_exact_centroids(c16: r.baseAddress, scale: cs.baseAddress, sum: sums.baseAddress)
                                sortedNorms.withUnsafeBufferPointer { inverses in
                                    kernel(&query, &centroidTables, lengths.count, total, sortedCodes, sortedOwners, packed.baseAddress!,
                                           storedNorms ? inverses.baseAddress : nil, &best, &out)
                                }
                            }
                        } }
                    }
                } } }
            } } }
            return out
        }

        /// The same score in plain float arithmetic over the decoded residual levels.
        func floatReference() -> Double {
            residualMaxSimReference(tokens: tokens, nq: nq, nqPadded: nqPadded, dim: dim, codes: codes, centroids: centroids,
                                    ctable: ctable, offset: offset, scale: scale, a: a, b: b, levels: { t in
                (0..<dim).map { d in
                    let bit = (t * dim + d) * nbits
                    return Double(lut[(Int(packed[bit >> 3]) >> (bit & 7)) & ((1 << nbits) - 1)])
                }
            }, query: { i, d in Double(q[i * dimPadded + d]) })
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
                    let fast = c.scores(lengths: [tokens], ck_residual_maxsim_sorted)[0]
                    let scalar = c.scores(lengths: [tokens], ck_residual_maxsim_sorted_scalar)[0]
                    #expect(fast.bitPattern == scalar.bitPattern, "dim \(dim) nq \(nq) tokens \(tokens): \(fast) vs \(scalar)")
                    // Norms stored at encode time give the bits of norms computed in the kernel.
                    let storedFast = c.scores(lengths: [tokens], storedNorms: true, ck_residual_maxsim_sorted)[0]
                    let storedScalar = c.scores(lengths: [tokens], storedNorms: true, ck_residual_maxsim_sorted_scalar)[0]
                    #expect(storedFast.bitPattern == scalar.bitPattern, "stored norms, dim \(dim) nq \(nq) tokens \(tokens): \(storedFast) vs \(scalar)")
                    #expect(storedScalar.bitPattern == scalar.bitPattern, "stored norms (scalar), dim \(dim): \(storedScalar) vs \(scalar)")
                    let reference = c.floatReference()
                    #expect(abs(Double(scalar) - reference) <= 1e-4 * max(1, abs(reference)),
                            "dim \(dim) nq \(nq) tokens \(tokens): \(scalar) vs float \(reference)")
                }
            }
        }
    }

    /// The encoder's norm pass: SIMD and scalar bodies agree bit for bit (tokens in runs that are not a
    /// multiple of 8, every packing), and equal 1/‖c + r‖ of the reconstruction in doubles to the int16
    /// rounding of the centroid rows.
    @Test(arguments: [1, 2, 4])
    func storedNormsMatchScalarAndFloat(nbits: Int) {
        var seed: UInt64 = 7_000 + UInt64(nbits)
        for dim in [48, 128, 40, 96] {
            for tokens in [1, 7, 8, 9, 100] {
                seed += 1
                let c = Case(dim: dim, nq: 1, nbits: nbits, tokens: tokens, seed: seed)
                let fast = c.inverseNorms(), scalar = c.inverseNorms(scalar: true)
                #expect(fast.map(\.bitPattern) == scalar.map(\.bitPattern), "dim \(dim) tokens \(tokens)")
                for t in 0..<tokens {
                    var squared = 0.0
                    for d in 0..<dim {
                        let bit = (t * dim + d) * nbits
                        let level = Double(c.lut[(Int(c.packed[bit >> 3]) >> (bit & 7)) & ((1 << nbits) - 1)])
                        let value = Double(c.centroids[Int(c.codes[t]) * dim + d]) + Double(c.a) + Double(c.b) * level
                        squared += value * value
                    }
                    let expected = 1 / squared.squareRoot()
                    #expect(abs(Double(fast[t]) - expected) <= 1e-3 * expected, "dim \(dim) token \(t): \(fast[t]) vs \(expected)")
                }
            }
        }
    }

    /// Several documents in one call, their tokens interleaved in centroid order (the kernel runs its
    /// passes over 32 tokens at a time): each gets the score it gets alone, bit for bit.
    @Test(arguments: [1, 4])
    func documentsScoreAsTheyDoAlone(nbits: Int) {
        for dim in [48, 128] {
            let lengths = [9, 1, 40, 33, 64, 2]
            let c = Case(dim: dim, nq: 32, nbits: nbits, tokens: lengths.reduce(0, +), seed: UInt64(dim + nbits))
            let fast = c.scores(lengths: lengths, ck_residual_maxsim_sorted)
            let slow = c.scores(lengths: lengths, ck_residual_maxsim_sorted_scalar)
            let stored = c.scores(lengths: lengths, storedNorms: true, ck_residual_maxsim_sorted)
            #expect(stored.map(\.bitPattern) == fast.map(\.bitPattern), "dim \(dim): stored norms \(stored) vs computed \(fast)")
            var start = 0
            for (doc, length) in lengths.enumerated() {
                var single = c
                single.codes = Array(c.codes[start..<(start + length)])
                single.packed = Array(c.packed[(start * dim * nbits / 8)..<((start + length) * dim * nbits / 8)])
                single.tokens = length
                let alone = single.scores(lengths: [length], ck_residual_maxsim_sorted_scalar)[0]
                #expect(fast[doc].bitPattern == alone.bitPattern, "dim \(dim) doc \(doc): \(fast[doc]) vs \(alone)")
                #expect(slow[doc].bitPattern == alone.bitPattern, "dim \(dim) doc \(doc): \(slow[doc]) vs \(alone)")
                start += length
            }
        }
    }

    /// The int16 centroid rows reconstruct the centroids to half a step, stay in range, and the sums
    /// are the float sums.
    @Test func exactCentroidTablesReconstructTheCentroids() {
        for dim in [48, 40, 128, 13] {
            let c = Case(dim: dim, nq: 1, nbits: 4, tokens: 1, seed: UInt64(dim))
            let tables = c.exactTables()
            for centroid in 0..<c.k {
                let row = c.centroids[(centroid * dim)..<((centroid + 1) * dim)]
                let scale = tables.scales[centroid]
                #expect(abs(Double(scale) - Double(row.map(abs).max()!) / Double(CK_EXACT_CENTROID_RANGE)) < 1e-9)
                for d in 0..<c.dimPadded {
                    let value = tables.rows[centroid * c.dimPadded + d]
                    #expect(abs(Int(value)) <= Int(CK_EXACT_CENTROID_RANGE))
                    if d < dim {
                        #expect(abs(Float(value) * scale - row[row.startIndex + d]) <= scale * 0.51)
                    } else {
                        #expect(value == 0)
                    }
                }
                #expect(abs(Double(tables.sums[centroid]) - row.reduce(0.0) { $0 + Double($1) }) < 1e-5)
            }
            // The SIMD build gives the scalar build's tables.
            var rows = [Int16](repeating: 0, count: c.k * c.dimPadded)
            var scales = [Float](repeating: 0, count: c.k), sums = [Float](repeating: 0, count: c.k)
            ck_exact_centroids_build_scalar(c.centroids, c.k, dim, c.dimPadded, &rows, &scales, &sums)
            #expect(rows == tables.rows)
            #expect(scales.map(\.bitPattern) == tables.scales.map(\.bitPattern))
            #expect(sums.map(\.bitPattern) == tables.sums.map(\.bitPattern))
        }
    }

    @Test func codeMaxSumMatchesScalarAndPlainMax() {
        var g = SplitMix64(seed: 7)
        for nq in [1, 20, 32, 40, 64] {
            let width = (nq + 31) / 32 * 32, k = 300
            var table = [UInt8](repeating: 0, count: k * width)
            for c in 0..<k { for q in 0..<nq { table[c * width + q] = UInt8.random(in: 0...255, using: &g) } }
            for count in [1, 3, 4, 5, 8, 9, 10, 17, 130] {
                let codes = (0..<count).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }
                var plain = 0
                for q in 0..<nq { plain += Int(codes.map { table[Int($0) * width + q] }.max()!) }
                #expect(Int(ck_code_maxsum_u8(codes, count, table, width, nq)) == plain)
                #expect(Int(ck_code_maxsum_u8_scalar(codes, count, table, width, nq)) == plain)
            }
        }
    }
}
