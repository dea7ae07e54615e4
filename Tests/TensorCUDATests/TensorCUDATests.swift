import Foundation
import Tensor
import Testing
@testable import TensorCUDA

/// A scratch directory removed when the test ends.
private func scratchDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-cuda-tests-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func sampleKey(_ change: (inout KernelCacheKey) -> Void = { _ in }) -> KernelCacheKey {
    var key = KernelCacheKey(module: "core", source: "__global__ void f() {}", architecture: "sm_90",
                             driverVersion: 13000, compilerVersion: "13.0", options: ["-DCG_BF16=1"])
    change(&key)
    return key
}

@Suite struct KernelCacheTests {
    @Test func storedBinaryLoadsBack() throws {
        let cache = KernelCache(directory: scratchDirectory())
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        #expect(cache.load(sampleKey()) == .miss)
        try cache.store([1, 2, 3, 250], for: sampleKey())
        #expect(cache.load(sampleKey()) == .hit([1, 2, 3, 250]))
    }

    @Test func everyKeyComponentChangesTheFile() {
        let base = sampleKey().fileName
        let variants = [
            sampleKey { $0.source += " " }, sampleKey { $0.architecture = "sm_80" }, sampleKey { $0.driverVersion = 12080 },
            sampleKey { $0.compilerVersion = "12.8" }, sampleKey { $0.options = ["-DCG_BF16=0"] }, sampleKey { $0.module = "attention-64" },
        ]
        for variant in variants { #expect(variant.fileName != base) }
        #expect(Set(variants.map(\.fileName)).count == variants.count)
    }

    @Test func corruptEntryIsDiscardedAndRebuilt() throws {
        let cache = KernelCache(directory: scratchDirectory())
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        let key = sampleKey()
        try cache.store(Array(repeating: 7, count: 100), for: key)
        var bytes = [UInt8](try Data(contentsOf: cache.url(for: key)))
        bytes[bytes.count - 10] ^= 0xff
        try Data(bytes).write(to: cache.url(for: key))
        guard case .discarded(let reason) = cache.load(key) else { Issue.record("corrupt entry was not discarded"); return }
        #expect(reason.contains("checksum"))
        #expect(!FileManager.default.fileExists(atPath: cache.url(for: key).path))
        try cache.store(Array(repeating: 7, count: 100), for: key)
        #expect(cache.load(key) == .hit(Array(repeating: 7, count: 100)))
    }

    @Test func truncatedAndForeignFilesAreDiscarded() throws {
        let cache = KernelCache(directory: scratchDirectory())
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        let key = sampleKey()
        try cache.store(Array(repeating: 9, count: 64), for: key)
        let full = try Data(contentsOf: cache.url(for: key))
        try full.prefix(full.count - 5).write(to: cache.url(for: key))
        #expect(cache.load(key) != .miss && cache.load(key) == .miss)  // first call discards, second finds nothing
        // A file written for another key under this key's name (a hash collision or a stale rename).
        let other = KernelCache.encode([1, 2], descriptor: sampleKey { $0.architecture = "sm_80" }.descriptor)
        try Data(other).write(to: cache.url(for: key))
        guard case .discarded(let reason) = cache.load(key) else { Issue.record("stale entry was not discarded"); return }
        #expect(reason.contains("stale"))
        try Data("garbage".utf8).write(to: cache.url(for: key))
        guard case .discarded = cache.load(key) else { Issue.record("garbage was not discarded"); return }
    }

    @Test func concurrentWritersLeaveOneWholeEntry() throws {
        let cache = KernelCache(directory: scratchDirectory())
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        let key = sampleKey()
        let payloads = (0..<8).map { i in [UInt8](repeating: UInt8(i), count: 200_000) }
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            try? cache.store(payloads[i % 8], for: key)
            if case .discarded = cache.load(key) { Issue.record("a reader saw a partial entry") }
        }
        guard case .hit(let binary) = cache.load(key) else { Issue.record("no entry after concurrent writes"); return }
        #expect(payloads.contains(binary))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: cache.directory.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func unwritableDirectoryIsAClearError() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let blocker = parent.appendingPathComponent("kernels")
        try Data("not a directory".utf8).write(to: blocker)
        let cache = KernelCache(directory: blocker)
        #expect(throws: (any Error).self) { try cache.store([1], for: sampleKey()) }
        #expect(cache.load(sampleKey()) == .miss)
    }

    @Test func defaultDirectoryFollowsXDG() {
        #expect(KernelCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/cache"]).path == "/x/cache/colgrep/kernels")
        #expect(KernelCache.defaultDirectory(environment: ["HOME": "/home/u"]).path == "/home/u/.cache/colgrep/kernels")
    }
}

/// An allocator that hands out fake addresses and can be told to run out of memory.
private final class FakeAllocator: DeviceAllocator {
    var next: UInt64 = 0x1000
    var live: [UInt64: Int] = [:]
    var limit = Int.max
    func allocate(bytes: Int) throws -> UInt64 {
        guard live.values.reduce(0, +) + bytes <= limit else {
            throw CUDAError.outOfMemory(requestedBytes: bytes, freeBytes: 0, totalBytes: limit, hint: "")
        }
        defer { next += UInt64(bytes) }
        live[next] = bytes
        return next
    }
    func free(_ pointer: UInt64) { live[pointer] = nil }
    func memoryInfo() -> (free: Int, total: Int) { (limit - live.values.reduce(0, +), limit) }
}

@Suite struct DeviceMemoryPoolTests {
    @Test func sizeClassesCoverRequestsWithBoundedWaste() {
        for request in [1, 511, 512, 513, 4096, 1 << 20, (1 << 20) + 1, 3_000_000, 1 << 30, (1 << 30) + 12345] {
            let size = DeviceMemoryPool.sizeClass(request)
            #expect(size >= request)
            #expect(Double(size) <= Double(request) * 1.25 + 512)
        }
    }

    @Test func releasedBlocksAreReused() throws {
        let allocator = FakeAllocator()
        let pool = DeviceMemoryPool(allocator: allocator)
        let first = try pool.allocate(bytes: 3_000_000)
        pool.release(first)
        let second = try pool.allocate(bytes: 2_900_000)  // same size class
        #expect(second == first)
        #expect(pool.allocationCount == 1)
    }

    @Test func outOfMemoryTrimsTheCacheAndRetries() throws {
        let allocator = FakeAllocator()
        allocator.limit = 4 << 20
        let pool = DeviceMemoryPool(allocator: allocator)
        pool.release(try pool.allocate(bytes: 3 << 20))
        let block = try pool.allocate(bytes: 2 << 20)  // needs the cached 3 MiB returned first
        #expect(block.capacity >= 2 << 20)
        #expect(pool.cachedBytes == 0)
        #expect(throws: CUDAError.self) { try pool.allocate(bytes: 3 << 20) }
    }
}

@Suite struct CUDAAvailabilityTests {
    @Test func missingLibraryNamesItselfAndTheFix() {
        #expect {
            try CUDALibraries.open(names: ["libcolgrep-no-such-cuda.so.1"], directories: "/nonexistent-dir", what: "CUDA driver", fix: "set COLGREP_CUDA_LIBRARY_PATH")
        } throws: { error in
            "\(error)".contains("libcolgrep-no-such-cuda.so.1") && "\(error)".contains("COLGREP_CUDA_LIBRARY_PATH")
        }
    }

    @Test func searchPathHonoursEnvironment() {
        let directories = CUDALibraries.searchDirectories(environment: ["COLGREP_CUDA_LIBRARY_PATH": "/a:/b", "CUDA_HOME": "/opt/cuda"])
        #expect(Array(directories.prefix(3)) == ["/a", "/b", "/opt/cuda/lib64"])
    }

    @Test func deviceConnectionsAreOursOnlyWhereTheUserSetNone() {
        #expect(CUDALibraries.deviceConnectionsSetting(environment: [:]) == String(CUDALibraries.defaultDeviceConnections))
        #expect(CUDALibraries.deviceConnectionsSetting(environment: ["CUDA_DEVICE_MAX_CONNECTIONS": "8"]) == nil)
        #expect((1...32).contains(CUDALibraries.defaultDeviceConnections))
    }

    @Test func unavailableGPUIsAnErrorNotACrash() {
        let availability = CUDABackend.availability
        if availability.isAvailable {
            #expect(availability.description.hasPrefix("GPU available: "))
        } else {
            #expect(availability.description.hasPrefix("GPU unavailable: "))
            #expect(throws: CUDAError.self) { try CUDABackend() }
        }
    }
}

@Suite struct CUDAOperationTests {
    @Test(.enabled(if: CUDABackend.availability.isAvailable, "\(CUDABackend.availability) — GPU checks skipped"),
          arguments: CUDAPrecision.allCases)
    func everyOperationMatchesTheReference(precision: CUDAPrecision) throws {
        let cache = KernelCache(directory: scratchDirectory())
        defer { try? FileManager.default.removeItem(at: cache.directory) }
        for check in try CUDASelfTest.run(precision: precision, kernelCache: cache) {
            #expect(check.passed, "\(check)")
        }
    }

    @Test func referenceHelpersAreSane() {
        // Guards the self-test itself: a wrong reference would let wrong kernels pass.
        #expect(CUDASelfTest.relativeError([1, 2], [1, 2]) == 0)
        #expect(CUDASelfTest.relativeError([1, 2], [1]) == .infinity)
        #expect(abs(CUDASelfTest.gelu(1) - 0.8413447460685429) < 1e-12)
        #expect(CUDASelfTest.roundToBF16(1.00390625) == 1.0)  // halfway rounds to even
        let batch = PackedBatch(sequences: [[1, 2], [3]])
        let qkv = HostMatrix(rows: 3, cols: 6, values: (0..<18).map { Float($0 % 5) / 5 })
        let out = CUDASelfTest.referenceAttention(qkv, batch: batch, heads: 1, headDim: 2, rotary: nil, window: nil)
        // A sequence of one token attends only to itself: its output is its own value vector.
        #expect(out[4] == Double(qkv.values[2 * 6 + 4]) && out[5] == Double(qkv.values[2 * 6 + 5]))
    }
}

@Suite struct KernelSourcePortabilityTests {
    /// Every `asm` statement sits between a "BEGIN …" and "END …" marker line, so a HIP port swaps
    /// only those blocks (issue #7: the HIP-portable subset, inline PTX in marked, replaceable spots).
    static func unmarkedInlineAssembly(_ source: String) -> [String] {
        var inside = false
        var found: [String] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.contains("---- BEGIN ") { inside = true }
            if line.contains("---- END ") { inside = false }
            if line.contains("asm") && line.contains("(") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") && !inside {
                found.append(String(line))
            }
        }
        return found
    }

    @Test func inlinePTXOnlyInMarkedSpots() {
        for (name, source) in [("core", KernelSource.core), ("attention", KernelSource.attentionTensorCore), ("attention-scalar", KernelSource.attentionScalar), ("kmeans", KernelSource.kmeans), ("gemm", KernelSource.gemm),
                              ("gemm-wgmma", KernelSource.gemmWarpgroup), ("kmeans-wgmma", KernelSource.kmeansWarpgroup)] {
            #expect(Self.unmarkedInlineAssembly(source).isEmpty, "\(name): \(Self.unmarkedInlineAssembly(source))")
        }
        // The check itself finds an unmarked statement.
        #expect(Self.unmarkedInlineAssembly("x;\n    asm volatile(\"bar.sync 0;\");\n").count == 1)
        #expect(Self.unmarkedInlineAssembly("// ---- BEGIN X ----\nasm volatile(\"nop;\");\n// ---- END X ----\n").isEmpty)
    }
}

@Suite struct AttentionKernelShapeTests {
    @Test func environmentOverridesTheDefault() {
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: [:]) == .standard(headDim: 64))
        // Asynchronous copies by default for head dimension 32 only (measured, session 12), in place of the
        // register-pipelined kernel; neither for 64.
        #expect(AttentionKernelShape.chosen(headDim: 32, environment: [:]).asynchronous)
        #expect(!AttentionKernelShape.chosen(headDim: 32, environment: [:]).pipelined)
        #expect(!AttentionKernelShape.chosen(headDim: 64, environment: [:]).pipelined)
        #expect(!AttentionKernelShape.chosen(headDim: 64, environment: [:]).asynchronous)
        // Asking for the pipelined kernel gets it (without the asynchronous copies).
        let pipelined = AttentionKernelShape.chosen(headDim: 32, environment: ["COLGREP_ATTENTION_PIPELINE": "1"])
        #expect(pipelined.pipelined && !pipelined.asynchronous && pipelined.minBlocks == 3)
        #expect(!AttentionKernelShape.chosen(headDim: 32, environment: ["COLGREP_ATTENTION_PIPELINE": "0"]).pipelined)
        // 64-row query tiles by default; the branch-free interior path for head dim 32 only (measured, session 11).
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: [:]).queryTileRows == 64)
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: [:]).compilerOptions
                == ["-DCG_ATT_PIPE=0", "-DCG_ATT_MT=1", "-DCG_ATT_BRANCHFREE=0", "-DCG_ATT_MINB=4", "-ftz=true"])
        #expect(AttentionKernelShape.chosen(headDim: 32, environment: [:]).compilerOptions
                == ["-DCG_ATT_PIPE=0", "-DCG_ATT_MT=1", "-DCG_ATT_BRANCHFREE=1", "-DCG_ATT_MINB=4", "-DCG_ATT_ASYNC=1", "-ftz=true"])
        let wide = AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_WARP_ROWS": "32", "COLGREP_ATTENTION_BRANCHFREE": "1"])
        #expect(wide.queryTileRows == 128 && wide.branchFree && wide.minBlocks == 2)
        let plain = AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_PIPELINE": "0", "COLGREP_ATTENTION_MIN_BLOCKS": "3"])
        #expect(!plain.pipelined && plain.minBlocks == 3 && plain.rowTilesPerWarp == 1)
        #expect(AttentionKernelShape.chosen(headDim: 32, environment: ["COLGREP_ATTENTION_BRANCHFREE": "0"]).minBlocks == 5)
        #expect(AttentionKernelShape.chosen(headDim: 32, environment: ["COLGREP_ATTENTION_ASYNC": "0"]) == .standard(headDim: 32, asynchronous: false))
        #expect(AttentionKernelShape.chosen(headDim: 32, environment: ["COLGREP_ATTENTION_ASYNC": "0"]).pipelined)
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_WARP_ROWS": "24"]) == .standard(headDim: 64))
        #expect(!AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_FTZ": "0"]).compilerOptions.contains("-ftz=true"))
        // Out-of-range or malformed values leave the default.
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_MIN_BLOCKS": "99"]).minBlocks
                == AttentionKernelShape.standard(headDim: 64).minBlocks)
        #expect(AttentionKernelShape.chosen(headDim: 64, environment: ["COLGREP_ATTENTION_PIPELINE": "x"]) == .standard(headDim: 64))
    }

    @Test func oneKindOfLayerAlone() {
        // A global or a sliding-window layer's own variable wins over the one for both; the other kind keeps the rest.
        let environment = ["COLGREP_ATTENTION_GLOBAL_WARP_ROWS": "32", "COLGREP_ATTENTION_WARP_ROWS": "16", "COLGREP_ATTENTION_LOCAL_ASYNC": "1"]
        let global = AttentionKernelShape.chosen(headDim: 64, windowed: false, environment: environment)
        let local = AttentionKernelShape.chosen(headDim: 64, windowed: true, environment: environment)
        #expect(global.queryTileRows == 128 && !global.asynchronous)
        #expect(local.queryTileRows == 64 && local.asynchronous && !local.pipelined)
        #expect(AttentionKernelShape.chosen(headDim: 64, windowed: true, environment: [:]) == AttentionKernelShape.chosen(headDim: 64, windowed: false, environment: [:]))
    }
}

@Suite struct BLASLtTuningTests {
    @Test func choicesAreSharedWithinAPowerOfTwoRowBucket() {
        func key(_ n: Int, m: Int = 256, k: Int = 384, gpu: String = "NVIDIA H100 80GB HBM3") -> BLASLtTuning.Key {
            BLASLtTuning.key(BLASLtMatmul.PlanKey(m: m, n: n, k: k, input: 14, output: 14, compute: 68, epilogue: 1),
                             device: BLASLtDeviceIdentity(name: gpu, architecture: "sm_90", driverVersion: 13000, blasLtVersion: 130001))
        }
        #expect(key(65_536) == key(40_000))
        #expect(key(16_384).rowBucket == 16_384 && key(16_385).rowBucket == 32_768)
        // Two kinds of GPU in one process keep a choice each.
        #expect(key(65_536) != key(65_536, gpu: "NVIDIA H200"))
        #expect(key(65_536) != key(32_768))
        #expect(key(65_536).rowBucket == 65_536 && key(32_769).rowBucket == 65_536)
        #expect(key(65_536) != key(65_536, m: 768, k: 256))
        // On by default with 8 candidates; 1 turns it off.
        #expect(BLASLtTuning.defaultCandidates == 8 && BLASLtTuning(candidates: 8).enabled && !BLASLtTuning(candidates: 1).enabled)
    }
}

@Suite struct MatmulEngineTests {
    @Test func ownKernelRunsUntilCuBLASLtIsReady() {
        let automatic = MatmulEngine.automatic
        #expect(automatic.usesOwnKernel(precision: .bf16, rows: 5824, inFeatures: 256, cuBLASLtReady: false))
        #expect(!automatic.usesOwnKernel(precision: .bf16, rows: 5824, inFeatures: 256, cuBLASLtReady: true))
        // Forced engines ignore readiness.
        #expect(MatmulEngine.own.usesOwnKernel(precision: .bf16, rows: 5824, inFeatures: 256, cuBLASLtReady: true))
        #expect(!MatmulEngine.cuBLASLt.usesOwnKernel(precision: .bf16, rows: 5824, inFeatures: 256, cuBLASLtReady: false))
    }

    @Test func ownKernelOnlyWhereItApplies() {
        // fp32 (the checking mode) always goes to cuBLASLt; the kernel reads whole 16-byte rows.
        #expect(!MatmulEngine.own.usesOwnKernel(precision: .fp32, rows: 10, inFeatures: 256, cuBLASLtReady: false))
        #expect(!MatmulEngine.own.usesOwnKernel(precision: .bf16, rows: 10, inFeatures: 20, cuBLASLtReady: false))
        #expect(!MatmulEngine.own.usesOwnKernel(precision: .bf16, rows: 10, inFeatures: 0, cuBLASLtReady: false))
        #expect(MatmulEngine.own.usesOwnKernel(precision: .bf16, rows: MatmulEngine.ownKernelMaxRows, inFeatures: 8, cuBLASLtReady: false))
        #expect(!MatmulEngine.own.usesOwnKernel(precision: .bf16, rows: MatmulEngine.ownKernelMaxRows + 1, inFeatures: 8, cuBLASLtReady: false))
    }

    @Test func namesParseAsTheEnvironmentSpellsThem() {
        #expect(MatmulEngine(rawValue: "cublaslt") == .cuBLASLt)
        #expect(MatmulEngine(rawValue: "own") == .own)
        #expect(MatmulEngine(rawValue: "automatic") == .automatic)
        #expect(MatmulEngine(rawValue: "fast") == nil)
    }

    @Test func gemmTileMatchesTheKernelSource() {
        // The launch grid is computed from gemmTile; the kernel's tile is fixed by its #defines.
        #expect(KernelSource.gemm.contains("#define GM_BM \(KernelSource.gemmTile.rows)\n"))
        #expect(KernelSource.gemm.contains("#define GM_BN \(KernelSource.gemmTile.cols)\n"))
        #expect(KernelSource.gemm.contains("void __launch_bounds__(128) \(KernelSource.gemmKernel)("))
    }
}
