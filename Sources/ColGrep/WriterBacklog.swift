import Foundation

/// How much work may wait for a serial writer: always `minimumItems` items whatever their size, and more
/// while the waiting items' bytes stay within `byteLimit`. `enter` blocks until an item of `bytes` fits;
/// `leave` gives its room back.
///
/// Why bytes and not a fixed count: the vector writer of a new index stops for the codec's creation
/// (k-means, bucket quantiles, the first groups' codes: ~0.17 s on the four-GPU machine). With two chunks
/// of room the pooler, then the encoder, then the tokenizer stood still behind it, and the encode lane
/// ended ~0.1 s after the store lane instead of before it (docs/PERFORMANCE.md, session 18). A chunk's
/// pooled vectors are ~20 MB there, so room for a dozen keeps the lanes moving through that stop, while a
/// slow encoder (a CPU-only run) never builds a backlog at all.
final class WriterBacklog: @unchecked Sendable {
    let minimumItems: Int
    let byteLimit: Int
    private let condition = NSCondition()
    private var items = 0
    private var bytes = 0

    init(minimumItems: Int, byteLimit: Int) {
        self.minimumItems = max(1, minimumItems)
        self.byteLimit = max(0, byteLimit)
    }

    /// The pipeline's vector backlog: two chunks, or up to 256 MiB (at most a sixteenth of the memory).
    static func forPooledVectors(physicalMemory: UInt64 = ProcessInfo.processInfo.physicalMemory) -> WriterBacklog {
        let limit = min(UInt64(256 << 20), physicalMemory / 16)
        return WriterBacklog(minimumItems: 2, byteLimit: Int(limit))
    }

    /// Waits until an item of `bytes` may join the backlog, then counts it in.
    func enter(bytes itemBytes: Int) {
        condition.lock()
        defer { condition.unlock() }
        while items >= minimumItems && bytes + itemBytes > byteLimit { condition.wait() }
        items += 1
        bytes += itemBytes
    }

    /// Takes an item of `bytes` out of the backlog.
    func leave(bytes itemBytes: Int) {
        condition.lock()
        items -= 1
        bytes -= itemBytes
        condition.broadcast()
        condition.unlock()
    }

    /// Items and bytes waiting now.
    var waiting: (items: Int, bytes: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (items, bytes)
    }
}
