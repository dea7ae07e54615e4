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
