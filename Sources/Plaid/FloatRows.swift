/// Read-only `Float` values that either live in memory this type allocated or are viewed in place in
/// a read-only file mapping that they keep alive. The codec's centroids (12.5 MB at K = 8,192, 384-d)
/// are read this way at index open: a one-shot search then neither copies them out of the mapped codec
/// file nor faults in as many fresh pages for the copy.
///
/// A random-access collection of `Float`, with `withUnsafeBufferPointer` as on `Array`, so kernels
/// take a pointer to the values whichever way they are held.
struct FloatRows: RandomAccessCollection, Sendable, Equatable {
    private let storage: Storage

    /// A copy of `values`.
    init(_ values: [Float]) {
        storage = Storage(copying: values)
    }

    /// `values` in place, inside the mapping `owner` keeps alive (read-only: never written through).
    init(mapped values: UnsafeBufferPointer<Float>, owner: MappedFile) {
        storage = Storage(viewing: values, owner: owner)
    }

    var startIndex: Int { 0 }
    var endIndex: Int { storage.values.count }

    subscript(position: Int) -> Float { storage.values[position] }

    /// Calls `body` with the values (valid only inside `body`, as for `Array`).
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(storage.values) }
    }

    func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R? {
        try withUnsafeBufferPointer(body)
    }

    /// True when the values are viewed in a file mapping (not a copy).
    var isMapped: Bool { storage.isMapped }

    /// The values as an array (a copy).
    var array: [Float] { withUnsafeBufferPointer { Array($0) } }

    /// Bitwise-equal values compare equal as `Float`s do (NaN never equals).
    static func == (lhs: FloatRows, rhs: FloatRows) -> Bool {
        lhs.storage === rhs.storage || lhs.elementsEqual(rhs)
    }

    /// The memory: allocated and freed here, or a view of a mapping held by `owner`.
    private final class Storage: @unchecked Sendable {
        let values: UnsafeBufferPointer<Float>
        private let owner: MappedFile?

        init(copying array: [Float]) {
            let memory = UnsafeMutableBufferPointer<Float>.allocate(capacity: array.count)
            _ = memory.initialize(from: array)
            values = UnsafeBufferPointer(memory)
            owner = nil
        }

        init(viewing values: UnsafeBufferPointer<Float>, owner: MappedFile) {
            self.values = values
            self.owner = owner
        }

        var isMapped: Bool { owner != nil }

        deinit {
            if owner == nil { values.deallocate() }
        }
    }
}
