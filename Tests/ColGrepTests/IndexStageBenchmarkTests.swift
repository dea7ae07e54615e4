import Foundation
import Testing
@testable import ColGrep

/// `bench index-stages`' measurements: every stage runs alone over the same units the cold init then
/// indexes (tiny random ModernBERT from the encoder fixtures, CPU).
@Suite struct IndexStageBenchmarkTests {
    @Test func everyStageSeesTheCorpusAndTheColdInitIndexesIt() throws {
        let model = StreamedIndexBuildTests.packageRoot.appendingPathComponent("Tests/EncoderTests/Fixtures/tiny-modernbert")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-stages-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: base) }
        let project = base.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        for f in 0..<6 {
            try "def g_\(f)(x):\n    return x * \(f)\n\ndef h_\(f)(y):\n    return g_\(f)(y) + 1\n"
                .write(to: project.appendingPathComponent("s\(f).py"), atomically: true, encoding: .utf8)
        }
        var options = IndexOptions(model: model.path, poolFactor: 2)
        options.assumeYes = true
        options.acceleration = .forceCPU
        options.chunkSize = 4
        options.checkpointUnits = 5
        let stages = try IndexStageBenchmark.measureStages(root: project.path, options: options, config: ColGrepConfig(),
                                                           scratch: base.appendingPathComponent("stages"))
        #expect(stages.map(\.stage) == ["walk", "parse", "call graph", "embedding text", "tokenize", "encode", "pool",
                                        "k-means + codec + index create", "codec + index append", "store rows", "store"])
        let units = stages.first { $0.stage == "parse" }?.units ?? 0
        #expect(units == 12)
        for stage in ["embedding text", "tokenize", "encode", "pool", "store rows", "store"] {
            #expect(stages.first { $0.stage == stage }?.units == units, "\(stage)")
        }
        let tokens = stages.first { $0.stage == "tokenize" }?.tokens ?? 0
        #expect(tokens > 0 && stages.first { $0.stage == "encode" }?.tokens == tokens)
        let create = try #require(stages.first { $0.stage == "k-means + codec + index create" })
        let append = try #require(stages.first { $0.stage == "codec + index append" })
        #expect(create.units + append.units == units)
        #expect(stages.allSatisfy { Set(IndexStageBenchmark.streamedLanes + ["before"]).contains($0.lane) && $0.seconds >= 0 })
        #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent("stages").path))

        let cold = try IndexStageBenchmark.coldIndex(root: project.path, options: options, dataDirectory: base.appendingPathComponent("data"))
        #expect(cold.summary.added == 6 && cold.summary.unitsEncoded == units)
        #expect(cold.seconds > 0)
    }
}
