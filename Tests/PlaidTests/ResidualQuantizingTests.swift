import Foundation
@testable import Plaid
import Tensor
import Testing

/// A CPU stand-in for a GPU that searches centroids (exhaustively and coarse-to-fine, double precision, ties to the
/// smaller index) but cannot encode residuals: the codec assigns on it and packs on the host.
private class SearchingStandIn: ForwardingBackend, KMeansAccelerating, CoarseToFineAssigning {
    let forwardee: any Backend = CPUBackend(threads: 1, precision: .fp32)
    /// 0: the codec's assigner searches exhaustively on this backend.
    let probesAllowed: Int
    var searches = 0

    init(probesAllowed: Int) { self.probesAllowed = probesAllowed }

    func maximumProbes(dim: Int, lloyd: Bool) -> Int { lloyd ? 0 : probesAllowed }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int) throws -> [Float] { centroids }

    func lloydIterations(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], iterations: Int, exhaustiveIterations: Int,
                         probes: Int, grouping: ([Float], Int) -> CentroidGroupTable?) throws -> [Float] { centroids }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], into codes: UnsafeMutablePointer<Int32>) throws {
        searches += 1
        codes.update(from: Self.nearest(points, count, dim, centroids, nil, 0), count: count)
    }

    func assignNearest(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable, probes: Int,
                       into codes: UnsafeMutablePointer<Int32>) throws {
        searches += 1
        codes.update(from: Self.nearest(points, count, dim, centroids, groups, probes), count: count)
    }

    /// The nearest centroid (x·c − ½‖c‖²) among the members of the `probes` best groups, or among all.
    static func nearest(_ points: UnsafePointer<Float>, _ count: Int, _ dim: Int, _ centroids: [Float], _ groups: CentroidGroupTable?,
                        _ probes: Int) -> [Int32] {
        func score(_ x: UnsafePointer<Float>, _ table: [Float], _ row: Int) -> Double {
            var dot = 0.0, norm = 0.0
            for j in 0..<dim { let w = Double(table[row * dim + j]); dot += Double(x[j]) * w; norm += w * w }
            return dot - 0.5 * norm
        }
        return (0..<count).map { i in
            let x = points + i * dim
            var candidates = Array(0..<(centroids.count / dim))
            if let groups {
                let ranked = (0..<groups.count).filter { groups.offsets[$0 + 1] > groups.offsets[$0] }
                    .sorted { (score(x, groups.centers, $0), -$0) > (score(x, groups.centers, $1), -$1) }
                candidates = ranked.prefix(probes).flatMap { g in (Int(groups.offsets[g])..<Int(groups.offsets[g + 1])).map { Int(groups.members[$0]) } }
            }
            let best = candidates.max { (score(x, centroids, $0), -$0) < (score(x, centroids, $1), -$1) }!
            return Int32(best)
        }
    }
}

/// The stand-in that also encodes the residuals "on its device", with the CPU's packing of the codes it found.
private final class QuantizingStandIn: SearchingStandIn, ResidualQuantizing {
    var fails = false
    var passes = 0
    var groupsGiven: [Bool] = []

    struct Failure: Error {}

    func assignAndQuantize(points: UnsafePointer<Float>, count: Int, dim: Int, centroids: [Float], groups: CentroidGroupTable?,
                           probes: Int, cutoffs: [Float], nbits: Int, codes: UnsafeMutablePointer<Int32>,
                           packed: UnsafeMutablePointer<UInt8>) throws {
        passes += 1
        groupsGiven.append(groups != nil)
        if fails { throw Failure() }
        let found = Self.nearest(points, count, dim, centroids, groups, probes)
        codes.update(from: found, count: count)
        ResidualPacking.encode(points: points, count: count, dim: dim, centroids: centroids, codes: found, cutoffs: cutoffs, nbits: nbits,
                               into: packed)
    }
}

/// The codec's encoding through a device that assigns and packs in one pass (`ResidualQuantizing`, a GPU's
/// `km_residual_pack`): the same codes, bytes and norms as assigning there and packing on the host; the search it is
/// asked for is the one `assign` would run; a failing device leaves the host to do it all.
struct ResidualQuantizingTests {
    static let dim = 16, n = 3_000
    static let points = KMeansAcceleratedTests.clusteredPoints(dim: dim, n: n, centres: 80)

    static func codec(nbits: Int) -> ResidualCodec {
        var config = PlaidConfig()
        config.nbits = nbits
        var stages = StageClock()
        return ResidualCodec.train(sample: points, k: 1_024, dim: dim, config: config, backend: nil, stages: &stages)
    }

    static func encode(_ codec: ResidualCodec, backend: any Backend) -> (codes: [UInt16], packed: [UInt8], norms: [Float]) {
        var times = CodecEncodeTimes()
        return encode(codec, backend: backend, times: &times)
    }

    static func encode(_ codec: ResidualCodec, backend: any Backend, times: inout CodecEncodeTimes)
        -> (codes: [UInt16], packed: [UInt8], norms: [Float]) {
        var codes = [UInt16](repeating: 0, count: n), packed = [UInt8](repeating: 0, count: n * codec.bytesPerToken)
        var norms = [Float](repeating: 0, count: n)
        points.withUnsafeBufferPointer { x in
            codes.withUnsafeMutableBufferPointer { c in
                packed.withUnsafeMutableBufferPointer { p in
                    norms.withUnsafeMutableBufferPointer { r in
                        codec.encode(x.baseAddress!, count: n, assigner: codec.makeAssigner(), backend: backend, codes: c.baseAddress!,
                                     residuals: p.baseAddress!, inverseNorms: r.baseAddress!, times: &times)
                    }
                }
            }
        }
        return (codes, packed, norms)
    }

    /// Positions where two equally long arrays differ (a count, so a failure prints one number, not both arrays).
    static func differing<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        a.count == b.count ? zip(a, b).filter { $0 != $1 }.count : max(a.count, b.count)
    }

    @Test(arguments: [(1, 8), (2, 8), (4, 8), (8, 8), (4, 0)])
    func deviceEncodingEqualsTheHostEncodingOfTheSameCodes(nbits: Int, probesAllowed: Int) throws {
        let codec = Self.codec(nbits: nbits)
        try #require(codec.groups != nil)
        let device = QuantizingStandIn(probesAllowed: probesAllowed), host = SearchingStandIn(probesAllowed: probesAllowed)
        var deviceTimes = CodecEncodeTimes(), hostTimes = CodecEncodeTimes()
        let a = Self.encode(codec, backend: device, times: &deviceTimes), b = Self.encode(codec, backend: host, times: &hostTimes)
        #expect(device.passes == 1 && device.searches == 0 && host.searches == 1)
        // The profile says where the packing ran.
        #expect(deviceTimes.laps.map(\.0) == ["encode: gather rows", "encode: assign + pack (device)", "encode: norms"])
        #expect(hostTimes.laps.map(\.0) == ["encode: gather rows", "encode: assign", "encode: quantize"])
        // Coarse-to-fine where the backend takes the grouped search (as `assign` picks), exhaustive where it does not.
        #expect(device.groupsGiven == [probesAllowed > 0])
        #expect(Self.differing(a.codes, b.codes) == 0)
        #expect(Self.differing(a.packed, b.packed) == 0)
        #expect(Self.differing(a.norms, b.norms) == 0)
        #expect(Set(a.codes).count > 100)
    }

    @Test func aFailingDeviceLeavesTheEncodingToTheHost() {
        let codec = Self.codec(nbits: 4)
        let device = QuantizingStandIn(probesAllowed: 8), host = SearchingStandIn(probesAllowed: 8)
        device.fails = true
        let a = Self.encode(codec, backend: device), b = Self.encode(codec, backend: host)
        #expect(device.passes == 1 && device.searches == 1)
        #expect(Self.differing(a.codes, b.codes) == 0 && Self.differing(a.packed, b.packed) == 0 && Self.differing(a.norms, b.norms) == 0)
    }

    /// Several devices (`SplitKMeansBackend`, issue #9): each packs its own slice (exhaustive search, as the split
    /// backend assigns); a failing one's slice is redone by a healthy one; the result is one device's.
    @Test func splitDevicesEachPackTheirSliceAndAFailedSliceIsRedone() {
        let codec = Self.codec(nbits: 2)
        let host = SearchingStandIn(probesAllowed: 0)
        let expected = Self.encode(codec, backend: host)
        for failing in [nil, 1] as [Int?] {
            let members = (0..<3).map { _ in QuantizingStandIn(probesAllowed: 0) }
            if let failing { members[failing].fails = true }
            let split = SplitKMeansBackend(members: members, minimumRowsPerMember: 500)
            let got = Self.encode(codec, backend: split)
            #expect(Self.differing(got.codes, expected.codes) == 0 && Self.differing(got.packed, expected.packed) == 0
                    && Self.differing(got.norms, expected.norms) == 0)
            #expect(members.map(\.passes) == (failing == nil ? [1, 1, 1] : [2, 1, 1]))
            #expect(members.allSatisfy { $0.groupsGiven.allSatisfy { !$0 } && $0.searches == 0 })
        }
    }

    /// Devices that cannot all pack: the split backend says so, and the codec assigns on them and packs on the host
    /// without trying (no fallback notice for what was never possible).
    @Test func aGroupWithADeviceThatCannotPackPacksOnTheHost() {
        let codec = Self.codec(nbits: 4)
        let packing = QuantizingStandIn(probesAllowed: 0), plain = SearchingStandIn(probesAllowed: 0)
        let split = SplitKMeansBackend(members: [packing, plain], minimumRowsPerMember: 500)
        #expect(!split.packsResiduals && SplitKMeansBackend(members: [packing, QuantizingStandIn(probesAllowed: 0)]).packsResiduals)
        let got = Self.encode(codec, backend: split), expected = Self.encode(codec, backend: SearchingStandIn(probesAllowed: 0))
        #expect(packing.passes == 0 && packing.searches == 1 && plain.searches == 1)
        #expect(Self.differing(got.codes, expected.codes) == 0 && Self.differing(got.packed, expected.packed) == 0)
    }

    /// `ResidualPacking.encode` (the CPU kernels a device must match) against the codec's scalar quantizer.
    @Test(arguments: [1, 2, 4, 8])
    func packingMatchesTheScalarQuantizer(nbits: Int) {
        let codec = Self.codec(nbits: nbits)
        let rows = 200, dim = Self.dim, bytes = codec.bytesPerToken
        let codes = (0..<rows).map { Int32(($0 * 37) % codec.centroidCount) }
        var packed = [UInt8](repeating: 0, count: rows * bytes), reference = packed
        Self.points.withUnsafeBufferPointer { x in
            ResidualPacking.encode(points: x.baseAddress!, count: rows, dim: dim, centroids: codec.centroids.array, codes: codes,
                                   cutoffs: codec.cutoffs, nbits: nbits, into: &packed)
        }
        reference.withUnsafeMutableBufferPointer { out in
            for t in 0..<rows {
                let residual = (0..<dim).map { Self.points[t * dim + $0] - codec.centroids.array[Int(codes[t]) * dim + $0] }
                codec.quantize(residual, into: out.baseAddress! + t * bytes)
            }
        }
        #expect(Self.differing(packed, reference) == 0)
        #expect(Set(packed).count > 4)
    }
}

/// `colgrep bench gpu-codec`'s measurement on the stand-in: three ways timed, the two device runs' outputs equal.
struct CodecEncodeBenchmarkTests {
    @Test func theThreeWaysRunAndTheDeviceRunsAgree() throws {
        let result = try CodecEncodeBenchmark.measure(points: ResidualQuantizingTests.points, dim: ResidualQuantizingTests.dim, k: 1_024,
                                                      nbits: 4, device: QuantizingStandIn(probesAllowed: 8), rounds: 1)
        #expect(result.runs.map(\.label) == ["host", "device assign, host pack", "device assign and pack"])
        #expect(result.codesDiffering == 0 && result.bytesDiffering == 0 && result.normsDiffering == 0)
        #expect(result.codesEqualToHost > 0.9)
        #expect(throws: PlaidError.self) {
            try CodecEncodeBenchmark.measure(points: ResidualQuantizingTests.points, dim: ResidualQuantizingTests.dim, k: 1_024, nbits: 4,
                                             device: SearchingStandIn(probesAllowed: 8), rounds: 1)
        }
    }
}
