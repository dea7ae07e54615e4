import CBLAS
import CKernels
import Foundation

/// cos/sin of every (position, frequency) pair, computed once per attention call.
/// Frequencies follow transformers: `theta ** (−2i / headDim)` in float32, NeoX half-rotation.
final class RotaryTable: @unchecked Sendable {
    let cos: UnsafeMutablePointer<Float>
    let sin: UnsafeMutablePointer<Float>
    private let meter: MemoryMeter
    private let bytes: Int

    init(theta: Float, headDim: Int, positions: Int, meter: MemoryMeter) {
        let half = headDim / 2, count = max(positions * half, 1)
        cos = .allocate(capacity: count)
        sin = .allocate(capacity: count)
        self.meter = meter
        bytes = 2 * count * MemoryLayout<Float>.stride
        meter.allocated(bytes)
        for i in 0..<half {
            let inverse = 1 / Foundation.pow(theta, Float(2 * i) / Float(headDim))
            for p in 0..<positions {
                let angle = Float(p) * inverse
                cos[p * half + i] = Foundation.cos(angle)
                sin[p * half + i] = Foundation.sin(angle)
            }
        }
    }

    deinit { cos.deallocate(); sin.deallocate(); meter.freed(bytes) }
}

/// One worker's buffers: a head's rotated queries and keys and one tile of scores.
final class AttentionScratch: @unchecked Sendable {
    /// Query rows per tile: a whole sequence up to this length for global attention (one large QKᵀ GEMM
    /// beats many small ones), and the tile height for sliding windows and longer sequences.
    static let tile = 256
    let queries, keys, scores: UnsafeMutablePointer<Float>
    let lower, upper: UnsafeMutablePointer<Int32>
    private let meter: MemoryMeter
    private let bytes: Int

    init(maxLength: Int, headDim: Int, meter: MemoryMeter) {
        let rows = max(maxLength * headDim, 1), tile = max(Self.tile * maxLength, 1)
        queries = .allocate(capacity: rows)
        keys = .allocate(capacity: rows)
        scores = .allocate(capacity: tile)
        lower = .allocate(capacity: Self.tile)
        upper = .allocate(capacity: Self.tile)
        self.meter = meter
        bytes = (2 * rows + tile) * MemoryLayout<Float>.stride + 2 * Self.tile * MemoryLayout<Int32>.stride
        meter.allocated(bytes)
    }

    deinit {
        queries.deallocate(); keys.deallocate(); scores.deallocate(); lower.deallocate(); upper.deallocate()
        meter.freed(bytes)
    }
}

/// Attention of one head of one sequence: queries in tiles of up to 256 rows, each against only the keys its
/// rows can see (all of them, or the sliding-window band), QKᵀ and PV as SGEMMs, a masked softmax between.
struct AttentionKernel: Sendable {
    let qkv: SharedPointer<Float>
    let out: SharedPointer<Float>
    let heads: Int
    let headDim: Int
    /// Tokens attend to distance ≤ halfWindow; nil = global.
    let halfWindow: Int?
    let rotary: RotaryTable?

    func run(rows: Range<Int>, head: Int, scratch: AttentionScratch) {
        let length = rows.count, d = headDim, width = heads * d, ld = 3 * width
        guard length > 0 else { return }
        let base = qkv.base + rows.lowerBound * ld
        ck_rope_copy(base + head * d, ld, scratch.queries, length, d, rotary?.cos, rotary?.sin)
        ck_rope_copy(base + width + head * d, ld, scratch.keys, length, d, rotary?.cos, rotary?.sin)
        let values = base + 2 * width + head * d
        let scale = 1 / Float(d).squareRoot()
        let tile = halfWindow.map { max(64, min(AttentionScratch.tile, 2 * $0)) } ?? AttentionScratch.tile
        var start = 0
        while start < length {
            let end = min(length, start + tile), m = end - start
            var keyStart = 0, keyEnd = length
            if let h = halfWindow { keyStart = max(0, start - h); keyEnd = min(length, end - 1 + h + 1) }
            let n = keyEnd - keyStart
            for i in 0..<m {
                let q = start + i
                if let h = halfWindow {
                    scratch.lower[i] = Int32(max(0, q - h) - keyStart)
                    scratch.upper[i] = Int32(min(length, q + h + 1) - keyStart)
                } else {
                    scratch.lower[i] = 0
                    scratch.upper[i] = Int32(n)
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(d), 1,
                        scratch.queries + start * d, Int32(d), scratch.keys + keyStart * d, Int32(d), 0, scratch.scores, Int32(n))
            ck_softmax_band(scratch.scores, m, n, n, scratch.lower, scratch.upper, scale)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(d), Int32(n), 1,
                        scratch.scores, Int32(n), values + keyStart * ld, Int32(ld), 0,
                        out.base + (rows.lowerBound + start) * width + head * d, Int32(width))
            start = end
        }
    }
}
