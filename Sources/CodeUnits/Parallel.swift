import Foundation

/// Parallel map over indices with `concurrentPerform`; each index writes only its own slot, which is
/// why the unchecked-Sendable buffer is safe.
enum Parallel {
    private final class Slots<T>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<T?>
        init(_ count: Int) {
            buffer = .allocate(capacity: count)
            buffer.initialize(repeating: nil)
        }
        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }
    }

    static func map<T>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        if count == 0 { return [] }
        let slots = Slots<T>(count)
        DispatchQueue.concurrentPerform(iterations: count) { i in slots.buffer[i] = body(i) }
        return slots.buffer.map { $0! }
    }
}
