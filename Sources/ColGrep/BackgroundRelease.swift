import Dispatch

/// Lets go of a large value on a background queue instead of the calling thread.
///
/// A serial lane of the indexing pipeline that frees what it just wrote pays for every heap object in it
/// before its next item: the store writer's group of prepared rows (a checkpoint batch, ~4,000 units of
/// strings, arrays and byte buffers: ~100k objects) took 11–27 ms to free after each of the ~30 writes of
/// a 113k-unit index, 0.45 s in all, while the row thread (released by the same write) was already
/// filling the next group (docs/PERFORMANCE.md, session 20). Freed here, the memory is returned beside
/// the lane instead of in it.
enum BackgroundRelease {
    private static let queue = DispatchQueue(label: "colgrep.background-release", qos: .utility)

    /// Takes `value` (pass it with `consume`, so that the caller keeps no reference) and drops it on the
    /// release queue. Items are freed in the order they were handed over.
    static func release<T: Sendable>(_ value: consuming T) {
        let box = ReleaseBox(value)
        queue.async { box.drop() }
    }

    /// Waits until everything handed over so far has been freed (for tests).
    static func drain() {
        queue.sync {}
    }
}

/// Holds the value until the release queue drops it; whichever of the caller and the queue lets go of the
/// box last would free it, so the queue empties it explicitly.
private final class ReleaseBox<T>: @unchecked Sendable {
    private var value: T?

    init(_ value: consuming T) {
        self.value = value
    }

    func drop() {
        value = nil
    }
}
