import CCUDA
import Foundation
import Testing
@testable import TensorCUDA

/// The on-disk side of cuBLASLt's timed choices (no GPU needed: the bytes, the keys, damaged and racing files).
/// Whether cuBLASLt accepts a stored algorithm is the GPU self-test's part (`CUDASelfTest.tunedAlgorithmChecks`).
@Suite struct BLASLtAlgorithmStoreTests {
    private func scratchStore() -> BLASLtAlgorithmStore {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-algo-tests-\(UUID().uuidString)")
        return BLASLtAlgorithmStore(cache: KernelCache(directory: url))
    }

    private func sampleKey(_ change: (inout BLASLtAlgorithmKey) -> Void = { _ in }) -> BLASLtAlgorithmKey {
        let device = BLASLtDeviceIdentity(name: "NVIDIA H200", architecture: "sm_90", driverVersion: 13000, blasLtVersion: 130001)
        let plan = BLASLtMatmul.PlanKey(m: 256, n: 40_000, k: 384, input: 14, output: 14, compute: 68, epilogue: 4)
        var key = BLASLtAlgorithmKey(shape: BLASLtTuning.key(plan, device: device), candidates: 8, workspaceBytes: 32 << 20)
        change(&key)
        return key
    }

    private let words: [UInt64] = [0x0123_4567_89ab_cdef, 1, 0, .max, 42, 7 << 40, 3, 0x8000_0000_0000_0001]

    @Test func storedChoiceLoadsBack() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        #expect(store.load(sampleKey()) == .miss)
        try store.store(words, for: sampleKey())
        #expect(store.load(sampleKey()) == .hit(words))
        #expect(store.cache.url(for: sampleKey()).lastPathComponent.hasPrefix("cublaslt-sm_90-"))
        #expect(sampleKey().shape.rowBucket == 65_536)
        // The payload is the 64 bytes, little-endian, whatever the host.
        #expect(BLASLtAlgorithmStore.encode([0x0102]).prefix(3) == [0x02, 0x01, 0x00])
    }

    @Test func algorithmBytesRoundTrip() {
        let algo = cublasLtMatmulAlgo_t(words: words)
        #expect(algo.words == words)
        #expect(algo.data.0 == words[0] && algo.data.7 == words[7])
        #expect(cublasLtMatmulAlgo_t().words == Array(repeating: 0, count: 8))
    }

    @Test func everyKeyComponentChangesTheFile() {
        let base = sampleKey().fileName
        let variants = [
            sampleKey { $0.shape.device.name = "NVIDIA H100 80GB HBM3" }, sampleKey { $0.shape.device.architecture = "sm_100" },
            sampleKey { $0.shape.device.driverVersion = 12080 }, sampleKey { $0.shape.device.blasLtVersion = 120901 },
            sampleKey { $0.candidates = 16 }, sampleKey { $0.workspaceBytes = 4 << 20 }, sampleKey { $0.shape.m = 384 },
            sampleKey { $0.shape.k = 256 }, sampleKey { $0.shape.rowBucket = 32_768 }, sampleKey { $0.shape.input = 0 },
            sampleKey { $0.shape.output = 0 }, sampleKey { $0.shape.compute = 77 }, sampleKey { $0.shape.epilogue = 36 },
        ]
        for variant in variants { #expect(variant.fileName != base) }
        #expect(Set(variants.map(\.fileName)).count == variants.count)
    }

    @Test func corruptEntryIsDiscardedAndRewritten() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        let key = sampleKey()
        try store.store(words, for: key)
        let url = store.cache.url(for: key)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[bytes.count - 3] ^= 0x40
        try Data(bytes).write(to: url)
        guard case .discarded(let reason) = store.load(key) else { Issue.record("corrupt entry was not discarded"); return }
        #expect(reason.contains("checksum"))
        #expect(!FileManager.default.fileExists(atPath: url.path))
        try store.store(words, for: key)
        #expect(store.load(key) == .hit(words))
    }

    @Test func truncatedEntryIsDiscarded() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        let key = sampleKey()
        try store.store(words, for: key)
        let full = try Data(contentsOf: store.cache.url(for: key))
        for cut in [1, 8, 40, full.count - 1] {
            try full.prefix(full.count - cut).write(to: store.cache.url(for: key))
            guard case .discarded(let reason) = store.load(key) else { Issue.record("file cut by \(cut) bytes was not discarded"); return }
            // Cut inside the magic bytes, the file is no cache file at all.
            #expect(reason.contains(cut == full.count - 1 ? "not a colgrep kernel cache file" : "truncated"))
            #expect(store.load(key) == .miss)
        }
    }

    @Test func otherKeyOrFormatVersionIsStale() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        let key = sampleKey()
        let payload = BLASLtAlgorithmStore.encode(words)
        // Written for another driver, or by an older format, under this key's file name.
        let foreign = [sampleKey { $0.shape.device.driverVersion = 12080 }.descriptor,
                       key.descriptor.replacingOccurrences(of: "v\(BLASLtAlgorithmKey.formatVersion)|", with: "v0|")]
        try FileManager.default.createDirectory(at: store.cache.directory, withIntermediateDirectories: true)
        for descriptor in foreign {
            #expect(descriptor != key.descriptor)
            try Data(KernelCache.encode(payload, descriptor: descriptor)).write(to: store.cache.url(for: key))
            guard case .discarded(let reason) = store.load(key) else { Issue.record("stale entry was not discarded"); return }
            #expect(reason.contains("stale"))
            #expect(store.load(key) == .miss)
        }
        // A kernel binary is not an algorithm even under the right descriptor: the payload's length tells.
        try Data(KernelCache.encode([1, 2, 3], descriptor: key.descriptor)).write(to: store.cache.url(for: key))
        guard case .discarded(let reason) = store.load(key) else { Issue.record("short payload was not discarded"); return }
        #expect(reason.contains("3 bytes"))
        #expect(!FileManager.default.fileExists(atPath: store.cache.url(for: key).path))
    }

    @Test func wrongWordCountIsRefused() {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        #expect(throws: CUDAError.self) { try store.store([1, 2, 3], for: sampleKey()) }
        #expect(store.load(sampleKey()) == .miss)
    }

    @Test func concurrentWritersLeaveOneWholeEntry() throws {
        let store = scratchStore()
        defer { try? FileManager.default.removeItem(at: store.cache.directory) }
        let key = sampleKey()
        let choices = (0..<6).map { i in (0..<8).map { UInt64(i * 100 + $0) } }
        DispatchQueue.concurrentPerform(iterations: 48) { i in
            try? store.store(choices[i % choices.count], for: key)
            switch store.load(key) {
            case .hit(let words): if !choices.contains(words) { Issue.record("a reader saw words nobody wrote") }
            case .discarded(let reason): Issue.record("a reader saw a partial entry: \(reason)")
            case .miss: Issue.record("a reader found no entry after a write")
            }
        }
        guard case .hit(let words) = store.load(key) else { Issue.record("no entry after concurrent writes"); return }
        #expect(choices.contains(words))
        let files = try FileManager.default.contentsOfDirectory(atPath: store.cache.directory.path)
        #expect(files == [key.fileName])
    }

    @Test func processRegistryCountsTimedAndLoadedChoices() {
        let registry = BLASLtTunedAlgorithms()
        let timed = sampleKey().shape, loaded = sampleKey { $0.shape.rowBucket = 32_768 }.shape
        registry.record(cublasLtMatmulAlgo_t(words: words), for: timed, milliseconds: [0.5, 0.25], chosen: 1)
        registry.recordLoaded(cublasLtMatmulAlgo_t(words: words.reversed()), for: loaded)
        registry.recordLoaded(cublasLtMatmulAlgo_t(), for: timed)  // the first choice of a key stays
        registry.note("discarded x: truncated")
        #expect(registry.counts == (timed: 1, loaded: 1))
        #expect(registry.algorithm(for: timed)?.words == words)
        #expect(registry.algorithm(for: loaded)?.words == words.reversed())
        #expect(registry.summary == ["65536x256x384 epilogue 4: 0.500 [0.250] ms", "32768x256x384 epilogue 4: from the kernel cache",
                                     "discarded x: truncated"])
    }
}
