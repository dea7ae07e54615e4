#if canImport(Glibc)
import Glibc
#endif

/// A matrix in host memory owned by `CPUBackend`: a row-major `Float` buffer, freed with the object,
/// or a constant region borrowed from another object (a memory-mapped weights file) and kept alive by it.
public final class CPUMatrix: DeviceMatrix, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// The `rows × cols` values. Written only by the operation that creates the matrix; a borrowed
    /// matrix is never written (weights are constants).
    public let storage: UnsafeMutableBufferPointer<Float>
    /// The int8 form of a weight, made by the first int8 `linear` that uses it (weights never change).
    var quantized: QuantizedWeight?
    /// What keeps borrowed storage alive; nil when `storage` was allocated here (and is freed here).
    private let owner: AnyObject?
    /// The pool a large activation's storage came from and goes back to, with the buffer's real size; or
    /// the meter a small one is counted in.
    private let pool: ActivationPool?
    private let poolBytes: Int
    private let meter: MemoryMeter?

    /// An uninitialised matrix (every operation writes all of its output).
    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        storage = .allocate(capacity: max(rows * cols, 1))
        owner = nil
        pool = nil; poolBytes = 0; meter = nil
    }

    /// An uninitialised activation of a backend: from `pool` when large, else from malloc counted in the
    /// pool's meter.
    init(rows: Int, cols: Int, pool: ActivationPool) {
        self.rows = rows
        self.cols = cols
        owner = nil
        let count = max(rows * cols, 1), bytes = count * MemoryLayout<Float>.stride
        if bytes >= ActivationPool.minimumBytes {
            let buffer = pool.take(bytes)
            storage = UnsafeMutableBufferPointer(start: buffer.base.bindMemory(to: Float.self, capacity: count), count: count)
            self.pool = pool; poolBytes = buffer.bytes; meter = nil
        } else {
            storage = .allocate(capacity: count)
            self.pool = nil; poolBytes = 0; meter = pool.meter
            pool.meter.allocated(bytes)
        }
    }

    public convenience init(_ host: HostMatrix) {
        self.init(rows: host.rows, cols: host.cols)
        host.values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.baseAddress!.update(from: base, count: source.count) }
        }
    }

    /// A matrix over `rows × cols` floats that `owner` keeps valid (no copy). Used for weights that sit
    /// 4-byte aligned in a memory-mapped file: their pages are read on first use and shared with the
    /// page cache, instead of being copied into fresh memory at load time.
    public init(borrowing values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) {
        self.rows = rows
        self.cols = cols
        storage = UnsafeMutableBufferPointer(start: UnsafeMutablePointer(mutating: values), count: rows * cols)
        self.owner = owner
        pool = nil; poolBytes = 0; meter = nil
    }

    deinit {
        if let pool {
            pool.give(UnsafeMutableRawPointer(storage.baseAddress!), bytes: poolBytes)
        } else if owner == nil {
            storage.deallocate()
            meter?.freed(storage.count * MemoryLayout<Float>.stride)
        }
    }

    /// Whether the values are borrowed from another object rather than owned.
    public var isBorrowed: Bool { owner != nil }

    /// For a borrowed matrix (a memory-mapped weight): drops the pages that hold only its values from this
    /// process's resident memory. Used once the weight's int8 copy has replaced it; should the values be
    /// read again, the kernel reads them back from the file (page cache). Owned matrices are left alone.
    func dropResidentPages() {
        guard owner != nil else { return }
        let page = ActivationPool.pageSize
        let start = (Int(bitPattern: pointer) + page - 1) / page * page
        let end = (Int(bitPattern: pointer) + rows * cols * MemoryLayout<Float>.stride) / page * page
        guard end > start, let base = UnsafeMutableRawPointer(bitPattern: start) else { return }
        madvise(base, end - start, MADV_DONTNEED)
    }

    public var pointer: UnsafeMutablePointer<Float> { storage.baseAddress! }

    public var host: HostMatrix {
        HostMatrix(rows: rows, cols: cols, values: Array(UnsafeBufferPointer(start: pointer, count: rows * cols)))
    }
}

/// A backend whose device memory is host memory, so constant host data can be used where it lies.
public protocol HostBorrowingBackend: Backend {
    /// A device matrix over `rows × cols` floats at `values`, valid while `owner` lives. The values
    /// must never change (weights). Host-memory backends use them in place (nothing copied); a device
    /// backend copies them before returning and needs neither them nor `owner` afterwards.
    func uploadBorrowing(_ values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) throws -> any DeviceMatrix
}

extension CPUBackend: HostBorrowingBackend {
    public func uploadBorrowing(_ values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) throws -> any DeviceMatrix {
        CPUMatrix(borrowing: values, rows: rows, cols: cols, owner: owner)
    }
}

/// Errors of the Tensor module: a shape or a matrix that does not fit the operation.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
