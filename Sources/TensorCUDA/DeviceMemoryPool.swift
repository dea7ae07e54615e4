import Foundation

/// Raw device allocation, abstracted so the pool's bookkeeping is tested without a GPU.
protocol DeviceAllocator: AnyObject {
    func allocate(bytes: Int) throws -> UInt64
    func free(_ pointer: UInt64)
    /// Free and total device memory in bytes.
    func memoryInfo() -> (free: Int, total: Int)
}

/// A block of device memory handed out by `DeviceMemoryPool`.
struct DeviceBlock: Equatable {
    let pointer: UInt64
    let capacity: Int
}

/// A caching device allocator: freed blocks go back to per-size-class free lists and are reused, so
/// an op that returns a new matrix costs no `cuMemAlloc` once the pool is warm.
///
/// Sizes round up to classes (512-byte steps below 1 MiB; four classes per power of two above),
/// so batches of varying token counts reuse each other's blocks with at most 25 % waste. All device
/// work runs on one stream, so a block released and handed out again is only touched after the
/// work queued before it: stream order makes reuse safe without events.
final class DeviceMemoryPool: @unchecked Sendable {
    private let allocator: DeviceAllocator
    private let lock = NSLock()
    private var freeBlocks: [Int: [UInt64]] = [:]
    private(set) var allocatedBytes = 0
    private(set) var cachedBytes = 0
    private(set) var allocationCount = 0

    init(allocator: DeviceAllocator) {
        self.allocator = allocator
    }

    /// The size class of a request (what is actually allocated).
    static func sizeClass(_ bytes: Int) -> Int {
        let request = max(bytes, 1)
        if request <= 1 << 20 { return (request + 511) / 512 * 512 }
        let power = Int.bitWidth - (request - 1).leadingZeroBitCount  // 2^power >= request
        let base = 1 << (power - 1)
        let step = base / 4
        return base + (request - base + step - 1) / step * step
    }

    func allocate(bytes: Int) throws -> DeviceBlock {
        let size = Self.sizeClass(bytes)
        lock.lock()
        if var list = freeBlocks[size], let pointer = list.popLast() {
            freeBlocks[size] = list
            cachedBytes -= size
            lock.unlock()
            return DeviceBlock(pointer: pointer, capacity: size)
        }
        lock.unlock()
        do {
            return try fresh(size)
        } catch CUDAError.outOfMemory {
            // Give cached blocks of other sizes back to the driver and try once more.
            trim()
            return try fresh(size)
        }
    }

    private func fresh(_ size: Int) throws -> DeviceBlock {
        let pointer = try allocator.allocate(bytes: size)
        lock.lock()
        allocatedBytes += size
        allocationCount += 1
        lock.unlock()
        return DeviceBlock(pointer: pointer, capacity: size)
    }

    func release(_ block: DeviceBlock) {
        lock.lock()
        freeBlocks[block.capacity, default: []].append(block.pointer)
        cachedBytes += block.capacity
        lock.unlock()
    }

    /// Returns every cached (unused) block to the driver.
    func trim() {
        lock.lock()
        let blocks = freeBlocks
        freeBlocks = [:]
        for (size, list) in blocks { allocatedBytes -= size * list.count }
        cachedBytes = 0
        lock.unlock()
        for (_, list) in blocks { list.forEach { allocator.free($0) } }
    }

    func memoryInfo() -> (free: Int, total: Int) { allocator.memoryInfo() }
}
