import CCUDA
import Foundation

/// Reusable page-locked host buffers that results are copied into by DMA and handed out as
/// `HostRowBlock`s: a block gives its buffer back when freed, so a consumer that drops each batch's
/// block once read keeps every download landing in the same pre-faulted pinned memory (no allocation,
/// no page faults, no host copy). At most `maxBuffers` buffers are pinned; when all are on loan
/// (a consumer holding many blocks) `take` returns nil and the caller uses pageable memory instead.
///
/// Thread-safe: blocks may be freed on any thread.
final class PinnedArena: @unchecked Sendable {
    /// One pinned allocation.
    final class Buffer {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
        init(pointer: UnsafeMutableRawPointer, capacity: Int) {
            self.pointer = pointer
            self.capacity = capacity
        }
    }

    private let context: CUDAContext
    private let maxBuffers: Int
    private let lock = NSLock()
    private var free: [Buffer] = []
    private var onLoan = 0

    init(context: CUDAContext, maxBuffers: Int = 3) {
        self.context = context
        self.maxBuffers = max(1, maxBuffers)
    }

    deinit {
        // Every loan holds the arena, so nothing is on loan here.
        try? context.makeCurrent()
        for buffer in free { _ = context.driver.cuMemFreeHost(buffer.pointer) }
    }

    /// Buffers waiting for reuse.
    var freeBuffers: Int {
        lock.lock()
        defer { lock.unlock() }
        return free.count
    }

    /// A buffer of at least `bytes`, or nil when `maxBuffers` are already on loan. Reuses the smallest
    /// free buffer that fits; else replaces the smallest free one (or adds one) with a larger one, with
    /// a quarter of headroom since batches vary a little in size and pinning is slow.
    func take(bytes: Int) throws -> Buffer? {
        lock.lock()
        if let index = free.indices.filter({ free[$0].capacity >= bytes }).min(by: { free[$0].capacity < free[$1].capacity }) {
            let buffer = free.remove(at: index)
            onLoan += 1
            lock.unlock()
            return buffer
        }
        var retired: Buffer? = nil
        if onLoan + free.count >= maxBuffers {
            guard let smallest = free.indices.min(by: { free[$0].capacity < free[$1].capacity }) else {
                lock.unlock()
                return nil
            }
            retired = free.remove(at: smallest)
        }
        onLoan += 1
        lock.unlock()
        try context.makeCurrent()
        if let retired { _ = context.driver.cuMemFreeHost(retired.pointer) }
        let size = max(bytes + bytes / 4, 1 << 20)
        var raw: UnsafeMutableRawPointer? = nil
        let code = context.driver.cuMemHostAlloc(&raw, size, 0)
        guard code == 0, let raw else {
            lock.lock(); onLoan -= 1; lock.unlock()
            try context.check(code, "cuMemHostAlloc(\(size))")
            return nil
        }
        return Buffer(pointer: raw, capacity: size)
    }

    /// Returns a buffer taken from this arena.
    func giveBack(_ buffer: Buffer) {
        lock.lock()
        free.append(buffer)
        onLoan -= 1
        lock.unlock()
    }
}
