/// A row-major `Float` matrix in host memory: weights on their way to a device, results on their way back.
public struct HostMatrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var values: [Float]

    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "HostMatrix: \(values.count) values for \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.values = values
    }

    /// A `1 × n` matrix (biases, norm weights).
    public init(vector: [Float]) {
        self.init(rows: 1, cols: vector.count, values: vector)
    }

    /// Row `i` as a slice of `values`.
    public func row(_ i: Int) -> ArraySlice<Float> {
        values[(i * cols)..<((i + 1) * cols)]
    }
}

extension HostMatrix {
    /// One matrix per group of row indices, each row written by `copyRow(row, destination)` into
    /// `cols` floats: the single copy a grouped download makes out of its source.
    public static func gatheringRows(_ groups: [[Int]], cols: Int,
                                     copyRow: (Int, UnsafeMutablePointer<Float>) -> Void) -> [HostMatrix] {
        groups.map { rows in
            let values = [Float](unsafeUninitializedCapacity: rows.count * cols) { buffer, initialized in
                for (index, row) in rows.enumerated() { copyRow(row, buffer.baseAddress! + index * cols) }
                initialized = rows.count * cols
            }
            return HostMatrix(rows: rows.count, cols: cols, values: values)
        }
    }
}

/// A packed batch's results in one piece: rows of `cols` floats in one contiguous host buffer, split
/// into consecutive groups (one per sequence), so a download makes no allocation per sequence.
///
/// The buffer may be on loan from a backend's reusable (pinned) arena; it goes back when the block is
/// freed, so a consumer that drops each block once it has read it (pooling, a benchmark) keeps the
/// device-to-host copy landing in the same pre-faulted memory. Immutable; safe to read from any thread.
public final class HostRowBlock: @unchecked Sendable {
    /// Floats per row.
    public let cols: Int
    /// Group `g` is rows `offsets[g]..<offsets[g + 1]`; `offsets[0] == 0`.
    public let offsets: [Int]
    /// `rows × cols` floats, row-major.
    public let pointer: UnsafePointer<Float>
    private let release: () -> Void

    /// A block that owns its memory (freed with the block).
    public init(cols: Int, offsets: [Int], fill: (UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        precondition(offsets.first == 0 && zip(offsets, offsets.dropFirst()).allSatisfy { $0 <= $1 }, "HostRowBlock: bad offsets \(offsets.prefix(4))")
        let count = max(1, (offsets.last ?? 0) * cols)
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: count)
        do { try fill(storage) } catch { storage.deallocate(); throw error }
        self.cols = cols
        self.offsets = offsets
        self.pointer = UnsafePointer(storage)
        self.release = { storage.deallocate() }
    }

    /// A block over memory someone else owns; `release` runs once, when the block is freed.
    public init(borrowing pointer: UnsafePointer<Float>, cols: Int, offsets: [Int], release: @escaping () -> Void) {
        precondition(offsets.first == 0 && zip(offsets, offsets.dropFirst()).allSatisfy { $0 <= $1 }, "HostRowBlock: bad offsets \(offsets.prefix(4))")
        self.cols = cols
        self.offsets = offsets
        self.pointer = pointer
        self.release = release
    }

    deinit { release() }

    /// Rows in all groups.
    public var rows: Int { offsets.last ?? 0 }
    /// Number of groups (sequences).
    public var groupCount: Int { offsets.count - 1 }

    /// The rows of group `group`, valid while the block lives.
    public func withGroup<R>(_ group: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let start = offsets[group], end = offsets[group + 1]
        return try withExtendedLifetime(self) { try body(UnsafeBufferPointer(start: pointer + start * cols, count: (end - start) * cols)) }
    }

    /// Group `group` copied into its own matrix.
    public func matrix(_ group: Int) -> HostMatrix {
        withGroup(group) { HostMatrix(rows: offsets[group + 1] - offsets[group], cols: cols, values: Array($0)) }
    }

    /// Every group copied into its own matrix (the shape `download(_:rowGroups:)` returns).
    public func matrices() -> [HostMatrix] { (0..<groupCount).map(matrix) }

    /// Row offsets for groups of these sizes.
    public static func offsets(sizes: some Sequence<Int>) -> [Int] {
        var offsets = [0]
        for size in sizes { offsets.append(offsets.last! + size) }
        return offsets
    }
}
