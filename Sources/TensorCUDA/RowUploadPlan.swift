/// How host rows are cut for a pipelined upload: consecutive chunks of whole rows, each at most
/// `chunkBytes` (at least one row), and how one chunk's host copy into pinned memory is split among
/// threads (one memcpy thread cannot keep up with the copy engine).
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

    /// Byte ranges splitting a copy of `bytes` among at most `workers` threads, none smaller than
    /// `minimumPiece` (except a copy smaller than that, which is one piece); empty for 0 bytes.
    static func pieces(bytes: Int, workers: Int, minimumPiece: Int = 1 << 20) -> [Range<Int>] {
        guard bytes > 0 else { return [] }
        let count = max(1, min(max(workers, 1), bytes / max(minimumPiece, 1)))
        let size = (bytes + count - 1) / count
        return stride(from: 0, to: bytes, by: size).map { $0..<min(bytes, $0 + size) }
    }
}
