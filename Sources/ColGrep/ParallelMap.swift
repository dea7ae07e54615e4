import Foundation
import Tensor

extension Array where Element: Sendable {
    /// `map` on every core for independent, CPU-bound work per element (pooling a chunk's
    /// documents); results in input order. Small arrays stay on the calling thread.
    func parallelMap<T: Sendable>(minimumCount: Int = 32, _ transform: @Sendable (Element) -> T) -> [T] {
        let workers = Swift.min(UsableCores.count, count)
        guard workers > 1, count >= minimumCount else { return map(transform) }
        var results = [T?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { out in
            let output = UncheckedOutput(base: out.baseAddress!)
            let next = NSLock(), cursor = UncheckedOutput(base: UnsafeMutablePointer<Int>.allocate(capacity: 1))
            cursor.base.initialize(to: 0)
            defer { cursor.base.deallocate() }
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    // Blocks of 4 elements keep long and short documents spread over the workers.
                    next.lock()
                    let start = cursor.base.pointee
                    cursor.base.pointee += 4
                    next.unlock()
                    guard start < count else { return }
                    for index in start..<Swift.min(start + 4, count) { output.base[index] = transform(self[index]) }
                }
            }
        }
        return results.map { $0! }
    }
}

/// A pointer that `concurrentPerform` workers write through at disjoint indices (or under a lock).
private struct UncheckedOutput<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}
