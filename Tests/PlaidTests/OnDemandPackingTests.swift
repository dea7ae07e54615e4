import Foundation
import Tensor
import Testing

@testable import Plaid

/// An assigner that packs only the groups its rows probe (`packsGroupsOnDemand`, used for an update's small
/// appends) gives exactly the codes of the eager one that packs every group up front (both with the float fine
/// step, which small writes keep).
@Suite struct OnDemandPackingTests {
    /// `k` centroids in `g` groups of uneven sizes (one group empty), centres the means of their members.
    private func groups(centroids: [Float], k: Int, dim: Int, g: Int, using generator: inout SplitMix64) -> CentroidGroups {
        let members = (0..<Int32(k)).shuffled(using: &generator)
        // Cut points: sorted random offsets, with group 1 left empty.
        var cuts = (0..<(g - 2)).map { _ in Int.random(in: 0...k, using: &generator) }.sorted()
        cuts.insert(cuts.first ?? 0, at: 0)
        let offsets = [Int32(0)] + cuts.map(Int32.init) + [Int32(k)]
        var centers = [Float](repeating: 0, count: g * dim)
        for group in 0..<g {
            let start = Int(offsets[group]), end = Int(offsets[group + 1])
            for at in start..<end {
                for d in 0..<dim { centers[group * dim + d] += centroids[Int(members[at]) * dim + d] / Float(end - start) }
            }
        }
        return CentroidGroups(centers: centers, offsets: offsets, members: members)
    }

    private func codes(_ assigner: CentroidAssigner, _ points: [Float], dim: Int) -> [UInt32] {
        points.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: points.count / dim, backend: nil) }
    }

    /// Random inputs, and small-integer inputs with duplicated centroids (many exactly tied scores, which must
    /// go to the same smaller index), for batches of 1 row up to more than one 4,096-row chunk.
    @Test(arguments: [false, true])
    func onDemandPackingGivesTheEagerCodes(tied: Bool) {
        var generator = SplitMix64(seed: tied ? 77 : 78)
        let dim = 24, k = 300, g = 12
        func value() -> Float {
            tied ? Float(Int.random(in: -1...1, using: &generator)) : Float.random(in: -1...1, using: &generator)
        }
        var centroids = (0..<(k * dim)).map { _ in value() }
        if tied {
            // Every tenth centroid a copy of another one (in another group, as the shuffle places them).
            for j in stride(from: 0, to: k, by: 10) {
                let source = (j * 7 + 3) % k
                for d in 0..<dim { centroids[j * dim + d] = centroids[source * dim + d] }
            }
        }
        let partition = groups(centroids: centroids, k: k, dim: dim, g: g, using: &generator)
        #expect(partition.isValid(centroidCount: k, dim: dim))
        for probes in [1, 3, 8] {
            // On-demand packing keeps the float fine step, so the eager reference is the float one.
            let eager = CentroidAssigner(centroids: centroids, dim: dim, groups: partition, probes: probes, int16: false)
            let lazy = CentroidAssigner(centroids: centroids, dim: dim, groups: partition, probes: probes, packsGroupsOnDemand: true)
            #expect(!eager.isExhaustive && !eager.packsGroupsOnDemand && lazy.packsGroupsOnDemand)
            for n in [1, 7, 333, 4_100] {
                let points = (0..<(n * dim)).map { _ in value() }
                let expected = codes(eager, points, dim: dim)
                #expect(codes(lazy, points, dim: dim) == expected, "probes \(probes), \(n) rows")
                #expect(expected.allSatisfy { $0 < UInt32(k) })
            }
        }
    }

    /// The codec's write path: a small write gets an on-demand assigner, a large one an eager one, and a small
    /// write's codes and residual bytes equal those of the eager assigner.
    @Test func smallWritesEncodeAsTheEagerAssigner() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 300, dim: 32, centres: 512, medianLength: 40, queries: 0, seed: 12)
        let config = PlaidConfig(nbits: 4, maxPointsPerCentroid: 8, trainingDocuments: 300, maxCentroids: 1024)
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: config, backend: nil)
        let codec = index.codec
        #expect(codec.groups != nil)
        #expect(codec.makeAssigner(forRows: 400).packsGroupsOnDemand)
        #expect(!codec.makeAssigner(forRows: CentroidAssigner.onDemandPackingRows + 1).packsGroupsOnDemand)
        let update = documents(SyntheticCorpus(documents: 8, dim: 32, centres: 512, medianLength: 40, queries: 0, seed: 13),
                               idOffset: 10_000)
        let small = PlaidIndex.encode(update, codec: codec, backend: nil)
        let eager = PlaidIndex.encode(update, codec: codec, backend: nil,
                                      assigner: CentroidAssigner(centroids: codec.centroids, dim: codec.dim, groups: codec.groups, int16: false))
        #expect(small.tokens > 0 && small.tokens <= CentroidAssigner.onDemandPackingRows)
        #expect(small.codes == eager.codes)
        #expect(small.residuals == eager.residuals)
        #expect(small.offsets == eager.offsets && small.ids == eager.ids)
    }
}
