import Foundation
import Tensor

extension CUDASelfTest {
    /// `embed`, the encoder's embedding stage: BERT-like (positions, 384 wide, bias), ModernBERT-like (no positions,
    /// 256 wide, no bias) and 512 wide, on row counts that leave a partial 16-row block, repeated ids and each table's
    /// last row. The fused kernel (bf16) against double precision, against the separate gather → add → layer norm
    /// (`fusesEmbedding` off) bit for bit, and that it ran; in fp32 the separate ops run either way. Ids outside
    /// either table are rejected.
    static func embeddingChecks(_ backend: CUDABackend, _ random: inout SeededGenerator) throws -> [Check] {
        let precision = backend.precision
        var recorder = CheckRecorder(prefix: "\(precision.rawValue) embed")
        var checks: [Check] = []
        // A layer norm left to the next GEMM keeps the separate ops; these checks are about the fused kernel.
        let saved = (backend.fusesEmbedding, backend.residentFusion, backend.fusesPrologues)
        defer { (backend.fusesEmbedding, backend.residentFusion, backend.fusesPrologues) = saved }
        backend.residentFusion = .off
        backend.fusesPrologues = false
        let vocab = 300
        // (label, width, sequence lengths, positions, bias, eps)
        for (label, cols, lengths, withPositions, withBias, eps) in [("BERT-like 384", 384, [1, 7, 64, 130], true, true, Float(1e-12)),
                                                                    ("ModernBERT-like 256", 256, [5, 69, 129], false, false, Float(1e-5)),
                                                                    ("512 wide", 512, [3, 40], true, false, Float(1e-5))] {
            let batch = PackedBatch(sequences: lengths.map { n in
                (0..<n).map { i in i % 9 == 4 ? Int32(vocab - 1) : Int32.random(in: 0..<20, using: &random) }  // repeats and the last row
            })
            let positionRows = batch.maxSequenceLength  // the longest sequence reads the table's last row
            let words = randomMatrix(rows: vocab, cols: cols, &random), positions = randomMatrix(rows: positionRows, cols: cols, &random)
            let weight = randomMatrix(rows: 1, cols: cols, &random), bias = randomMatrix(rows: 1, cols: cols, &random)
            let summed = HostMatrix(rows: batch.tokenCount, cols: cols, values: (0..<batch.tokenCount).flatMap { r in
                (0..<cols).map { c in
                    words.values[Int(batch.tokenIDs[r]) * cols + c] + (withPositions ? positions.values[Int(batch.positions[r]) * cols + c] : 0)
                }
            })
            let reference = referenceLayerNorm(summed, weight: weight, bias: withBias ? bias : nil, eps: Double(eps))
            let dWords = try backend.upload(words), dPositions = try backend.upload(positions)
            let dWeight = try backend.upload(weight), dBias = withBias ? try backend.upload(bias) : nil
            func embed() throws -> [Float] {
                try backend.download(backend.embed(words: dWords, ids: batch.tokenIDs, positions: withPositions ? (dPositions, batch.positions) : nil,
                                                   normWeight: dWeight, normBias: dBias, eps: eps)).values
            }
            let shape = "\(label) (\(batch.tokenCount) rows, positions=\(withPositions), bias=\(withBias))"
            backend.fusesEmbedding = false
            let before = backend.fusedEmbedCount
            let separate = try embed()
            recorder.record("\(shape) separate ops vs double precision", separate, reference, tolerance: precision == .fp32 ? 1e-5 : 1.2e-2)
            backend.fusesEmbedding = true
            let fused = try embed()
            recorder.record("\(shape) vs double precision", fused, reference, tolerance: precision == .fp32 ? 1e-5 : 1.2e-2)
            recorder.record("\(shape) fused kernel ran", [Float(backend.fusedEmbedCount - before)], [precision == .bf16 ? 1 : 0], tolerance: 0)
            let differing = fused.count == separate.count ? zip(fused, separate).filter { $0.bitPattern != $1.bitPattern }.count : max(fused.count, separate.count)
            checks.append(Check(name: "\(precision.rawValue) embed \(shape) values differing from the separate ops (bit for bit)",
                                error: Double(differing), tolerance: 0))
            if withPositions {
                let badToken = (try? backend.embed(words: dWords, ids: batch.tokenIDs + [Int32(vocab)], positions: (dPositions, batch.positions + [0]),
                                                   normWeight: dWeight, normBias: dBias, eps: eps)) == nil
                let badPosition = (try? backend.embed(words: dWords, ids: batch.tokenIDs + [0], positions: (dPositions, batch.positions + [Int32(positionRows)]),
                                                      normWeight: dWeight, normBias: dBias, eps: eps)) == nil
                recorder.record("\(label) ids outside the tables rejected", [Float(badToken && badPosition ? 0 : 1)], [0], tolerance: 0)
            }
        }
        return recorder.checks + checks
    }
}
