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
