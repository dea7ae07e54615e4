import Foundation
import Testing
@testable import Plaid

/// The codec's centroids are read in place from the mapped codec file (no copy at index open) and
/// behave as the array they were written from; an in-memory `FloatRows` owns a copy of its values.
@Suite struct FloatRowsTests {
    @Test func anOpenedIndexViewsItsCentroidsInTheCodecMapping() throws {
        let directory = temporaryDirectory()
        defer { cleanUp(directory) }
        let corpus = SyntheticCorpus(documents: 40, dim: 16, centres: 32, medianLength: 12, queries: 0, seed: 7)
        let created = try PlaidIndex.create(at: directory, documents: documents(corpus), config: testConfig(), backend: nil)
        let written = created.codec.centroids.array
        var codec: ResidualCodec? = try PlaidIndex.open(at: directory, verification: .full).codec
        // The index that opened it is gone: the codec alone keeps the mapping alive.
        #expect(codec!.centroids.isMapped)
        #expect(codec!.centroids.array.map(\.bitPattern) == written.map(\.bitPattern))
        #expect(codec!.centroids == created.codec.centroids)
        let trusted = try PlaidIndex.open(at: directory, verification: .changedFiles)
        #expect(trusted.codec.centroids.isMapped && trusted.codec.centroids == created.codec.centroids)
        // Decoding and assignment read the mapped values as they read the written ones.
        let assigner = codec!.makeAssigner()
        try #require(written.count >= 32)
        let probe = Array(written[16..<32])
        #expect(probe.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: 1, backend: nil) } == [1])
        codec = nil
    }

    @Test func inMemoryRowsOwnACopy() {
        var values: [Float] = [1, 2, 3, -0.5]
        let rows = FloatRows(values)
        values[0] = 99
        #expect(Array(rows) == [1, 2, 3, -0.5] && rows.count == 4 && !rows.isMapped)
        #expect(rows.withUnsafeBufferPointer { $0.reduce(0, +) } == 5.5)
        #expect(rows == FloatRows([1, 2, 3, -0.5]) && rows != FloatRows([1, 2, 3]))
        #expect(FloatRows([]).isEmpty && FloatRows([]).array == [])
        #expect(FloatRows([.nan]) != FloatRows([.nan]))
    }
}
