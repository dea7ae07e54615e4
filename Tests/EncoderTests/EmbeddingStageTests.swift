import Foundation
import Testing
@testable import Tensor
@testable import Encoder

/// BERT and ModernBERT reach their embedding stage through one `Backend.embed` call (where a GPU backend runs its fused
/// kernel), with the batch's token ids, and BERT with its positions; the forward pass gives the same bits as with
/// the expressions the models used before that call existed.
@Suite struct EmbeddingStageTests {
    /// Answers `embed` with the pre-`embed` expressions, written out from its own ops, and records what it was given.
    final class SeparateOpsEmbedding: ForwardingBackend {
        let forwardee: any Backend = CPUBackend(threads: 1, precision: .fp32)
        var calls: [(ids: [Int32], positionIDs: [Int32]?)] = []
        func embed(words: any DeviceMatrix, ids: [Int32], positions: (table: any DeviceMatrix, ids: [Int32])?,
                   normWeight: any DeviceMatrix, normBias: (any DeviceMatrix)?, eps: Float) throws -> any DeviceMatrix {
            calls.append((ids, positions?.ids))
            let b = forwardee
            guard let positions else { return try b.layerNorm(b.gather(words, ids: ids), weight: normWeight, bias: normBias, eps: eps) }
            return try b.layerNorm(b.add(b.gather(words, ids: ids), b.gather(positions.table, ids: positions.ids)),
                                   weight: normWeight, bias: normBias, eps: eps)
        }
    }

    static let sequences: [[Int32]] = [[101, 7, 7, 42, 999, 102], [101, 3, 102], (0..<40).map { Int32(5 + $0 * 17 % 990) }]

    /// A one-layer BERT of MiniLM's widths with a 1,000-token vocabulary (the last id, 999, is in the batch).
    static func syntheticBERT() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appending(path: "enc-embed-\(UUID().uuidString)")
        var shape = SyntheticModel.BERTShape()
        shape.vocab = 1000; shape.layers = 1
        try SyntheticModel.writeBERT(shape, to: directory)
        return directory
    }

    func forwardBothWays(_ directory: URL, _ batch: PackedBatch) throws -> (plain: HostMatrix, separate: HostMatrix, spy: SeparateOpsEmbedding) {
        let plainBackend = CPUBackend(threads: 1, precision: .fp32)
        let plain = try plainBackend.download(ColBERTModel(modelDirectory: directory, backend: plainBackend).backbone.forward(batch))
        let spy = SeparateOpsEmbedding()
        let separate = try spy.download(ColBERTModel(modelDirectory: directory, backend: spy).backbone.forward(batch))
        return (plain, separate, spy)
    }

    @Test func bertEmbedsWordsAndPositionsInOneCallWithUnchangedOutput() throws {
        let directory = try Self.syntheticBERT()
        defer { try? FileManager.default.removeItem(at: directory) }
        let batch = PackedBatch(sequences: Self.sequences)
        let (plain, separate, spy) = try forwardBothWays(directory, batch)
        #expect(spy.calls.count == 1)
        #expect(spy.calls.first?.ids == batch.tokenIDs)
        #expect(spy.calls.first?.positionIDs == batch.positions)
        #expect(plain.rows == batch.tokenCount && plain.cols == 384)
        let identical = plain.values == separate.values  // (one Bool: the failure message would list every value)
        #expect(identical)
    }

    @Test func modernBERTEmbedsWordsWithoutPositionsWithUnchangedOutput() throws {
        let batch = PackedBatch(sequences: Self.sequences.map { $0.map { $0 % 100 } })
        let (plain, separate, spy) = try forwardBothWays(Fixtures.tinyModernBERT, batch)
        #expect(spy.calls.count == 1)
        #expect(spy.calls.first?.ids == batch.tokenIDs)
        #expect(spy.calls.first.map { $0.positionIDs == nil } == true)
        #expect(plain.rows == batch.tokenCount)
        let identical = plain.values == separate.values  // (one Bool: the failure message would list every value)
        #expect(identical)
    }
}
