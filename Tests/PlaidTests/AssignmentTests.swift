import CKernels
import Foundation
import Tensor
import Testing

@testable import Plaid

/// The build-side kernels (assign.c) against their scalar bodies and the Swift reference, and
/// two-level k-means with coarse-to-fine assignment against exhaustive search.
@Suite struct AssignmentTests {
    private func randomValues(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    /// Exact x·c − ½‖c‖² in double precision.
    private func score(_ x: ArraySlice<Float>, _ c: ArraySlice<Float>) -> Double {
        zip(x, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } - 0.5 * c.reduce(0.0) { $0 + Double($1) * Double($1) }
    }

    @Test(arguments: [(dim: 48, k: 37), (dim: 128, k: 64), (dim: 8, k: 5), (dim: 24, k: 300)])
    func fusedArgmaxFindsTheNearestCentroid(dim: Int, k: Int) {
        let n = 53
        let x = randomValues(n * dim, seed: UInt64(dim * 1000 + k))
        let c = randomValues(k * dim, seed: UInt64(k))
        let packed = c.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
        // Every third row, in reverse: the row-list form.
        let rows: [Int32] = stride(from: n - 1, through: 0, by: -3).map { Int32($0) }
        var fast = [Int32](repeating: -1, count: rows.count), slow = fast
        var fastScore = [Float](repeating: 0, count: rows.count), slowScore = fastScore
        ck_assign_best(x, dim, rows, rows.count, packed.panels, packed.bias, k, &fast, &fastScore)
        ck_assign_best_scalar(x, dim, rows, rows.count, packed.panels, packed.bias, k, &slow, &slowScore)
        for (i, row) in rows.enumerated() {
            let xr = x[(Int(row) * dim)..<((Int(row) + 1) * dim)]
            let best = (0..<k).map { score(xr, c[($0 * dim)..<(($0 + 1) * dim)]) }.max()!
            for chosen in [fast[i], slow[i]] {
                #expect(chosen >= 0 && Int(chosen) < k)
                let got = score(xr, c[(Int(chosen) * dim)..<((Int(chosen) + 1) * dim)])
                #expect(abs(got - best) < 1e-4, "row \(row): centroid \(chosen) scores \(got), the best \(best)")
            }
            #expect(abs(Double(fastScore[i]) - best) < 1e-3)
        }
    }

    @Test func topColumnsAreTheBestInOrder() {
        let dim = 16, k = 77, n = 21, top = 5
        let x = randomValues(n * dim, seed: 7), c = randomValues(k * dim, seed: 8)
        let packed = c.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
        var fast = [Int32](repeating: -1, count: n * top), slow = fast
        ck_assign_top(x, dim, n, packed.panels, packed.bias, k, top, &fast)
        ck_assign_top_scalar(x, dim, n, packed.panels, packed.bias, k, top, &slow)
        for i in 0..<n {
            let xr = x[(i * dim)..<((i + 1) * dim)]
            let scores = (0..<k).map { score(xr, c[($0 * dim)..<(($0 + 1) * dim)]) }
            let expected = scores.enumerated().sorted { $0.element > $1.element }.prefix(top).map(\.element)
            for result in [fast, slow] {
                let got = result[(i * top)..<((i + 1) * top)].map { scores[Int($0)] }
                #expect(Set(result[(i * top)..<((i + 1) * top)]).count == top)
                for (a, b) in zip(got, expected) { #expect(abs(a - b) < 1e-4) }
            }
        }
    }

    /// The SIMD kernel's best lists equal the scalar reference's exactly, tie order included: small
    /// integer vectors make every score exact (so FMA and scalar products agree) and produce many equal
    /// scores, which must keep the smaller column first. Covers the branch-free top-8 lists (the
    /// coarse-to-fine default) and the general lists, with k below, at and above the list length, rows
    /// not a multiple of 16, and padding columns.
    @Test func topColumnsMatchTheScalarListsExactlyWithTies() {
        var g = SplitMix64(seed: 21)
        for (dim, k) in [(16, 77), (48, 128), (8, 8), (24, 9), (48, 300), (5, 40)] {
            // 517 rows: past two of the 256-row blocks in which lists shorter than 8 are cut from the best 8.
            let n = k == 300 ? 517 : 37
            let x = (0..<(n * dim)).map { _ in Float(Int.random(in: -2...2, using: &g)) }
            let c = (0..<(k * dim)).map { _ in Float(Int.random(in: -2...2, using: &g)) }
            let packed = c.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
            for top in [8, 1, 5, 16] {
                let width = min(top, k)
                var fast = [Int32](repeating: -1, count: n * width), slow = fast
                ck_assign_top(x, dim, n, packed.panels, packed.bias, k, top, &fast)
                ck_assign_top_scalar(x, dim, n, packed.panels, packed.bias, k, width, &slow)
                #expect(fast == slow, "dim \(dim) k \(k) top \(top)")
            }
        }
    }

    @Test(arguments: [1, 2, 4])
    func fusedResidualEncodingMatchesTheReference(nbits: Int) {
        let dim = 72, k = 9, n = 40
        let x = randomValues(n * dim, seed: 11), c = randomValues(k * dim, seed: 12)
        let cutoffs: [Float] = (1..<(1 << nbits)).map { -0.9 + 1.8 * Float($0) / Float(1 << nbits) }
        let codec = ResidualCodec(dim: dim, nbits: nbits, centroids: c, cutoffs: cutoffs,
                                  weights: [Float](repeating: 0, count: 1 << nbits))
        let codes: [UInt16] = (0..<n).map { UInt16(($0 * 7) % k) }
        let bytes = codec.bytesPerToken
        var fast = [UInt8](repeating: 0, count: n * bytes), slow = fast, reference = fast
        ck_residual_encode(x, dim, n, c, codes, cutoffs, nbits, &fast)
        ck_residual_encode_scalar(x, dim, n, c, codes, cutoffs, nbits, &slow)
        reference.withUnsafeMutableBufferPointer { out in
            for t in 0..<n {
                let residual = (0..<dim).map { x[t * dim + $0] - c[Int(codes[t]) * dim + $0] }
                codec.quantize(residual, into: out.baseAddress! + t * bytes)
            }
        }
        #expect(fast == reference)
        #expect(slow == reference)
    }

    @Test func allocationIsProportionalAndExact() {
        let shares = KMeans.allocate(100, over: [50, 0, 30, 20, 1])
        #expect(shares.reduce(0, +) == 100)
        #expect(shares[1] == 0 && shares[4] <= 1 && zip(shares, [50, 0, 30, 20, 1]).allSatisfy { $0 <= $1 })
        #expect(KMeans.allocate(5, over: [5]) == [5])
    }

    /// Two-level training (with its refinement over all centroids) and Lloyd with coarse-to-fine
    /// assignment quantise clustered data as well as flat Lloyd k-means on the same sample: the mean
    /// cosine between a point and its nearest centroid is no lower (beyond 0.001).
    @Test(arguments: [KMeans.Training.twoLevel, .coarseToFine(exhaustiveIterations: 1), .coarseToFine(exhaustiveIterations: 0)])
    func cheaperTrainingQuantisesAsWellAsFlatKMeans(training: KMeans.Training) {
        let dim = 32, k = 1024
        let corpus = SyntheticCorpus(documents: 400, dim: dim, centres: 512, medianLength: 40, queries: 0, seed: 3)
        let points = corpus.documents.flatMap(\.values)
        let count = points.count / dim
        let config = PlaidConfig(nbits: 4, maxPointsPerCentroid: 8, maxCentroids: k)
        let grouped = KMeans.trainGrouped(points: points, dim: dim, k: k, config: config, training: training)
        #expect(grouped.groups?.count ?? 0 > 1)
        let sample = KMeans.subsample(points, count: count, dim: dim, limit: k * 8, seed: config.seed ^ 0x5A5A)
        var flat = sample.withUnsafeBufferPointer {
            KMeans.lloyd(points: $0.baseAddress!, count: sample.count / dim, dim: dim, k: k, iterations: config.kmeansIterations,
                         seed: config.seed, parallel: true)
        }
        LinearAlgebra.normalizeRows(&flat, cols: dim)
        func meanCosine(_ centroids: [Float]) -> Double {
            let packed = centroids.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
            var labels = [Int32](repeating: 0, count: count)
            points.withUnsafeBufferPointer { p in labels.withUnsafeMutableBufferPointer { packed.nearest(p.baseAddress!, count: count, into: $0.baseAddress!) } }
            var total = 0.0
            for i in 0..<count {
                let x = points[(i * dim)..<((i + 1) * dim)], c = centroids[(Int(labels[i]) * dim)..<((Int(labels[i]) + 1) * dim)]
                let dot = zip(x, c).reduce(0.0) { $0 + Double($1.0 * $1.1) }
                total += dot / max(1e-12, x.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
            }
            return total / Double(count)
        }
        let cheaper = meanCosine(grouped.centroids), lloyd = meanCosine(flat)
        #expect(cheaper >= lloyd - 0.001, "\(training) \(cheaper), flat \(lloyd)")
    }

    /// K = 1,024 on clustered data: two-level training, groups stored with the codec, and the
    /// coarse-to-fine assignment of unseen vectors agrees with exhaustive search.
    @Test func coarseToFineAssignmentMatchesExhaustiveSearch() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 400, dim: 32, centres: 512, medianLength: 40, queries: 0, seed: 5)
        let config = PlaidConfig(nbits: 4, maxPointsPerCentroid: 8, trainingDocuments: 400, maxCentroids: 1024)
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: config, backend: nil)
        #expect(index.centroidCount == 1024)
        let unseen = SyntheticCorpus(documents: 60, dim: 32, centres: 512, medianLength: 40, queries: 0, seed: 5).documents
        let sample = HostMatrix(rows: unseen.reduce(0) { $0 + $1.rows }, cols: 32, values: unseen.flatMap(\.values))
        let quality = try index.assignmentQuality(sample)
        #expect(!quality.exhaustive)
        #expect(quality.agreement >= 0.95, "coarse-to-fine agreement \(quality.agreement)")
        #expect(quality.meanCosineExact - quality.meanCosineAssigned < 0.005)
        // The groups come back from disk: a reopened index assigns as the one that wrote it.
        let reopened = try PlaidIndex.open(at: directory, verification: .full)
        let again = try reopened.assignmentQuality(sample)
        #expect(!again.exhaustive && again.agreement == quality.agreement)
        #expect(reopened.codec.groups == index.codec.groups)
    }

    /// With a backend (here the CPU backend standing in for a GPU), k-means and encoding assign through
    /// `Backend.nearestCentroids`, exhaustively: every token gets its nearest centroid.
    @Test func backendAssignmentIsExhaustive() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 60, dim: 16, centres: 64, medianLength: 20, queries: 0, seed: 4)
        let backend = CPUBackend(threads: 1, precision: .fp32)
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: backend)
        let segment = try #require(index.segments.first)
        let exhaustive = CentroidAssigner(centroids: index.codec.centroids, dim: 16, groups: nil)
        let values = corpus.documents.flatMap(\.values)
        let expected = values.withUnsafeBufferPointer { exhaustive.assign($0.baseAddress!, count: values.count / 16, backend: nil) }
        let stored = Array(segment.codes).map(UInt32.init)
        #expect(stored.count == expected.count)
        let agreement = Double(zip(stored, expected).filter { $0 == $1 }.count) / Double(max(1, stored.count))
        #expect(agreement > 0.99, "backend codes agree with exhaustive CPU search on \(agreement)")
    }

    /// An index whose codec file has no group sections (written before them) opens and assigns exhaustively.
    @Test func codecWithoutGroupsAssignsExhaustively() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 200, dim: 16, centres: 256, medianLength: 30, queries: 0, seed: 9)
        let config = PlaidConfig(nbits: 2, maxPointsPerCentroid: 4, trainingDocuments: 200, maxCentroids: 1024)
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: config, backend: nil)
        #expect(index.codec.groups != nil)
        // Rewrite the codec as earlier builds wrote it (three sections) and record it in the manifest.
        let old = index.codec
        let plain = ResidualCodec(dim: old.dim, nbits: old.nbits, centroids: old.centroids, cutoffs: old.cutoffs, weights: old.weights)
        var manifest = try Manifest.load(from: directory)
        let record = try PlaidIndex.writeCodec(plain, number: manifest.nextFileNumber, to: directory)
        manifest.codec = record
        manifest.nextFileNumber += 1
        try manifest.commit(to: directory, written: [record.name])
        let reopened = try PlaidIndex.open(at: directory, verification: .full)
        #expect(reopened.codec.groups == nil)
        let sample = corpus.documents[0]
        #expect(try reopened.assignmentQuality(sample).exhaustive)
        try reopened.append([(id: 10_000, vectors: corpus.documents[1])], backend: nil)
        #expect(try PlaidIndex.open(at: directory, verification: .full).documentCount == 201)
    }

    /// Coarse-to-fine Lloyd (the default training) leaves not many more centroids without points than flat
    /// Lloyd on the same sample (empty centroids waste K: two-level training's ~11 % empties came with
    /// its recall loss), and every empty one keeps a finite unit row. Lloyd probes 4 groups a point (session 13):
    /// here ~5.6 % of K ends empty against flat's ~2.7 % (8 probes: within 1 %); on the 1.2M-vector build bench
    /// 364 of 8,192 against 287 with 8, with recall and the dev-split NDCG unchanged. 4 % of K above flat still
    /// catches the two-level failure.
    @Test func coarseToFineTrainingLeavesNoMoreEmptyCentroidsThanFlat() {
        let dim = 32, k = 1024
        let corpus = SyntheticCorpus(documents: 400, dim: dim, centres: 512, medianLength: 40, queries: 0, seed: 9)
        let points = corpus.documents.flatMap(\.values)
        let count = points.count / dim
        let config = PlaidConfig(nbits: 4, maxPointsPerCentroid: 8, maxCentroids: k)
        func empties(_ training: KMeans.Training) -> Int {
            let trained = KMeans.trainGrouped(points: points, dim: dim, k: k, config: config, training: training)
            #expect(trained.centroids.count == k * dim && trained.centroids.allSatisfy(\.isFinite))
            #expect(trained.groups?.isValid(centroidCount: k, dim: dim) == true)
            let packed = trained.centroids.withUnsafeBufferPointer { PackedCentroids($0.baseAddress!, dim: dim, count: k) }
            var labels = [Int32](repeating: 0, count: count)
            points.withUnsafeBufferPointer { p in labels.withUnsafeMutableBufferPointer { packed.nearest(p.baseAddress!, count: count, into: $0.baseAddress!) } }
            return k - Set(labels).count
        }
        let flat = empties(.flat), coarse = empties(.coarseToFine(exhaustiveIterations: 0))
        #expect(coarse <= flat + k / 25, "coarse-to-fine leaves \(coarse) centroids empty, flat \(flat)")
    }

    /// `centroidBalance` accounts for every stored vector once.
    @Test func centroidBalanceCountsEveryVector() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 50, dim: 16, centres: 32, medianLength: 20, queries: 0, seed: 4)
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: PlaidConfig(nbits: 4), backend: nil)
        let vectors = corpus.documents.reduce(0) { $0 + $1.rows }
        let balance = index.centroidBalance()
        #expect(balance.centroids == index.centroidCount)
        #expect(abs(balance.mean * Double(balance.centroids) - Double(vectors)) < 1e-6)
        #expect(balance.empty <= balance.tiny && balance.empty < balance.centroids)
        #expect(balance.largest >= balance.percentile99 && Double(balance.largest) >= balance.mean)
        #expect(balance.sizeSeenByVector >= balance.mean - 1e-9 && balance.sizeSeenByVector <= Double(balance.largest))
    }
}
