import Foundation
import Testing
@testable import Tensor
@testable import Encoder

/// Issue #3: encoding a 16k-token batch holds at most 64 MiB beyond the weights. Measured with the CPU
/// backend's allocation meter (every activation, scratch buffer, int8 weight copy and int8 work buffer it
/// allocates), which is deterministic, unlike resident memory (`colgrep bench encoder` reports that too).
/// The models have the real widths (Ettin-17M: hidden 256, MLP 384, 4 heads, head 256→512→48; MiniLM:
/// hidden 384, MLP 1536, 12 heads) but one layer and a 1,000-token vocabulary: activations are per layer,
/// and a small embedding table keeps the test fast.
@Suite struct ActivationMemoryTests {
    static let allowance = 64 << 20

    enum Shape: String, CaseIterable { case ettin, miniLM }

    static func model(_ shape: Shape, precision: CPUPrecision, layers: Int = 1) throws -> (ColBERTModel, CPUBackend, URL) {
        let directory = FileManager.default.temporaryDirectory.appending(path: "enc-memory-\(UUID().uuidString)")
        switch shape {
        case .ettin:
            var s = SyntheticModel.ModernBERTShape()
            s.vocab = 1000; s.layers = layers
            try SyntheticModel.writeModernBERT(s, to: directory)
        case .miniLM:
            var s = SyntheticModel.BERTShape()
            s.vocab = 1000; s.layers = layers
            try SyntheticModel.writeBERT(s, to: directory)
        }
        let backend = CPUBackend(threads: 2, precision: precision)
        return (try ColBERTModel(modelDirectory: directory, backend: backend), backend, directory)
    }

    /// Documents of 8–512 tokens adding up to `tokens`, seeded.
    static func documents(tokens: Int, seed: UInt64 = 5) -> [[Int32]] {
        var random = SplitMix(seed: seed), remaining = tokens, result: [[Int32]] = []
        while remaining > 0 {
            let length = min(remaining, 8 + Int(random.next() % 505))
            result.append((0..<length).map { _ in Int32(5 + random.next() % 990) })
            remaining -= length
        }
        return result
    }

    @Test(arguments: [(Shape.ettin, CPUPrecision.fp32), (.ettin, .int8), (.miniLM, .fp32)])
    func sixteenThousandTokenBatchHoldsAtMost64MiBBeyondTheWeights(shape: Shape, precision: CPUPrecision) throws {
        let (model, backend, directory) = try Self.model(shape, precision: precision)
        defer { try? FileManager.default.removeItem(at: directory) }
        let documents = Self.documents(tokens: 16_384)
        backend.memory.resetPeak()
        let vectors = try model.encode(documents, batcher: TokenBudgetBatcher(tokenBudget: 16_384))
        #expect(vectors.reduce(0) { $0 + $1.rows } == 16_384)
        #expect(model.passes(lengths: documents.map(\.count)).count > 1)
        #expect(backend.memory.peak <= Self.allowance, "allocation high-water \(backend.memory.peak) bytes")
        // Everything allocated for the batch is given back once the cached buffers are, except int8 weight copies.
        #expect(precision == .fp32 ? backend.memory.live == 0 : backend.memory.live > 0)
        backend.releaseCachedMemory()
        #expect(backend.memory.current == backend.memory.live)
    }

    /// The per-token figure that sizes the passes is what one pass really holds at its widest moment (plus
    /// attention's per-thread scratch, bounded by the longest sequence), so a pass stays within the budget.
    @Test(arguments: Shape.allCases)
    func onePassHoldsWhatActivationBytesPerTokenSays(shape: Shape) throws {
        let (model, backend, directory) = try Self.model(shape, precision: .fp32)
        defer { try? FileManager.default.removeItem(at: directory) }
        let batch = PackedBatch(sequences: Self.documents(tokens: 1_024))
        #expect(model.passes(lengths: (0..<batch.sequenceCount).map { batch.range(of: $0).count }).count == 1)
        backend.memory.resetPeak()
        _ = try model.embed(batch)
        let predicted = batch.tokenCount * model.activationBytesPerToken
        #expect(backend.memory.livePeak >= predicted)
        #expect(backend.memory.livePeak <= predicted + (1 << 20), "live peak \(backend.memory.livePeak), predicted \(predicted)")
        // What the pool keeps mapped for reuse stays within its limit.
        #expect(backend.memory.peak <= CPUBackend.poolLimit(backend.activationBudgetBytes) + (1 << 20))
    }

    /// A batch run in several passes gives the vectors of one pass: sequences never interact.
    @Test func passesGiveTheVectorsOfOnePass() throws {
        let (model, backend, directory) = try Self.model(.ettin, precision: .fp32, layers: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        let documents = Self.documents(tokens: 2_000, seed: 9)
        let whole = try model.embed(PackedBatch(sequences: documents))
        backend.activationBudgetBytes = 300 * model.activationBytesPerToken
        let lengths = documents.map(\.count)
        let passes = model.passes(lengths: lengths)
        #expect(passes.count >= 7)
        #expect(passes.allSatisfy { pass in pass.count == 1 || pass.reduce(0) { $0 + lengths[$1] } <= 300 })
        let split = try model.embed(PackedBatch(sequences: documents))
        let viaEncode = try model.encode(documents).flatMap(\.values)
        var worst: Float = 0
        for (a, b) in zip(whole.values, split.values) { worst = max(worst, abs(a - b)) }
        #expect(split.rows == whole.rows && worst <= 1e-5, "largest difference \(worst)")
        #expect(viaEncode.count == whole.values.count)
    }

    /// int8 drops the fp32 weight's mapped pages once its copy is packed; the values read afterwards are
    /// still the file's, and the next batch gives the same vectors.
    @Test func droppedWeightPagesReadBackFromTheFile() throws {
        let (model, _, directory) = try Self.model(.ettin, precision: .int8)
        defer { try? FileManager.default.removeItem(at: directory) }
        let batch = PackedBatch(sequences: Self.documents(tokens: 300, seed: 11))
        let first = try model.embed(batch)
        let layer = try #require((model.backbone as? ModernBERT)?.layers.first)
        let weight = try #require(layer.mlpIn as? CPUMatrix)
        #expect(weight.isBorrowed && weight.quantized?.packed != nil)
        let file = try SafeTensorsFile(url: directory.appending(path: "model.safetensors"))
        let expected = try file.matrix("layers.0.mlp.Wi.weight", shape: [weight.rows, weight.cols])
        #expect(weight.host == expected)
        #expect(try model.embed(batch) == first)
    }
}

/// `ColBERTModel.embedRows` (one block per batch) gives exactly what `encode` gives per sequence on the
/// CPU backend: one pass or several (a small activation budget), with and without the skiplist, and
/// with an empty sequence in the batch.
@Suite struct EmbedRowsTests {
    @Test(arguments: [false, true])
    func blockEqualsPerSequenceEncoding(severalPasses: Bool) throws {
        let (model, backend, directory) = try ActivationMemoryTests.model(.ettin, precision: .fp32)
        defer { try? FileManager.default.removeItem(at: directory) }
        if severalPasses { backend.activationBudgetBytes = 300 * model.activationBytesPerToken }
        var documents = ActivationMemoryTests.documents(tokens: 1_200, seed: 9)
        documents.insert([], at: 1)
        let skip: Set<Int32> = [7, 11, 13, 17, 19, 23, 29, 31]
        let batch = PackedBatch(sequences: documents)
        #expect((model.passes(lengths: documents.map(\.count)).count > 1) == severalPasses)
        for dropping in [Set<Int32>(), skip] {
            let expected = try model.encode(documents, dropping: dropping, batcher: TokenBudgetBatcher(tokenBudget: batch.tokenCount))
            let block = try model.embedRows(batch, dropping: dropping)
            #expect(block.groupCount == documents.count)
            let got = block.matrices()
            #expect(got.map(\.rows) == expected.map(\.rows))
            #expect(got.map(\.cols) == expected.map(\.cols))
            // Same model, same sequences; the packing may differ (the batcher orders by length), so
            // equal up to float rounding.
            let worst = zip(got, expected).flatMap { zip($0.values, $1.values).map { abs($0 - $1) } }.max() ?? 0
            #expect(worst <= 1e-5, "largest difference \(worst)")
            #expect(dropping.isEmpty || got.reduce(0) { $0 + $1.rows } < batch.tokenCount)
        }
    }
}
