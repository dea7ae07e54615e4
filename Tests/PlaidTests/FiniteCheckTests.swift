import Testing
import Tensor
@testable import Plaid

/// The append path's input check: a NaN or an infinity anywhere is found (the branch-free exponent test
/// against `isFinite`), and the document named is the first bad one whatever worker finds it.
@Suite struct FiniteCheckTests {
    @Test func exponentTestAgreesWithIsFinite() {
        let edge: [Float] = [0, -0, 1, -1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                             .leastNormalMagnitude, .nan, -.nan, .signalingNaN, .infinity, -.infinity, Float(bitPattern: 0x7F80_0001)]
        for value in edge {
            for position in [0, 5, 31] {
                var values = [Float](repeating: 0.5, count: 32)
                values[position] = value
                #expect(PlaidIndex.allFinite(values) == value.isFinite, "\(value.bitPattern) at \(position)")
            }
        }
        #expect(PlaidIndex.allFinite([]))
    }

    @Test func firstNonFiniteNamesTheFirstBadDocument() {
        var documents = (0..<200).map { (id: Int64($0), vectors: HostMatrix(rows: 2, cols: 8, values: [Float](repeating: 0.25, count: 16))) }
        #expect(PlaidIndex.firstNonFinite(documents) == nil)
        for bad in [150, 77, 78] { documents[bad].vectors.values[bad % 16] = bad == 77 ? .infinity : .nan }
        #expect(PlaidIndex.firstNonFinite(documents) == 77)
    }

    /// The encode's gather: documents end to end, in order, whether copied on one thread (small batches) or
    /// on every core (large ones), from a slice that does not start at 0.
    @Test func gatherCopiesDocumentsEndToEndInOrder() {
        for (count, rows) in [(5, 3), (700, 50)] {
            let cols = 128
            let documents = (0..<count).map { d in
                (id: Int64(d), vectors: HostMatrix(rows: rows + d % 7, cols: cols, values: (0..<((rows + d % 7) * cols)).map { Float(d * 1000 + $0 % 997) }))
            }
            let slice = documents[1...]
            let expected = slice.flatMap(\.vectors.values)
            var out = [Float](repeating: -1, count: expected.count)
            out.withUnsafeMutableBufferPointer { PlaidIndex.gather(slice, into: $0.baseAddress!, floats: expected.count) }
            #expect(out == expected)
            if count == 700 { #expect(expected.count >= 1 << 22) }
        }
    }
}
