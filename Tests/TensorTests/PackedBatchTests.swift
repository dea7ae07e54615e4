import Testing
@testable import Tensor

@Suite struct PackedBatchTests {
    @Test func offsetsAndPositions() {
        let batch = PackedBatch(sequences: [[1, 2, 3], [], [4, 5]])
        #expect(batch.cuSeqlens == [0, 3, 3, 5])
        #expect(batch.tokenCount == 5)
        #expect(batch.sequenceCount == 3)
        #expect(batch.maxSequenceLength == 3)
        #expect(batch.positions == [0, 1, 2, 0, 1])
        #expect(batch.range(of: 2) == 3..<5)
    }
}
