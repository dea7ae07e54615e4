import Foundation
import Testing
import Tensor
@testable import Encoder

/// BERT's fused Q/K/V projections are kept in a cache folder: a later load maps them (no copy) and
/// computes bit for bit what a load without the cache computes; a damaged, foreign or stale file is a miss
/// that is rebuilt and rewritten.
@Suite struct FusedWeightCacheTests {
    let backend = CPUBackend(threads: 1, precision: .fp32)
    let batch = PackedBatch(sequences: [[101, 7592, 2088, 2007, 2067, 102], [101, 3231, 102]])

    func forward(_ cache: FusedWeightCache?) throws -> (bits: [UInt32], borrowedQKV: Bool) {
        let config = try TransformerConfig(contentsOf: Fixtures.miniLM.appending(path: "config.json"))
        let weights = try SafeTensorsFile(url: Fixtures.miniLM.appending(path: "model.safetensors"))
        let bert = try BERT(config: config, weights: weights, backend: backend, weightCache: cache)
        let out = try backend.download(bert.forward(batch))
        let borrowed = bert.layers.allSatisfy { ($0.qkv as? CPUMatrix)?.isBorrowed == true && ($0.qkvBias as? CPUMatrix)?.isBorrowed == true }
        return (out.values.map(\.bitPattern), borrowed)
    }

    @Test func aCachedLoadMapsTheFusedWeightsAndEncodesTheSame() throws {
        guard Fixtures.hasMiniLM else { Issue.record("MiniLM missing: run scripts/setup.sh"); return }
        let folder = FileManager.default.temporaryDirectory.appending(path: "fused-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = FusedWeightCache(directory: folder)

        let reference = try forward(nil)
        #expect(!reference.borrowedQKV)
        let miss = try forward(cache)
        #expect(miss.bits == reference.bits && !miss.borrowedQKV)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".weights") }
        #expect(files.count == 12, "\(files)")   // 6 layers × (weights, biases)
        let hit = try forward(cache)
        #expect(hit.bits == reference.bits && hit.borrowedQKV)

        // Damaged files (cut short, a flipped header byte) are misses, rebuilt and rewritten.
        let cut = folder.appending(path: files[0]), flipped = folder.appending(path: files[1])
        let good = (try Data(contentsOf: cut), try Data(contentsOf: flipped))
        try good.0.prefix(good.0.count - 4).write(to: cut)
        var bad = good.1
        bad[9] ^= 0xFF
        try bad.write(to: flipped)
        let repaired = try forward(cache)
        #expect(repaired.bits == reference.bits && !repaired.borrowedQKV)
        #expect(try Data(contentsOf: cut) == good.0 && Data(contentsOf: flipped) == good.1)
        #expect(try forward(cache).borrowedQKV)
    }

    @Test func theKeyFollowsTheModelFileAndTheTensors() throws {
        let url = FileManager.default.temporaryDirectory.appending(path: "model-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(repeating: 1, count: 64).write(to: url)
        let first = try #require(FusedWeightCache.Key(model: url, names: ["a", "b"], count: 8))
        #expect(FusedWeightCache.Key(model: url, names: ["a", "b"], count: 8) == first)
        #expect(FusedWeightCache.Key(model: url, names: ["a", "c"], count: 8) != first)
        #expect(FusedWeightCache.Key(model: url, names: ["a", "b"], count: 9) != first)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: url.path)
        #expect(FusedWeightCache.Key(model: url, names: ["a", "b"], count: 8) != first, "an edited model file is a miss")
        #expect(FusedWeightCache.Key(model: url.appending(path: "missing"), names: ["a"], count: 1) == nil)
        // An unwritable folder only costs the speed-up.
        let cache = FusedWeightCache(directory: URL(fileURLWithPath: "/proc/colgrep-no-such-folder"))
        [Float(1), 2].withUnsafeBufferPointer { cache.store($0, for: first) }
        #expect(cache.load(first) == nil)
        #expect(FusedWeightCache.standard(environment: ["COLGREP_WEIGHT_CACHE": "off", "HOME": "/tmp"]) == nil)
        #expect(FusedWeightCache.standard(environment: ["XDG_CACHE_HOME": "/x"])?.directory.path == "/x/colgrep/weights")
    }
}
