/// How host rows are cut for a pipelined upload: consecutive chunks of whole rows, each at most
/// `chunkBytes` (at least one row). (A chunk's host copy into pinned memory is split over the cores by
/// `CUDABackend.inParallelSlices`.)
struct RowUploadPlan: Equatable {
    /// Rows in every chunk but possibly the last.
    let rowsPerChunk: Int
    /// Row ranges, in order, covering `0..<count` exactly.
    let chunks: [Range<Int>]

    init(count: Int, rowBytes: Int, chunkBytes: Int) {
        precondition(count >= 0 && rowBytes > 0 && chunkBytes > 0, "RowUploadPlan needs count ≥ 0 and positive sizes")
        let perChunk = max(1, min(max(count, 1), chunkBytes / rowBytes))
        rowsPerChunk = perChunk
        chunks = stride(from: 0, to: count, by: perChunk).map { $0..<min(count, $0 + perChunk) }
    }
}
