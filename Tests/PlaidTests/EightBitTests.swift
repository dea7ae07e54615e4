import CKernels
import Foundation
@testable import Plaid
import Tensor
import Testing

/// 8-bit residuals (`PlaidConfig(nbits: 8)`): the codec, its int16 scoring kernel against the scalar
/// reference and plain float arithmetic, and an index built with them end to end.
@Suite struct EightBitCodecTests {
    /// Mean squared distance between original and stored (reconstructed) token vectors.
    private func reconstructionError(_ index: PlaidIndex, _ corpus: SyntheticCorpus) -> Double {
        var total = 0.0, count = 0
        for (id, stored) in index.reconstructedDocuments() {
            let original = corpus.documents[Int(id)].values
            for (x, y) in zip(original, stored.values) { total += Double(x - y) * Double(x - y) }
            count += stored.rows
        }
        return total / Double(max(1, count))
    }

    @Test func roundTripErrorIsFarBelowFourBit() throws {
        let corpus = smallCorpus(documents: 200, dim: 64, queries: 1)
        let four = temporaryDirectory("rt4"), eight = temporaryDirectory("rt8")
        defer { cleanUp(four); cleanUp(eight) }
        let a = try PlaidIndex.create(at: four, documents: documents(corpus), config: testConfig(nbits: 4), backend: nil)
        let b = try PlaidIndex.create(at: eight, documents: documents(corpus), config: testConfig(nbits: 8), backend: nil)
        let e4 = reconstructionError(a, corpus), e8 = reconstructionError(b, corpus)
        // Same centroids, so the whole gap is the residual code. Equal-probability buckets leave the two
        // outer buckets wide (all of each tail), and they dominate the 8-bit error: about 9× less squared
        // error than 4-bit on this data (~60× for Gaussian residuals), not the ~250× of optimal buckets.
        #expect(e8 * 6 < e4, "squared error per token: 4-bit \(e4), 8-bit \(e8)")
        // Residuals take one byte per dimension: twice the 4-bit bytes; both hold a 4-byte norm per token
        // (format 3).
        let tokens = corpus.documents.reduce(0) { $0 + $1.rows }
        let centroidBytes = a.centroidCount * 64 * 4
        // (The 4-bit index also stores exact-stage centroid tables; the 8-bit one has none.)
        let residualGrowth = (b.bytesOnDisk - b.centroidCount * 64 * 4 - b.exactCentroidBytes) - (a.bytesOnDisk - centroidBytes - a.exactCentroidBytes)
        #expect(abs(residualGrowth - tokens * 32) < tokens * 2, "8-bit index grew by \(residualGrowth) bytes over \(tokens) tokens")
    }

    @Test func encodeKernelMatchesLinearBucketCount() {
        var g = SplitMix64(seed: 81)
        for dim in [8, 48, 64, 100, 384] {
            let k = 5, count = 33
            let centroids = (0..<(k * dim)).map { _ in Float.random(in: -0.2...0.2, using: &g) }
            var cutoffs = (0..<255).map { _ in Float.random(in: -0.3...0.3, using: &g) }.sorted()
            cutoffs[100] = cutoffs[101]  // ties between cutoffs
            let codes = (0..<count).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }
            var x = (0..<(count * dim)).map { _ in Float.random(in: -0.6...0.6, using: &g) }
            // Residuals exactly on cutoffs, and below / above all of them.
            for t in 0..<count {
                let c = Int(codes[t]) * dim
                x[t * dim] = centroids[c] + cutoffs[t * 7 % 255]
                x[t * dim + 1] = centroids[c + 1] - 5
                x[t * dim + 2] = centroids[c + 2] + 5
            }
            var fast = [UInt8](repeating: 0, count: count * dim), scalar = fast, linear = fast
            ck_residual8_encode(x, dim, count, centroids, codes, cutoffs, &fast)
            ck_residual8_encode_scalar(x, dim, count, centroids, codes, cutoffs, &scalar)
            ck_residual_encode_scalar(x, dim, count, centroids, codes, cutoffs, 8, &linear)
            #expect(fast == linear, "dim \(dim): AVX2 binary search vs linear count")
            #expect(scalar == linear, "dim \(dim): scalar binary search vs linear count")
            #expect(linear.contains(0) && linear.contains(255))
        }
    }

    /// The Swift scalar quantiser and decoder agree with the kernel: bytes equal, decode = weights.
    @Test func codecQuantizesAndDecodesOneBytePerDimension() {
        var g = SplitMix64(seed: 82)
        let dim = 16
        let cutoffs = (1..<256).map { Float($0 - 128) / 1000 }
        // Bucket b lies between cutoffs b − 1 and b: its middle is (b − 127.5) / 1000.
        let weights = (0..<256).map { Float($0) / 1000 - 0.1275 }
        let centroid = [Float](repeating: 0, count: dim)
        let codec = ResidualCodec(dim: dim, nbits: 8, centroids: centroid, cutoffs: cutoffs, weights: weights)
        #expect(codec.bytesPerToken == dim)
        let residual = (0..<dim).map { _ in Float.random(in: -0.12...0.12, using: &g) }
        var packed = [UInt8](repeating: 0, count: dim)
        packed.withUnsafeMutableBufferPointer { codec.quantize(residual, into: $0.baseAddress!) }
        let encoded = residual.withUnsafeBufferPointer { codec.encode($0.baseAddress!, count: 1, backend: nil) }
        #expect(encoded.residuals == packed)
        var decoded = [Float](repeating: 0, count: dim)
        codec.byteTable.withUnsafeBufferPointer { table in
            packed.withUnsafeBufferPointer { p in
                decoded.withUnsafeMutableBufferPointer { codec.decodeResidual(p.baseAddress!, into: $0.baseAddress!, table: table.baseAddress!) }
            }
        }
        for d in 0..<dim {
            #expect(decoded[d] == weights[Int(packed[d])])
            #expect(abs(decoded[d] - residual[d]) <= 0.00051, "dimension \(d): \(residual[d]) decoded as \(decoded[d])")
        }
    }
}

@Suite struct EightBitKernelTests {
    /// Random inputs for one 8-bit residual MaxSim call, at the largest levels the kernel allows.
    struct Case {
        var dim: Int, nq: Int, tokens: Int, k = 29
        var nqPadded: Int { (nq + 7) / 8 * 8 }
        var q16: [Int16], scale: [Float], offset: [Float], levels: [Int16], a: Float, b: Float
        var centroids: [Float], ctable: [Float], codes: [UInt16], packed: [UInt8]

        init(dim: Int, nq: Int, tokens: Int, seed: UInt64) {
            var g = SplitMix64(seed: seed)
            self.dim = dim; self.nq = nq; self.tokens = tokens
            let limit = Int16(ResidualScorer.WideLevels.range(dim: dim)), nqp = (nq + 7) / 8 * 8, k = 29
            q16 = [Int16](repeating: 0, count: nqp * dim)
            scale = [Float](repeating: 0, count: nqp)
            offset = [Float](repeating: 0, count: nqp)
            for i in 0..<nq {
                for d in 0..<dim { q16[i * dim + d] = Int16.random(in: -limit...limit, using: &g) }
                q16[i * dim] = i % 2 == 0 ? limit : -limit
                scale[i] = Float.random(in: 1e-7...1e-6, using: &g)
                offset[i] = Float.random(in: -0.1...0.1, using: &g)
            }
            levels = (0..<256).map { _ in Int16.random(in: -limit...limit, using: &g) }
            levels[0] = -limit
            levels[255] = limit
            a = Float.random(in: -0.01...0.01, using: &g)
            b = Float.random(in: 1e-5...1e-4, using: &g)
            centroids = (0..<(k * dim)).map { _ in Float.random(in: -1...1, using: &g) }
            for c in 0..<k {
                var norm: Float = 0
                for d in 0..<dim { norm += centroids[c * dim + d] * centroids[c * dim + d] }
                for d in 0..<dim { centroids[c * dim + d] /= norm.squareRoot() }
            }
            ctable = (0..<(k * nqp)).map { i in i % nqp < nq ? Float.random(in: -1...1, using: &g) : 0 }
            codes = (0..<tokens).map { _ in UInt16.random(in: 0..<UInt16(k), using: &g) }
            packed = (0..<(tokens * dim)).map { _ in UInt8.random(in: 0...255, using: &g) }
        }

        func withQuery<R>(_ body: (UnsafePointer<ck_residual8_query>) -> R) -> R {
            q16.withUnsafeBufferPointer { q in scale.withUnsafeBufferPointer { s in offset.withUnsafeBufferPointer { o in
                levels.withUnsafeBufferPointer { l in centroids.withUnsafeBufferPointer { c in ctable.withUnsafeBufferPointer { t in
                    let base = ck_residual_query(dim: dim, dim_padded: (dim + 31) / 32 * 32, nq: nq, nq_padded: nqPadded, nbits: 8,
                                                 q: nil, scale: s.baseAddress, offset: o.baseAddress, lut: nil, a: a, b: b,
                                                 centroids: c.baseAddress, ctable: t.baseAddress)
                    var query = ck_residual8_query(base: base, q16: q.baseAddress, q_stride: dim, levels: l.baseAddress)
                    return withUnsafePointer(to: &query) { body($0) }
                } } }
            } } }
        }

        func run(_ kernel: (UnsafePointer<ck_residual8_query>, UnsafePointer<UInt16>, UnsafePointer<UInt8>, Int,
                            UnsafeMutablePointer<Float>) -> Float) -> Float {
            var best = [Float](repeating: 0, count: nqPadded)
            return withQuery { kernel($0, codes, packed, tokens, &best) }
        }

        /// The same score in plain double arithmetic.
        func floatReference() -> Double {
            residualMaxSimReference(tokens: tokens, nq: nq, nqPadded: nqPadded, dim: dim, codes: codes, centroids: centroids,
                                    ctable: ctable, offset: offset, scale: scale, a: a, b: b,
                                    levels: { t in (0..<dim).map { Double(levels[Int(packed[t * dim + $0])]) } },
                                    query: { i, d in Double(q16[i * dim + d]) })
        }
    }

    @Test func residualMaxSimMatchesScalarExactly() {
        var seed: UInt64 = 800
        for dim in [48, 128, 384, 40, 8, 24] {
            for nq in [1, 5, 32, 33] {
                for tokens in [1, 7, 60] {
                    seed += 1
                    let c = Case(dim: dim, nq: nq, tokens: tokens, seed: seed)
                    let fast = c.run(ck_residual8_maxsim)
                    let scalar = c.run(ck_residual8_maxsim_scalar)
                    #expect(fast.bitPattern == scalar.bitPattern, "dim \(dim) nq \(nq) tokens \(tokens): \(fast) vs \(scalar)")
                    let reference = c.floatReference()
                    #expect(abs(Double(scalar) - reference) <= 1e-4 * max(1, abs(reference)),
                            "dim \(dim) nq \(nq) tokens \(tokens): \(scalar) vs double \(reference)")
                }
            }
        }
    }

    /// The batch kernel, called directly and through `ck_residual_maxsim_sorted` (as search calls it, with
    /// the base of the 8-bit query), gives every document the single-document score bit for bit.
    @Test func batchMatchesSingleDocumentKernel() {
        for dim in [48, 384, 7, 383] {
            let docs = 5, length = 9
            let c = Case(dim: dim, nq: 32, tokens: docs * length, seed: UInt64(dim))
            let order = (0..<(docs * length)).sorted { (c.codes[$0], $0) < (c.codes[$1], $1) }
            c.packed.withUnsafeBufferPointer { packed in
                let pointers: [UnsafePointer<UInt8>?] = order.map { packed.baseAddress! + $0 * dim }
                let owners = order.map { UInt32($0 / length) }
                let codes = order.map { c.codes[$0] }
                var fast = [Float](repeating: 0, count: docs), slow = fast, routed = fast, fastNormed = fast, slowNormed = fast
                var routedNormed = fast
                var best = [Float](repeating: 0, count: docs * c.nqPadded)
                c.withQuery { query in
                    ck_residual8_maxsim_batch(query, docs, order.count, codes, owners, pointers, nil, &best, &fast)
                    ck_residual8_maxsim_batch_scalar(query, docs, order.count, codes, owners, pointers, nil, &best, &slow)
                    // With the norms given (as segments store them since format 3): the pair-table body.
                    var norms = [Float](repeating: .nan, count: order.count), scalarNorms = norms
                    let contiguousForNorms = order.flatMap { c.packed[($0 * dim)..<(($0 + 1) * dim)] }
                    ck_residual8_inverse_norms(query, order.count, codes, contiguousForNorms, &norms)
                    ck_residual8_inverse_norms_scalar(query, order.count, codes, contiguousForNorms, &scalarNorms)
                    #expect(norms.map(\.bitPattern) == scalarNorms.map(\.bitPattern), "dim \(dim): SIMD and scalar norms")
                    ck_residual8_maxsim_batch(query, docs, order.count, codes, owners, pointers, norms, &best, &fastNormed)
                    ck_residual8_maxsim_batch_scalar(query, docs, order.count, codes, owners, pointers, norms, &best, &slowNormed)
                    var noTablesNormed = ck_exact_centroids(c16: nil, scale: nil, sum: nil)
                    let base8 = UnsafeRawPointer(query).assumingMemoryBound(to: ck_residual_query.self)
                    ck_residual_maxsim_sorted(base8, &noTablesNormed, docs, order.count, codes, owners, contiguousForNorms, norms, &best,
                                              &routedNormed)
                    let base = UnsafeRawPointer(query).assumingMemoryBound(to: ck_residual_query.self)
                    // Search hands the residuals gathered contiguously in centroid order (no centroid tables for 8 bits).
                    let contiguous = order.flatMap { c.packed[($0 * dim)..<(($0 + 1) * dim)] }
                    var noTables = ck_exact_centroids(c16: nil, scale: nil, sum: nil)
                    ck_residual_maxsim_sorted(base, &noTables, docs, order.count, codes, owners, contiguous, nil, &best, &routed)
                }
                for doc in 0..<docs {
                    var single = c
                    single.codes = Array(c.codes[(doc * length)..<((doc + 1) * length)])
                    single.packed = Array(c.packed[(doc * length * dim)..<((doc + 1) * length * dim)])
                    single.tokens = length
                    let expected = single.run(ck_residual8_maxsim_scalar)
                    #expect(fast[doc].bitPattern == expected.bitPattern, "dim \(dim) doc \(doc): \(fast[doc]) vs \(expected)")
                    #expect(slow[doc].bitPattern == expected.bitPattern, "dim \(dim) doc \(doc): \(slow[doc]) vs \(expected)")
                    #expect(routed[doc].bitPattern == expected.bitPattern, "dim \(dim) doc \(doc): \(routed[doc]) vs \(expected)")
                    for (name, value) in [("SIMD, norms given", fastNormed[doc]), ("scalar, norms given", slowNormed[doc]),
                                          ("routed, norms given", routedNormed[doc])] {
                        #expect(value.bitPattern == expected.bitPattern, "dim \(dim) doc \(doc) \(name): \(value) vs \(expected)")
                    }
                }
            }
        }
    }

    /// `ResidualScorer` on an 8-bit codec (int16 query, int16 levels) gives MaxSim over the codec's own
    /// float reconstructions to within rounding: the int16 grid costs nothing measurable.
    @Test func scorerMatchesFloatReconstructions() {
        var g = SplitMix64(seed: 83)
        let dim = 96, k = 16, nq = 20, nqPadded = 24, tokens = 40
        var centroids = (0..<(k * dim)).map { _ in Float.random(in: -1...1, using: &g) }
        LinearAlgebra.normalizeRows(&centroids, cols: dim)
        // Bucket weights of a Gaussian-like residual: dense in the middle, sparse in the tails.
        let cutoffs = (1..<256).map { i -> Float in let p = Float(i) / 256; return 0.03 * log(p / (1 - p)) }
        let weights = (0..<256).map { i -> Float in let p = (Float(i) + 0.5) / 256; return 0.03 * log(p / (1 - p)) }
        let codec = ResidualCodec(dim: dim, nbits: 8, centroids: centroids, cutoffs: cutoffs, weights: weights)
        var vectors = (0..<(tokens * dim)).map { i in centroids[(i / dim % k) * dim + i % dim] + Float.random(in: -0.05...0.05, using: &g) }
        LinearAlgebra.normalizeRows(&vectors, cols: dim)
        let (codes, packed) = vectors.withUnsafeBufferPointer { codec.encode($0.baseAddress!, count: tokens, backend: nil) }
        var query = (0..<(nq * dim)).map { _ in Float.random(in: -1...1, using: &g) }
        LinearAlgebra.normalizeRows(&query, cols: dim)
        var table = [Float](repeating: 0, count: k * nqPadded)
        for c in 0..<k {
            for q in 0..<nq {
                var dot: Float = 0
                for d in 0..<dim { dot += centroids[c * dim + d] * query[q * dim + d] }
                table[c * nqPadded + q] = dot
            }
        }
        let scorer = query.withUnsafeBufferPointer { ResidualScorer(codec: codec, query: $0.baseAddress!, nq: nq, nqPadded: nqPadded) }
        var best = [Float](repeating: 0, count: nqPadded)
        let kernel = centroids.withUnsafeBufferPointer { c in
            table.withUnsafeBufferPointer { t in
                scorer.withWideKernelQuery(centroids: c.baseAddress!, table: t.baseAddress!) { ck_residual8_maxsim($0, codes, packed, tokens, &best) }
            }
        }
        var expected = 0.0
        for q in 0..<nq {
            var top = -Double.infinity
            for t in 0..<tokens {
                let stored = packed.withUnsafeBufferPointer { codec.decode(code: Int(codes[t]), packed: $0.baseAddress! + t * dim) }
                var dot = 0.0
                for d in 0..<dim { dot += Double(stored[d]) * Double(query[q * dim + d]) }
                top = max(top, dot)
            }
            expected += top
        }
        #expect(abs(Double(kernel) - expected) < 2e-4 * Double(nq), "kernel \(kernel) vs float reconstructions \(expected)")
    }
}

@Suite struct EightBitIndexTests {
    @Test func indexSearchesAtLeastAsWellAsFourBit() throws {
        let corpus = smallCorpus()
        let four = temporaryDirectory("idx4"), eight = temporaryDirectory("idx8")
        defer { cleanUp(four); cleanUp(eight) }
        let a = try PlaidIndex.create(at: four, documents: documents(corpus), config: testConfig(nbits: 4), backend: nil)
        let b = try PlaidIndex.create(at: eight, documents: documents(corpus), config: testConfig(nbits: 8), backend: nil)
        let r4 = recall(index: a, corpus: corpus), r8 = recall(index: b, corpus: corpus)
        #expect(r8 >= 0.95 && r8 >= r4, "recall@10: 4-bit \(r4), 8-bit \(r8)")
        // The manifest records 8 bits; a full verification and a reopen accept it and search the same.
        try PlaidIndex.verify(at: eight)
        let reopened = try PlaidIndex.open(at: eight, verification: .full)
        #expect(reopened.config.nbits == 8)
        #expect(reopened.search(query: corpus.queries[0], topK: 10).map(\.id) == b.search(query: corpus.queries[0], topK: 10).map(\.id))
    }

    @Test func indexAppendsDeletesAndRetrains() throws {
        let corpus = smallCorpus()
        let directory = temporaryDirectory("upd8")
        defer { cleanUp(directory) }
        let all = documents(corpus)
        var config = testConfig(nbits: 8)
        config.retrainGrowthFactor = 3
        let index = try PlaidIndex.create(at: directory, documents: Array(all.prefix(30)), config: config, backend: nil)
        // A small append keeps the codec; a large one retrains it (8 bits kept).
        try index.append(Array(all[30..<40]), backend: nil)
        #expect(index.documentCount == 40)
        try index.append(Array(all[40...]), backend: nil)
        #expect(index.tokensAtTraining == all.reduce(0) { $0 + $1.vectors.rows })
        #expect(index.config.nbits == 8)
        #expect(recall(index: index, corpus: corpus) >= 0.95)
        // Replace one id with another's vectors, delete some, reopen.
        let query = corpus.queries[3]
        let target = try #require(index.search(query: query, topK: 1).first?.id)
        let replaced: Int64 = target == 7 ? 8 : 7
        try index.append([(replaced, corpus.documents[Int(target)])], backend: nil)
        #expect(Set(index.search(query: query, topK: 2).map(\.id)) == [replaced, target])
        try index.delete(ids: [target])
        let reopened = try PlaidIndex.open(at: directory, verification: .full)
        #expect(reopened.config.nbits == 8)
        #expect(reopened.search(query: query, topK: 1).first?.id == replaced)
        #expect(!reopened.search(query: query, topK: 10).contains { $0.id == target })
    }

    @Test func corruptResidualsAreNamed() throws {
        let directory = temporaryDirectory("bad8")
        defer { cleanUp(directory) }
        let corpus = smallCorpus(documents: 120, queries: 1)
        _ = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(nbits: 8), backend: nil)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.path).first { $0.hasPrefix("segment-") })
        let url = directory.appendingPathComponent(name)
        let intact = try Data(contentsOf: url)
        // A byte inside the residuals (the bulk of an 8-bit segment), then a truncation.
        for damaged in [{ var d = intact; d[d.count / 2] ^= 0x21; return d }(), intact.prefix(intact.count - 100)] {
            try damaged.write(to: url)
            do {
                _ = try PlaidIndex.open(at: directory)
                Issue.record("an 8-bit index with a damaged segment opened")
            } catch let error as PlaidError {
                guard case .corrupt(let file, _) = error else { Issue.record("expected .corrupt, got \(error)"); continue }
                #expect(file.hasSuffix(name), "\(error)")
                #expect(error.description.contains(name) && error.description.contains("rebuild"))
            }
        }
    }
}
