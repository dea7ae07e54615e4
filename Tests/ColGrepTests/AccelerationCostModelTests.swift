import Foundation
import Testing
@testable import ColGrep

@Suite struct CostModelTests {
    private let key = CostModelKey(machine: "host | cpu | 16 cores", gpu: "NVIDIA H100", model: "/m | 1 bytes | 2", engine: "0.1.0")

    private func sample(cpuPerToken: Double = 1e-4, gpuPerToken: Double = 1e-6, compile: Double? = 8) -> CostModel {
        CostModel(key: key,
                  cpu: CPUCostModel(threads: 16, tokenBudget: 4096, cost: DeviceCost(coldStartSeconds: 0.2, perBatchSeconds: 0.001, perTokenSeconds: cpuPerToken)),
                  gpus: [GPUCostModel(device: "cuda:0", name: "NVIDIA H100", contextSeconds: 0.4, kernelCompileSeconds: compile,
                                      kernelCacheLoadSeconds: 0.05, weightUploadSeconds: 0.1, tokenBudget: 65536,
                                      cost: DeviceCost(coldStartSeconds: 0.55, perBatchSeconds: 0.003, perTokenSeconds: gpuPerToken))],
                  calibrationSeconds: 0.3, calibratedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    private func tempStore() -> CostModelStore {
        CostModelStore(directory: FileManager.default.temporaryDirectory.appendingPathComponent("costmodel-test-\(UUID().uuidString)"))
    }

    @Test func roundTripsThroughTheStore() throws {
        let store = tempStore()
        defer { try? FileManager.default.removeItem(at: store.directory) }
        #expect(store.load(key) == .missing)
        try store.save(sample())
        #expect(store.load(key) == .found(sample()))
    }

    @Test func anyChangedKeyPartIsAnotherFile() throws {
        let store = tempStore()
        defer { try? FileManager.default.removeItem(at: store.directory) }
        try store.save(sample())
        for changed in [CostModelKey(machine: "other", gpu: key.gpu, model: key.model, engine: key.engine),
                        CostModelKey(machine: key.machine, gpu: "none", model: key.model, engine: key.engine),
                        CostModelKey(machine: key.machine, gpu: key.gpu, model: "/m | 3 bytes | 2", engine: key.engine),
                        CostModelKey(machine: key.machine, gpu: key.gpu, model: key.model, engine: "0.2.0")] {
            #expect(store.url(for: changed) != store.url(for: key))
            #expect(store.load(changed) == .missing)
        }
    }

    @Test func corruptStaleOrImpossibleFilesReadAsUnusable() throws {
        let store = tempStore()
        defer { try? FileManager.default.removeItem(at: store.directory) }
        try FileManager.default.createDirectory(at: store.directory, withIntermediateDirectories: true)
        let url = store.url(for: key)
        try Data("{\"key\": tru".utf8).write(to: url)
        guard case .unusable = store.load(key) else { Issue.record("truncated JSON must be unusable"); return }
        try Data([0xFF, 0x00, 0xFE]).write(to: url)
        guard case .unusable = store.load(key) else { Issue.record("binary must be unusable"); return }
        // A file whose contents belong to another key (copied by hand) is stale.
        var other = sample()
        other.key.machine = "another host"
        try store.save(other)
        try FileManager.default.moveItem(at: store.url(for: other.key), to: url.appendingPathExtension("x"))
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.moveItem(at: url.appendingPathExtension("x"), to: url)
        guard case .unusable = store.load(key) else { Issue.record("a stale key must be unusable"); return }
        var impossible = sample()
        impossible.cpu.cost.perTokenSeconds = -1
        try store.save(impossible)
        guard case .unusable = store.load(key) else { Issue.record("negative costs must be unusable"); return }
        try store.save(sample()) // recalibration overwrites
        #expect(store.load(key) == .found(sample()))
    }

    @Test func defaultDirectoryFollowsXDGCacheHome() {
        #expect(CostModelStore.defaultDirectory(environment: ["XDG_CACHE_HOME": "/tmp/x"]).path == "/tmp/x/colgrep/costmodel")
        #expect(CostModelStore.defaultDirectory(environment: ["HOME": "/home/u"]).path == "/home/u/.cache/colgrep/costmodel")
    }

    @Test func fitRecoversALine() {
        let samples = [100, 400, 1600, 3200].map { CalibrationSample(tokens: $0, seconds: 0.002 + Double($0) * 5e-5) }
        let cost = Calibrator.fit(samples)
        #expect(abs(cost.perBatchSeconds - 0.002) < 1e-9)
        #expect(abs(cost.perTokenSeconds - 5e-5) < 1e-12)
        // Noise giving a negative intercept falls back to the largest batch's rate.
        let noisy = [CalibrationSample(tokens: 100, seconds: 0.0001), CalibrationSample(tokens: 1000, seconds: 0.01)]
        #expect(Calibrator.fit(noisy).perBatchSeconds == 0)
        #expect(Calibrator.fit(noisy).perTokenSeconds == 1e-5)
    }

    @Test func calibratorTimesColdStartAndShapes() throws {
        final class Target: CalibrationTarget {
            let info = DeviceInfo(id: "cpu", kind: .cpu)
            var shapes: [Int] = []
            func coldStart() throws -> ColdStartTimings { ColdStartTimings(weightSeconds: 0.25) }
            func encodeSynthetic(count: Int, length: Int) throws {
                shapes.append(count * length)
                Thread.sleep(forTimeInterval: Double(count * length) * 2e-6)
            }
        }
        let target = Target()
        let result = try Calibrator(shapes: [(2, 50), (4, 100), (8, 200)], repetitions: 1, budgetSeconds: 10).measure(target)
        #expect(result.coldStart.totalSeconds == 0.25)
        #expect(result.cost.coldStartSeconds == 0.25)
        #expect(result.samples.map(\.tokens) == [100, 400, 1600])
        #expect(target.shapes == [100, 100, 400, 1600]) // one warm-up, then each shape
        #expect(result.cost.perTokenSeconds > 0)
    }
}

@Suite struct RoutingPlannerTests {
    private let cpu = CPUCostModel(threads: 16, tokenBudget: 4096, cost: DeviceCost(coldStartSeconds: 0.2, perBatchSeconds: 0.001, perTokenSeconds: 2e-5))
    private let gpu = GPUCostModel(device: "cuda:0", name: "H100", contextSeconds: 0.5, kernelCompileSeconds: 6, kernelCacheLoadSeconds: 0.05,
                                   weightUploadSeconds: 0.1, tokenBudget: 65536, cost: DeviceCost(coldStartSeconds: 0.65, perBatchSeconds: 0.004, perTokenSeconds: 2e-7))

    private func inputs(_ mode: AccelerationMode = .auto, tokens: Int, gpus: [GPUCostModel]? = nil, available: Int = 1, cached: Bool = true) -> RoutingInputs {
        RoutingInputs(mode: mode, work: WorkSize(tokens: tokens, sequences: tokens / 100), cpu: cpu, gpus: gpus ?? [gpu],
                      gpusAvailable: available, gpuUnavailableReason: available == 0 ? "libcuda.so.1 not found" : nil,
                      kernelsCached: cached, hostThreads: 16)
    }

    @Test func tinyCorporaStayOnTheCPU() {
        let plan = RoutingPlanner.plan(inputs(tokens: 5_000)) // 0.3 s on CPU vs 0.65 s GPU cold start
        #expect(plan.choice == .cpu)
        #expect(plan.estimates[.cpu]! < plan.estimates[.gpu]!)
    }

    @Test func largeCorporaUseTheGPUAndAnEmptyCacheCountsTheCompile() {
        let warm = RoutingPlanner.plan(inputs(tokens: 20_000_000))
        #expect(warm.choice != .cpu)
        #expect(warm.gpuCount == 1)
        let cold = RoutingPlanner.plan(inputs(tokens: 20_000_000, cached: false))
        #expect(cold.estimates[.gpu]! > warm.estimates[.gpu]! + 5)
        // A medium corpus: the GPU wins with a warm cache, the compile makes the CPU worth it alone or together.
        let mediumWarm = RoutingPlanner.plan(inputs(tokens: 250_000))
        let mediumCold = RoutingPlanner.plan(inputs(tokens: 250_000, cached: false))
        #expect(mediumWarm.choice != .cpu)
        #expect(mediumCold.choice == .cpu)
    }

    @Test func hybridWhenBothDevicesMatter() {
        let slowGPU = GPUCostModel(device: "cuda:0", name: "small", contextSeconds: 0.3, kernelCompileSeconds: 1, kernelCacheLoadSeconds: 0.05,
                                   weightUploadSeconds: 0.05, tokenBudget: 16384, cost: DeviceCost(coldStartSeconds: 0.4, perBatchSeconds: 0.002, perTokenSeconds: 2.5e-5))
        let plan = RoutingPlanner.plan(inputs(tokens: 2_000_000, gpus: [slowGPU]))
        #expect(plan.choice == .hybrid)
        #expect(plan.cpuThreads == 15)
        #expect(plan.estimates[.hybrid]! < min(plan.estimates[.cpu]!, plan.estimates[.gpu]!))
        // Each GPU's lanes are host threads the CPU lane does not get.
        var lanes = inputs(tokens: 2_000_000, gpus: [slowGPU])
        lanes.lanesPerGPU = 3
        #expect(RoutingPlanner.plan(lanes).cpuThreads == 13)
    }

    @Test func forcedModesIgnoreTheEstimates() {
        #expect(RoutingPlanner.plan(inputs(.forceCPU, tokens: 50_000_000)).choice == .cpu)
        let forced = RoutingPlanner.plan(inputs(.forceGPU, tokens: 10))
        #expect(forced.choice == .gpu)
        #expect(forced.gpuCount == 1)
    }

    @Test func noGPUMeansCPUWithTheReason() {
        let plan = RoutingPlanner.plan(inputs(tokens: 50_000_000, available: 0))
        #expect(plan.choice == .cpu)
        #expect(plan.reason.contains("libcuda.so.1 not found"))
    }

    @Test func anUncalibratedGPUIsOnlyExploredWhenTheCPUWouldTakeAWhile() {
        let small = RoutingPlanner.plan(inputs(tokens: 20_000, gpus: []))
        #expect(small.choice == .cpu)
        #expect(!small.exploresGPU)
        let large = RoutingPlanner.plan(inputs(tokens: 5_000_000, gpus: []))
        #expect(large.choice == .hybrid)
        #expect(large.exploresGPU)
    }

    @Test func severalGPUsDrainFaster() {
        let one = RoutingPlanner.plan(inputs(tokens: 100_000_000, gpus: [gpu, gpu], available: 1))
        let two = RoutingPlanner.plan(inputs(tokens: 100_000_000, gpus: [gpu, gpu], available: 2))
        #expect(two.gpuCount == 2)
        #expect(two.estimatedSeconds! < one.estimatedSeconds! * 0.6)
        #expect(two.summary.contains("routing:"))
    }

    @Test func drainMatchesTheClosedForm() {
        // Two lanes of 1000 tok/s, one starting at 0 and one at 1 s: 3000 tokens end at 2 s (+ tail).
        let a = RoutingPlanner.Lane(cost: DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 1e-3), budget: 10)
        let b = RoutingPlanner.Lane(cost: DeviceCost(coldStartSeconds: 1, perBatchSeconds: 0, perTokenSeconds: 1e-3), budget: 10)
        let seconds = RoutingPlanner.drainSeconds(tokens: 3000, lanes: [a, b])
        #expect(abs(seconds - (2 + 0.005)) < 1e-9)
        // 500 tokens end before the second lane starts.
        #expect(abs(RoutingPlanner.drainSeconds(tokens: 500, lanes: [a, b]) - (0.5 + 0.005)) < 1e-9)
    }
}
