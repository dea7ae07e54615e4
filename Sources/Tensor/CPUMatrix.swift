/// A matrix in host memory owned by `CPUBackend`: a row-major `Float` buffer, freed with the object.
public final class CPUMatrix: DeviceMatrix, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// The `rows × cols` values. Written only by the operation that creates the matrix.
    public let storage: UnsafeMutableBufferPointer<Float>
    /// The int8 form of a weight, made by the first int8 `linear` that uses it (weights never change).
    var quantized: QuantizedWeight?

    /// An uninitialised matrix (every operation writes all of its output).
    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        storage = .allocate(capacity: max(rows * cols, 1))
    }

    public convenience init(_ host: HostMatrix) {
        self.init(rows: host.rows, cols: host.cols)
        host.values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.baseAddress!.update(from: base, count: source.count) }
        }
    }

    deinit { storage.deallocate() }

    public var pointer: UnsafeMutablePointer<Float> { storage.baseAddress! }

    public var host: HostMatrix {
        HostMatrix(rows: rows, cols: cols, values: Array(UnsafeBufferPointer(start: pointer, count: rows * cols)))
    }
}

/// Errors of the Tensor module: a shape or a matrix that does not fit the operation.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
