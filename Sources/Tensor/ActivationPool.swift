import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The storage of a `CPUBackend`'s activation matrices: page-aligned anonymous mappings, kept for reuse
/// when a matrix dies, and handed to the next matrix that fits (the smallest cached one at least as large, at most twice).
///
/// Why not malloc: every operation allocates its output, tens of MiB per layer. Fresh pages for each cost
/// page faults and zeroing (17% kernel time in a profile), and keeping freed heap pages instead (a 1 GiB
/// trim threshold) let glibc's arenas fragment into several times the live size. Here, reuse avoids the
/// faults, and what the pool holds (in use + cached) never exceeds `limit` unless the live matrices alone
/// do: before mapping more, cached buffers are unmapped, largest first.
final class ActivationPool: @unchecked Sendable {
    /// Smaller matrices use malloc (their pages are few and reused by it).
    static let minimumBytes = 256 << 10
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    let meter: MemoryMeter
    /// Bytes the pool may hold (in use + cached) before it unmaps cached buffers.
    var limit: Int
    private let lock = NSLock()
    private var cached: [(base: UnsafeMutableRawPointer, bytes: Int)] = []
    /// Bytes mapped by the pool: in use + cached.
    private var held = 0

    init(meter: MemoryMeter, limit: Int) {
        self.meter = meter
        self.limit = limit
    }

    deinit { trim() }

    /// A buffer of at least `bytes`; returns its base and its real size (give both back to `give`).
    func take(_ bytes: Int) -> (base: UnsafeMutableRawPointer, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        // At most twice the size: a small matrix must not take the buffer a large one will ask for next.
        if let index = cached.indices.filter({ cached[$0].bytes >= bytes && cached[$0].bytes <= 2 * bytes })
            .min(by: { cached[$0].bytes < cached[$1].bytes }) {
            let buffer = cached.remove(at: index)
            meter.inUse(buffer.bytes)
            return buffer
        }
        let size = (bytes + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        cached.sort { $0.bytes < $1.bytes }
        while held + size > limit, let buffer = cached.popLast() { unmapLocked(buffer) }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED else {
            preconditionFailure("out of memory: cannot map \(size) bytes for an activation matrix")
        }
        held += size
        meter.reserved(size)
        meter.inUse(size)
        return (base, size)
    }

    /// Takes back a buffer from `take`, for reuse.
    func give(_ base: UnsafeMutableRawPointer, bytes: Int) {
        lock.withLock {
            cached.append((base, bytes))
            meter.notInUse(bytes)
        }
    }

    /// Unmaps every cached buffer (`CPUBackend.releaseCachedMemory`).
    func trim() {
        lock.withLock {
            while let buffer = cached.popLast() { unmapLocked(buffer) }
        }
    }

    private func unmapLocked(_ buffer: (base: UnsafeMutableRawPointer, bytes: Int)) {
        munmap(buffer.base, buffer.bytes)
        held -= buffer.bytes
        meter.released(buffer.bytes)
    }
}
