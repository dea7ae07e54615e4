/// Whether a k-means run keeps all its vectors in device memory, and how the background copy is cut.
struct ResidentRowsPlan: Equatable {
    /// Share of the device's free memory (plus the pool's cached blocks) the rows may take; the rest is left to
    /// Lloyd's sample, its padded copy and the assignment's scratch (a few hundred MB at K = 32,768) and to others.
    static let memoryShare = 0.5
    /// Bytes of host rows per chunk of the background copy: small enough that its two pinned buffers (reused by
    /// later runs) cost ~11 ms to page-lock once, large enough that each DMA runs at the link's speed.
    static let chunkBytes = 8 << 20
    /// Rows per assignment pass over device-resident rows (bounds the coarse-to-fine scratch: 16 bytes per
    /// vector and probe, 128 MiB at 8 probes).
    static let assignRowsPerPass = 1 << 20

    let bytes: Int
    let fits: Bool

    /// `count × dim` fp32 rows against `freeBytes` of free device memory and `cachedBytes` in the pool.
    init(count: Int, dim: Int, freeBytes: Int, cachedBytes: Int) {
        let (product, overflow) = count.multipliedReportingOverflow(by: dim * 4)
        bytes = overflow ? .max : product
        let budget = Double(max(0, freeBytes) + max(0, cachedBytes)) * Self.memoryShare
        // Row indices of the sample and of the kernels are 32-bit.
        fits = !overflow && count > 0 && dim > 0 && count <= Int(Int32.max) && Double(bytes) <= budget
    }

    /// How many of `passes` (in order) lie entirely within the first `rows` rows.
    static func passesCovered(_ passes: [Range<Int>], byRows rows: Int) -> Int {
        passes.prefix { $0.upperBound <= rows }.count
    }

    /// Row ranges of at most `rowsPerPass` rows covering `0..<count`.
    static func passes(count: Int, rowsPerPass: Int = assignRowsPerPass) -> [Range<Int>] {
        let step = max(1, rowsPerPass)
        return stride(from: 0, to: max(0, count), by: step).map { $0..<min(count, $0 + step) }
    }
}
