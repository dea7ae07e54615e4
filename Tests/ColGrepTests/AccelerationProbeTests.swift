import Foundation
import Testing
@testable import ColGrep

/// The GPU probe (driver start, 200–300 ms on an H100 machine) is paid only when a GPU could win.
@Suite struct AccelerationProbeTests {
    private let claimed = GPUInventory(ordinals: [0], description: "claimed GPU (sm_90)", unavailableReason: nil)

    private func storeModel(in store: CostModelStore, gpuStartSeconds: Double) throws {
        let key = CostModelKey(machine: MachineIdentity.current(), gpu: claimed.description!,
                               model: MachineIdentity.model(at: AccelerationRouterTests.model), engine: ColGrepVersion.string)
        let gpu = GPUCostModel(device: "cuda:0", name: "claimed", contextSeconds: gpuStartSeconds, kernelCompileSeconds: 1, kernelCacheLoadSeconds: 0.001,
                               weightUploadSeconds: 0.001, tokenBudget: 65536, cost: DeviceCost(coldStartSeconds: gpuStartSeconds, perBatchSeconds: 0, perTokenSeconds: 1e-9))
        let cpu = CPUCostModel(threads: 2, tokenBudget: 4096, cost: DeviceCost(coldStartSeconds: 0.1, perBatchSeconds: 0.001, perTokenSeconds: 1e-6))
        try store.save(CostModel(key: key, cpu: cpu, gpus: [gpu], calibrationSeconds: 0))
    }

    @Test func aRunTheCPUFinishesBeforeAGPUCouldStartNeverProbesTheGPUs() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-probe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let store = CostModelStore(directory: cache)
        try storeModel(in: store, gpuStartSeconds: 0.4)
        var options = EncodeRouter.Options(mode: .auto, modelDirectory: AccelerationRouterTests.model, skipIDs: [], hostThreads: 2,
                                           costModels: store, environment: [:])
        let probes = LockedValue(0)
        let claimed = self.claimed
        let small = EncodeRouter(options: options, profiler: Profiler(enabled: false),
                                 probe: GPUProbe { probes.withLock { $0 += 1 }; return claimed }) { _ in }
        // 2,000 tokens at 1 µs each: 2 ms of CPU against a 400 ms GPU start.
        let plan = try small.prepare(work: WorkSize(tokens: 2000, sequences: 20))
        small.finish()
        #expect(plan.choice == .cpu)
        #expect(plan.reason.contains("GPUs not probed"))
        #expect(probes.withLock { $0 } == 0)

        // 10M tokens: 10 s of CPU, so the GPUs are probed (and planned).
        options.costModels = store
        let large = EncodeRouter(options: options, profiler: Profiler(enabled: false),
                                 probe: GPUProbe { probes.withLock { $0 += 1 }; return claimed }) { _ in }
        let bigPlan = try large.prepare(work: WorkSize(tokens: 10_000_000, sequences: 50_000))
        large.finish()
        #expect(probes.withLock { $0 } == 1)
        #expect(bigPlan.choice != .cpu)
    }

    @Test func withoutAnyStoredModelASmallRunStaysOnTheCPUUnprobed() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-probe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let options = EncodeRouter.Options(mode: .auto, modelDirectory: AccelerationRouterTests.model, skipIDs: [], hostThreads: 2,
                                           costModels: CostModelStore(directory: cache), environment: [:])
        let probes = LockedValue(0)
        let claimed = self.claimed
        let router = EncodeRouter(options: options, profiler: Profiler(enabled: false),
                                  probe: GPUProbe { probes.withLock { $0 += 1 }; return claimed }) { _ in }
        #expect(try router.prepare(work: WorkSize(tokens: 100, sequences: 3)).choice == .cpu)
        router.finish()
        #expect(probes.withLock { $0 } == 0)
    }
}
