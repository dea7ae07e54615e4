import Tensor
import Testing

/// `download(_:rowGroups:)`: each group's rows, in the group's order, and nothing else.
struct GroupedDownloadTests {
    @Test func groupsGatherTheirRowsInOrder() throws {
        let backend = CPUBackend(threads: 1, precision: .fp32)
        let source = HostMatrix(rows: 4, cols: 3, values: (0..<12).map(Float.init))
        let groups = try backend.download(backend.upload(source), rowGroups: [[2, 0], [], [3]])
        #expect(groups.map(\.rows) == [2, 0, 1])
        #expect(groups[0].values == [6, 7, 8, 0, 1, 2])
        #expect(groups[1].values.isEmpty && groups[1].cols == 3)
        #expect(groups[2].values == [9, 10, 11])
    }
}

/// `downloadBlock(_:rowGroups:)`: the same rows as `download(_:rowGroups:)`, one group after another
/// in one block, with offsets that delimit the groups.
struct BlockDownloadTests {
    @Test func blockHoldsTheGroupedRowsInOrder() throws {
        let backend = CPUBackend(threads: 1, precision: .fp32)
        let source = HostMatrix(rows: 5, cols: 3, values: (0..<15).map(Float.init))
        let device = try backend.upload(source)
        let groups: [[Int]] = [[2, 0], [], [4], [1, 3]]
        let block = try backend.downloadBlock(device, rowGroups: groups)
        #expect(block.offsets == [0, 2, 2, 3, 5])
        #expect(block.rows == 5 && block.cols == 3 && block.groupCount == 4)
        #expect(block.matrices() == (try backend.download(device, rowGroups: groups)))
        #expect(block.withGroup(3) { Array($0) } == [3, 4, 5, 9, 10, 11])
    }

    @Test func rowOutsideTheMatrixIsAnError() throws {
        let backend = CPUBackend(threads: 1, precision: .fp32)
        let device = try backend.upload(HostMatrix(rows: 2, cols: 2, values: [1, 2, 3, 4]))
        #expect(throws: TensorError.self) { try backend.downloadBlock(device, rowGroups: [[0], [2]]) }
    }

    @Test func borrowedMemoryIsReleasedOnceWhenTheBlockGoes() {
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        storage.initialize(from: [1, 2, 3, 4], count: 4)
        let released = ReleaseCounter()
        do {
            let block = HostRowBlock(borrowing: storage, cols: 2, offsets: [0, 1, 2]) { released.count += 1 }
            #expect(block.matrix(1).values == [3, 4])
            #expect(released.count == 0)
        }
        #expect(released.count == 1)
        storage.deallocate()
    }
}

private final class ReleaseCounter: @unchecked Sendable { var count = 0 }
