import Encoder
import Foundation
import Tensor
import Testing
@testable import ColGrep

/// The product encoder on the Encoder tests' tiny ModernBERT fixture (real tokenizer, markers,
/// skiplist, Dense head), on a machine without a GPU.
@Suite struct AccelerationRoutedEncoderTests {
    static let fixture: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EncoderTests/Fixtures/tiny-modernbert").standardizedFileURL
    private let noGPU = GPUInventory(ordinals: [], description: nil, unavailableReason: "no NVIDIA driver")

    private func scratchStore() -> CostModelStore {
        CostModelStore(directory: FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-routed-\(UUID().uuidString)"))
    }

    @Test func routedDocumentsMatchThePlainCPUEncoder() throws {
        let texts = (0..<25).map { "def function_\($0)(x):\n    return x * \($0) + helper(\"value \($0)\")" } + ["", "a"]
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.directory) }
        let routed = try RoutedEncoder(modelDirectory: Self.fixture, mode: .auto, hostThreads: 2, profiler: Profiler(enabled: false),
                                       gpus: noGPU, costModels: store)
        let plan = try routed.plan(units: texts.count, estimatedTokens: routed.estimateTokens(textBytes: texts.map(\.utf8.count)))
        #expect(plan.choice == .cpu)
        let got = try routed.encodeDocuments(texts)
        routed.finish()
        let plain = try ColBERTEncoder(modelDirectory: Self.fixture, backend: CPUBackend(threads: 1)).encodeDocuments(texts)
        #expect(got.count == plain.count)
        for (a, b) in zip(got, plain) {
            #expect(a.rows == b.rows && a.cols == b.cols)
            // Up to int8 rounding: `Int8Decisions` is process-wide, so another suite may settle the fixture's
            // weights on int8 between the two encodes (the CI machine's int8 kernel wins where this one's loses).
            #expect(zip(a.values, b.values).allSatisfy { abs($0 - $1) < 0.02 })
        }
    }

    @Test func queriesStayOnTheCPUInAutoAndForceGPUFailsWithTheCause() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.directory) }
        let auto = try RoutedEncoder(modelDirectory: Self.fixture, mode: .auto, hostThreads: 1, profiler: Profiler(enabled: true),
                                     gpus: GPUInventory(ordinals: [0], description: "H100 (sm_90)", unavailableReason: nil), costModels: store)
        let query = try auto.encodeQuery("retry with backoff")
        #expect(query.rows > 0)
        #expect(auto.profiler.snapshot().contains { $0.stage == "query encode" && $0.device == "cpu" })
        let forced = try RoutedEncoder(modelDirectory: Self.fixture, mode: .forceGPU, hostThreads: 1, profiler: Profiler(enabled: false),
                                       gpus: noGPU, costModels: store)
        #expect(throws: ColGrepError.gpuUnavailable("no NVIDIA driver")) { try forced.encodeQuery("retry") }
        #expect(throws: ColGrepError.gpuUnavailable("no NVIDIA driver")) { try forced.plan(units: 10, estimatedTokens: 1000) }
    }
}
