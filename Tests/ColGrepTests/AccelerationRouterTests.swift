import Encoder
import Foundation
import Tensor
import Testing
import TensorCUDA
@testable import ColGrep

/// Real encoders on CPU backends standing in for GPUs: the model's own vectors must not depend on
/// which device encoded a sequence or how the queue split the work.
@Suite struct AccelerationRouterTests {
    /// A tiny random ModernBERT + Dense head in the real file layout.
    static let model: URL = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-model-\(getpid())")
        var shape = SyntheticModel.ModernBERTShape()
        shape.vocab = 500
        shape.hidden = 32
        shape.intermediate = 48
        shape.layers = 2
        shape.heads = 2
        shape.localWindow = 16
        shape.head = [24, 8]
        try! SyntheticModel.writeModernBERT(shape, to: directory, seed: 42)
        return directory
    }()

    static func sequences(_ count: Int, seed: UInt64) -> [[Int32]] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in (0..<(Int(rng.next() % 40) + 2)).map { _ in Int32(rng.next() % 500) } }
    }

    static func maxDifference(_ a: [HostMatrix], _ b: [HostMatrix]) -> Float {
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            guard x.rows == y.rows, x.cols == y.cols else { return .infinity }
            for (p, q) in zip(x.values, y.values) { worst = max(worst, abs(p - q)) }
        }
        return a.count == b.count ? worst : .infinity
    }

    @Test func theSplitAcrossRealDevicesNeverChangesTheVectors() throws {
        let items = Self.sequences(90, seed: 3)
        let skip: Set<Int32> = [7, 11]
        let reference = BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: Self.model, skipIDs: skip)
        try reference.prepare()
        let expected = try reference.encode(items)
        // Three devices, two of them taking the long end as GPUs would, with different budgets.
        let lanes: [EncodeLane<[Int32], HostMatrix>] = [
            EncodeLane(device: BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: Self.model, skipIDs: skip), end: .longest, tokenBudget: 300),
            EncodeLane(device: BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: Self.model, skipIDs: skip), end: .longest, tokenBudget: 120),
            EncodeLane(device: BackendEncodeDevice(processor: .cpu(threads: 2), modelDirectory: Self.model, skipIDs: skip), end: .shortest, tokenBudget: 50),
        ]
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(items, length: \.count)
        #expect(result.devices.reduce(0) { $0 + $1.sequences } == 90)
        #expect(Self.maxDifference(result.outputs, expected) < 1e-4)
        // Skiplist rows are gone and nothing else: rows = tokens not in the skiplist.
        #expect(zip(result.outputs, items).allSatisfy { $0.rows == $1.filter { !skip.contains($0) }.count })
    }

    func options(_ mode: AccelerationMode, cache: URL) -> EncodeRouter.Options {
        EncodeRouter.Options(mode: mode, modelDirectory: Self.model, skipIDs: [], hostThreads: 2,
                             costModels: CostModelStore(directory: cache.appendingPathComponent("costmodel")),
                             environment: [:])
    }

    private let noGPU = GPUInventory(ordinals: [], description: nil, unavailableReason: "libcuda.so.1: cannot open shared object file")

    @Test func autoWithoutAGPURunsOnTheCPUWithoutCalibratingAndProfilesTheDecision() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let items = Self.sequences(30, seed: 5)
        let profiler = Profiler(enabled: true)
        let router = EncodeRouter(options: options(.auto, cache: cache), profiler: profiler, gpus: noGPU)
        let plan = try router.prepare(work: WorkSize(tokens: 50_000_000, sequences: 200_000))
        #expect(plan.choice == .cpu)
        #expect(plan.reason.contains("libcuda.so.1"))
        let vectors = try router.encodeDocuments(items)
        router.finish()
        #expect(vectors.count == 30)
        let notes = profiler.recordedNotes()
        #expect(!notes.contains { $0.hasPrefix("cost model: calibrated") })
        #expect(notes.contains { $0.hasPrefix("routing: cpu") })
        #expect(notes.contains { $0.hasPrefix("routing actual:") && $0.contains("cpu:") })
        #expect(profiler.snapshot().contains { $0.stage == "encode" && $0.device == "cpu" && $0.tokens > 0 })
    }

    /// An inventory that claims a GPU where CUDA cannot open: what auto meets when a driver breaks.
    private let brokenGPU = GPUInventory(ordinals: [0], description: "claimed GPU (sm_90)", unavailableReason: nil)

    @Test func withAGPUAutoCalibratesTheCPUOnceAndNeverFailsBecauseOfTheGPU() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let items = Self.sequences(400, seed: 6)
        let tokens = items.reduce(0) { $0 + $1.count }
        #expect(tokens > Calibrator.cpu.totalTokens)
        let first = Profiler(enabled: true)
        let router = EncodeRouter(options: options(.auto, cache: cache), profiler: first, gpus: brokenGPU) { _ in }
        _ = try router.encodeDocuments(items)
        router.finish()
        #expect(first.recordedNotes().contains { $0.hasPrefix("cost model: calibrated the CPU") })
        let again = Profiler(enabled: true)
        let second = EncodeRouter(options: options(.auto, cache: cache), profiler: again, gpus: brokenGPU) { _ in }
        _ = try second.encodeDocuments(items)
        second.finish()
        #expect(!again.recordedNotes().contains { $0.hasPrefix("cost model: calibrated") })
        #expect(second.costModel != nil)
        // A tiny run on a machine with no stored model never calibrates and stays on the CPU.
        let tiny = EncodeRouter(options: options(.auto, cache: cache.appendingPathComponent("other")), profiler: Profiler(enabled: false), gpus: brokenGPU)
        #expect(try tiny.prepare(work: WorkSize(tokens: 100, sequences: 3)).choice == .cpu)
        tiny.finish()
    }

    @Test func autoFallsBackToTheCPUWhenThePlannedGPUFailsAndSaysSoOnce() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let options = options(.auto, cache: cache)
        // Stored figures that make the GPU look far faster, so the planner picks it.
        let key = CostModelKey(machine: MachineIdentity.current(), gpu: brokenGPU.description!,
                               model: MachineIdentity.model(at: Self.model), engine: ColGrepVersion.string)
        let gpu = GPUCostModel(device: "cuda:0", name: "claimed", contextSeconds: 0.01, kernelCompileSeconds: 0.01, kernelCacheLoadSeconds: 0.01,
                               weightUploadSeconds: 0.01, tokenBudget: 65536, cost: DeviceCost(coldStartSeconds: 0.03, perBatchSeconds: 0, perTokenSeconds: 1e-9))
        let cpu = CPUCostModel(threads: 2, tokenBudget: 4096, cost: DeviceCost(coldStartSeconds: 0.1, perBatchSeconds: 0.01, perTokenSeconds: 1e-3))
        try options.costModels.save(CostModel(key: key, cpu: cpu, gpus: [gpu], calibrationSeconds: 0))
        let said = LockedValue<[String]>([])
        let router = EncodeRouter(options: options, profiler: Profiler(enabled: false), gpus: brokenGPU) { line in said.withLock { $0.append(line) } }
        let items = Self.sequences(60, seed: 8)
        let plan = try router.prepare(work: WorkSize(tokens: items.reduce(0) { $0 + $1.count }, sequences: items.count))
        #expect(plan.choice != .cpu)
        let vectors = try router.encodeDocuments(items)
        router.finish()
        let reference = BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: Self.model, skipIDs: [])
        try reference.prepare()
        #expect(Self.maxDifference(vectors, try reference.encode(items)) < 1e-4)
        // The notice is process-wide and printed at most once; this router's GPU failure is its cause
        // unless another test in this process already reported one.
        #expect(said.withLock { $0.count } <= 1)
        #expect(said.withLock { $0.allSatisfy { $0.contains("cuda:0") && $0.contains("continuing on the CPU") } })
    }

    @Test func forceGPUWithoutAGPUFailsWithTheCause() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let router = EncodeRouter(options: options(.forceGPU, cache: cache), profiler: Profiler(enabled: false), gpus: noGPU)
        #expect(throws: ColGrepError.gpuUnavailable("libcuda.so.1: cannot open shared object file")) {
            try router.encodeDocuments(Self.sequences(3, seed: 1))
        }
        #expect(throws: ColGrepError.self) { try router.computeBackend() }
    }

    /// The router's GPU lanes (two per GPU by default) under `--force-gpu`: a GPU that cannot open fails the
    /// run with an error naming the device (not one of its lanes) and the cause; no CPU fallback.
    @Test func forceGPUWithLanesNamesTheDeviceThatFailed() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let profiler = Profiler(enabled: true)
        let router = EncodeRouter(options: options(.forceGPU, cache: cache), profiler: profiler, gpus: brokenGPU) { _ in }
        do {
            _ = try router.encodeDocuments(Self.sequences(20, seed: 4))
            Issue.record("expected --force-gpu to fail on a GPU that cannot open")
        } catch let ColGrepError.gpuUnavailable(message) {
            #expect(message.contains("encoding failed on cuda:0:"))
            #expect(!message.contains("cuda:0/"))
            #expect(message.contains("never falls back to the CPU"))
        }
        #expect(profiler.recordedNotes().contains { $0.contains("GPU lanes: 2 per GPU") })
        router.finish()
    }

    @Test func forceCPUNeverCalibratesAndNeverOffersAGPUBackend() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let profiler = Profiler(enabled: true)
        let router = EncodeRouter(options: options(.forceCPU, cache: cache), profiler: profiler)
        let vectors = try router.encodeDocuments(Self.sequences(5, seed: 2))
        router.finish()
        #expect(vectors.count == 5)
        #expect(router.plan?.choice == .cpu)
        #expect(try router.computeBackend() == nil)
        #expect(!profiler.recordedNotes().contains { $0.hasPrefix("cost model: calibrated") })
    }

    @Test func aOneShotQueryStaysOnTheCPU() {
        let cpu = CPUCostModel(threads: 16, tokenBudget: 4096, cost: DeviceCost(coldStartSeconds: 0.2, perBatchSeconds: 0.001, perTokenSeconds: 2e-5))
        let gpu = GPUCostModel(device: "cuda:0", name: "H100", contextSeconds: 0.5, kernelCompileSeconds: 6, kernelCacheLoadSeconds: 0.05,
                               weightUploadSeconds: 0.1, tokenBudget: 65536, cost: DeviceCost(coldStartSeconds: 0.65, perBatchSeconds: 0.004, perTokenSeconds: 2e-7))
        let model = CostModel(key: CostModelKey(machine: "m", gpu: "H100", model: "x", engine: "0"), cpu: cpu, gpus: [gpu], calibrationSeconds: 0.1)
        let oneGPU = GPUInventory(ordinals: [0], description: "H100 (sm_90)", unavailableReason: nil)
        #expect(EncodeRouter.queryChoice(mode: .auto, queryTokens: 32, costModel: model, gpus: oneGPU, kernelsCached: true, hostThreads: 16) == .cpu)
        #expect(EncodeRouter.queryChoice(mode: .auto, queryTokens: 32, costModel: nil, gpus: oneGPU, kernelsCached: true, hostThreads: 16) == .cpu)
        #expect(EncodeRouter.queryChoice(mode: .forceGPU, queryTokens: 32, costModel: model, gpus: oneGPU, kernelsCached: true, hostThreads: 16) == .gpu)
    }

    @Test func theFallbackNoticeIsPrintedOnce() {
        let lines = LockedValue<[String]>([])
        // Other tests may have used the process-wide notice already; what matters is "at most once".
        for _ in 0..<3 { GPUFallbackNotice.report("GPU cuda:0 failed") { line in lines.withLock { $0.append(line) } } }
        #expect(lines.withLock { $0.count } <= 1)
    }

    /// The planner's "kernels cached" must find the files the kernel cache writes for every module an
    /// encoder loads (it once looked for a module name that no longer existed: every run planned a compile).
    @Test func kernelsLookCachedFindsTheFilesTheKernelCacheWrites() throws {
        let inventory = GPUInventory(ordinals: [0], description: "NVIDIA H200 (sm_90), driver 13.0, NVRTC 13.0", unavailableReason: nil)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-kernels-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ module: String, architecture: String = "sm_90") throws {
            let key = KernelCacheKey(module: module, source: "src", architecture: architecture, driverVersion: 13000,
                                     compilerVersion: "13.0", options: ["-DCG_BF16=1"])
            try Data([1]).write(to: directory.appendingPathComponent(key.fileName))
        }
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 64))
        try write(EncoderKernelModules.core)
        try write(EncoderKernelModules.attention(headDim: 64, tensorCore: true))
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 64), "the bf16 GEMM module is still missing")
        try write(EncoderKernelModules.gemm, architecture: "sm_80")
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 64), "another architecture's GEMM does not count")
        try write(EncoderKernelModules.gemm)
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 64), "on sm_90 the warpgroup GEMM is loaded too")
        try write(EncoderKernelModules.gemmWarpgroup)
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 64), "it is compiled as sm_90a, not sm_90")
        try write(EncoderKernelModules.gemmWarpgroup, architecture: "sm_90a")
        #expect(inventory.kernelsLookCached(in: directory, headDim: 64))
        #expect(!inventory.kernelsLookCached(in: directory, headDim: 32), "no attention module for 32-wide heads")
        #expect(EncoderKernelModules.all(headDim: 64, bf16: true) == ["core", "gemm", "attention-mma-64"])
        #expect(EncoderKernelModules.all(headDim: 48, bf16: true).last == "attention-scalar-48")
    }

    @Test func gpuInventoryReadsTheArchitectureAndHonoursNone() {
        let inventory = GPUInventory(ordinals: [0], description: "NVIDIA H100 80GB HBM3 (sm_90), driver 13.0, NVRTC 13.0", unavailableReason: nil)
        #expect(inventory.architecture == "sm_90")
        let none = GPUInventory.current(environment: ["COLGREP_GPU_DEVICES": "none"])
        #expect(none.count == 0)
        #expect(none.unavailableReason == "COLGREP_GPU_DEVICES=none")
    }
}
