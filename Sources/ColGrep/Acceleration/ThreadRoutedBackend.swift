import Foundation
import Tensor

/// A backend that sends every operation to the backend the calling thread is bound to, so one model
/// (one copy of its weights) serves several encode lanes of one device at once: each lane's thread
/// binds its own backend (its own streams, staging buffers and activation pool) around its calls, and
/// the model's weights, uploaded once through whichever lane loaded them, are read by every lane.
///
/// The lanes' backends must accept each other's matrices (CUDA backends of one device share its primary
/// context, so device pointers are valid on every lane's streams; CPU matrices are host memory), and
/// weights must be complete on the device before another lane reads them (the loader synchronizes).
/// A thread with no binding uses the backend that was bound when the router was made.
public final class ThreadRoutedBackend: ForwardingBackend, HostBorrowingBackend, @unchecked Sendable {
    /// The backend of threads with no binding.
    public let unboundBackend: any Backend
    private var key = pthread_key_t()

    /// A bound backend, referenced (unretained) from the thread's slot while `with` runs.
    private final class Binding {
        let backend: any Backend
        init(_ backend: any Backend) { self.backend = backend }
    }

    public init(unbound: any Backend) {
        unboundBackend = unbound
        pthread_key_create(&key, nil)
    }

    deinit {
        pthread_key_delete(key)
    }

    /// The calling thread's backend.
    public var forwardee: any Backend {
        guard let slot = pthread_getspecific(key) else { return unboundBackend }
        return Unmanaged<Binding>.fromOpaque(slot).takeUnretainedValue().backend
    }

    /// Runs `body` with every operation of this router on the calling thread going to `backend`;
    /// the previous binding comes back afterwards (bindings nest).
    public func with<T>(_ backend: any Backend, _ body: () throws -> T) rethrows -> T {
        let binding = Binding(backend)
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(binding).toOpaque())
        defer {
            pthread_setspecific(key, previous)
            withExtendedLifetime(binding) {}
        }
        return try body()
    }

    public func uploadBorrowing(_ values: UnsafePointer<Float>, rows: Int, cols: Int, owner: AnyObject) throws -> any DeviceMatrix {
        let target = forwardee
        if let borrowing = target as? any HostBorrowingBackend {
            return try borrowing.uploadBorrowing(values, rows: rows, cols: cols, owner: owner)
        }
        return try target.upload(HostMatrix(rows: rows, cols: cols, values: Array(UnsafeBufferPointer(start: values, count: rows * cols))))
    }
}
