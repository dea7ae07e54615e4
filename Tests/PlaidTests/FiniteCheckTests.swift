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
}
