import CKernels
import Foundation
@testable import Plaid
import Tensor
import Testing

/// Format version 2: every segment of a 1/2/4-bit index holds each token's 1/‖c + r‖; version 3: of an
/// 8-bit index too. Written by every writer (create, append, merge, compaction, retrain) with the bits the
/// exact kernel would compute, so search scores equal those of norms computed in the kernel (format 1,
/// and 8 bits before format 3); indexes of formats 1 and 2 and segments with missing or damaged norms are
/// refused with a rebuild error.
@Suite struct TokenNormsTests {
    /// The norms recomputed from a segment's codes and residuals (scalar body, tables built in memory).
    func recomputed(_ segment: Segment, codec: ResidualCodec) throws -> [Float] {
        var plain = codec
        plain.exactCentroids = nil
        let norms = TokenInverseNorms(codec: plain)
        var out = [Float](repeating: .nan, count: segment.codes.count)
        norms.compute(codes: segment.codes.baseAddress!, packed: segment.residuals.baseAddress!, count: segment.codes.count, into: &out,
                      scalar: true)
        return out
    }

    func expectStoredNorms(_ index: PlaidIndex, _ step: String) throws {
        for segment in index.segments {
            #expect(segment.inverseNorms.count == segment.codes.count, "\(step)")
            let expected = try recomputed(segment, codec: index.codec)
            #expect(Array(segment.inverseNorms).map(\.bitPattern) == expected.map(\.bitPattern), "\(step): segment \(segment.record.number)")
        }
    }

    /// Exact scores of global `rows` with the norms computed in the kernel from the int16 centroid rows
    /// (what format 1 did; 8 bits: from the float centroids, as before format 3), each document alone, its
    /// tokens in stored order.
    func scoresComputingNorms(_ index: PlaidIndex, query: HostMatrix, rows: [Int32]) -> [Float] {
        var context = SearchContext(index: index, query: query, subset: nil)
        defer { context.recycle() }
        let scorer = query.values.withUnsafeBufferPointer {
            ResidualScorer(codec: index.codec, query: $0.baseAddress!, nq: query.rows, nqPadded: context.tableStride)
        }
        let tables = ExactCentroids(codec: index.codec)
        let bytes = index.codec.bytesPerToken
        return rows.map { row in
            let (s, r) = context.place(row)
            let view = context.views[s], range = view.tokenRange(r)
            var best = [Float](repeating: 0, count: scorer.nqPadded)
            var out: Float = .nan
            let owners = [UInt32](repeating: 0, count: range.count)
            index.codec.centroids.withUnsafeBufferPointer { c in
                context.centroidScores.withUnsafeBufferPointer { table in
                    scorer.withKernelQuery(centroids: c.baseAddress!, table: table.baseAddress!) { kernel in
                        tables.withKernelCentroids { centroids in
                            ck_residual_maxsim_sorted_scalar(kernel, centroids, 1, range.count, view.codes.baseAddress! + range.lowerBound, owners,
                                                             view.residuals.baseAddress! + range.lowerBound * bytes, nil, &best, &out)
                        }
                    }
                }
            }
            return out
        }
    }

    @Test(arguments: [1, 2, 4, 8])
    func everyWriterStoresTheKernelsNorms(nbits: Int) throws {
        let directory = temporaryDirectory("norms\(nbits)")
        defer { cleanUp(directory) }
        let corpus = smallCorpus(documents: 240, queries: 1, seed: UInt64(nbits))
        var config = testConfig(nbits: nbits)
        config.retrainGrowthFactor = 2.5
        let all = documents(corpus)
        let index = try PlaidIndex.create(at: directory, documents: Array(all[0..<100]), config: config, backend: nil)
        try expectStoredNorms(index, "create")
        try index.append(Array(all[100..<140]), backend: nil)
        #expect(index.segmentCount == 2)
        try expectStoredNorms(index, "append")
        try index.append(Array(all[140..<180]), backend: nil)  // the newest two are merged
        try expectStoredNorms(index, "merge")
        try index.delete(ids: Set((100..<130).map(Int64.init)))  // past the dead share: compacted
        try expectStoredNorms(index, "compaction")
        try expectStoredNorms(try PlaidIndex.open(at: directory, verifyChecksums: true), "reopened")
        let before = index.manifest.codec.name
        try index.append(Array(all[180..<240]), backend: nil)
        try index.append(documents(smallCorpus(documents: 120, queries: 1, seed: 99), idOffset: 1000), backend: nil)
        #expect(index.manifest.codec.name != before, "the codec was retrained")
        try expectStoredNorms(index, "retrain")
    }

    @Test(arguments: [1, 2, 4, 8])
    func searchScoresEqualNormsComputedInTheKernel(nbits: Int) throws {
        let directory = temporaryDirectory("scores\(nbits)")
        defer { cleanUp(directory) }
        let corpus = smallCorpus(documents: 300, queries: 4, seed: 40 + UInt64(nbits))
        let index = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(nbits: nbits), backend: nil)
        let rows = (0..<Int32(index.documentCount)).map { $0 }
        for query in corpus.queries {
            var context = SearchContext(index: index, query: query, subset: nil)
            let stored = context.residualScores(rows)  // both threads, gathered in centroid order
            context.recycle()
            let computed = scoresComputingNorms(index, query: query, rows: rows)
            #expect(stored.map(\.bitPattern) == computed.map(\.bitPattern))
        }
    }

    /// An index of format 1 or 2 (whose manifest says so; an 8-bit index of format 2 has no norms) is refused
    /// with a rebuild error naming the file.
    @Test(arguments: [1, 2])
    func olderFormatIndexIsRefusedWithRebuild(version: Int) throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        _ = try PlaidIndex.create(at: directory, documents: documents(smallCorpus(documents: 100, queries: 1)), config: testConfig(nbits: 8),
                                  backend: nil)
        var manifest = try Manifest.load(from: directory)
        manifest.formatVersion = version
        try manifest.commit(to: directory, written: [])
        let url = directory.appendingPathComponent(Manifest.fileName)
        do {
            _ = try PlaidIndex.open(at: directory)
            Issue.record("a format-\(version) index opened")
        } catch let error as PlaidError {
            #expect(error == .unsupportedFormat(file: url.path, found: version, expected: IndexFiles.formatVersion))
            #expect(error.needsRebuild)
            #expect(error.description.contains("rebuild the index"))
        }
        // Creating over it replaces it.
        let rebuilt = try PlaidIndex.create(at: directory, documents: documents(smallCorpus(documents: 100, queries: 1)), config: testConfig(),
                                            backend: nil)
        #expect(try PlaidIndex.open(at: directory).documentCount == rebuilt.documentCount)
    }

    /// Byte offset and length of section `index` of a sectioned file.
    func section(_ bytes: Data, _ index: Int) -> (offset: Int, length: Int) {
        func u64(_ at: Int) -> Int { Int(bytes.subdata(in: at..<(at + 8)).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian) }
        return (u64(24 + 16 * index), u64(32 + 16 * index))
    }

    func segmentFile(_ directory: URL) throws -> URL {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("segment-") }
        return directory.appendingPathComponent(try #require(names.first))
    }

    /// A norm that is not a finite non-negative number (a tampered file) is found by the structure check
    /// even without checksums, and by the checksum otherwise; a segment without its norms section too.
    @Test func damagedOrMissingNormsAreRefused() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        _ = try PlaidIndex.create(at: directory, documents: documents(smallCorpus(documents: 100, queries: 1)), config: testConfig(), backend: nil)
        let url = try segmentFile(directory)
        let original = try Data(contentsOf: url)
        let norms = section(original, 6)
        #expect(norms.length > 0)
        for bad: Float in [.nan, -1, .infinity] {
            var bytes = original
            withUnsafeBytes(of: bad.bitPattern.littleEndian) { bytes.replaceSubrange((norms.offset + 40)..<(norms.offset + 44), with: $0) }
            try bytes.write(to: url)
            for verify in [false, true] {
                #expect {
                    try PlaidIndex.open(at: directory, verifyChecksums: verify)
                } throws: { error in
                    guard let error = error as? PlaidError, case .corrupt(let file, let reason) = error else { return false }
                    return file == url.path && error.needsRebuild && (verify ? reason.contains("checksum") : reason.contains("token norm"))
                }
            }
        }
        var truncated = original
        truncated[16] = 6  // section count: the norms section is gone
        try truncated.write(to: url)
        #expect {
            try PlaidIndex.open(at: directory, verifyChecksums: false)
        } throws: { error in
            guard let error = error as? PlaidError, case .corrupt(_, let reason) = error else { return false }
            return reason.contains("section 6 missing")
        }
    }
}
