import Foundation
import Testing
import TensorCUDA
@testable import ColGrep

/// Opening only as many GPUs as a run pays for: the planner, the narrowing of `CUDA_VISIBLE_DEVICES`,
/// and the router doing it before the probe.
@Suite struct GPUCountPlannerTests {
    /// Figures of the four-H200 host's kind: 64 cores, a GPU at ~12M tokens/s after a ~0.2 s start.
    static func hint(driverInitPerGPU: Double? = 0.19, gpus: Int = 1, machine: String = "host | cpu | 64 cores",
                     model: String = "/m | 1 bytes | 2", engine: String = "0.1.0") -> CostModel {
        let gpu = GPUCostModel(device: "cuda:0", name: "NVIDIA H200", contextSeconds: 0.08, kernelCompileSeconds: 3,
                               kernelCacheLoadSeconds: 0.05, weightUploadSeconds: 0.05, tokenBudget: 65536,
                               cost: DeviceCost(coldStartSeconds: 0.18, perBatchSeconds: 0.002, perTokenSeconds: 1.0 / 12e6))
        return CostModel(key: CostModelKey(machine: machine, gpu: "NVIDIA H200 (sm_90), driver 13.0, NVRTC 13.0", model: model, engine: engine),
                         cpu: CPUCostModel(threads: 64, tokenBudget: 4096,
                                           cost: DeviceCost(coldStartSeconds: 0.2, perBatchSeconds: 0.001, perTokenSeconds: 3e-6)),
                         gpus: (0..<gpus).map { var g = gpu; g.device = "cuda:\($0)"; return g },
                         calibrationSeconds: 0.3, calibratedAt: Date(timeIntervalSince1970: 1_700_000_000),
                         driverInitSecondsPerGPU: driverInitPerGPU)
    }

    func choose(_ hint: CostModel, visible: Int = 4, tokens: Int) -> GPUCountPlanner.Choice? {
        GPUCountPlanner.choose(hint: hint, visible: visible, work: WorkSize(tokens: tokens, sequences: tokens / 200),
                               kernelsCached: true, hostThreads: 64, lanesPerGPU: 2)
    }

    @Test func aSmallRunOpensOneGPUAndALargeOneEvery() throws {
        let small = try #require(choose(Self.hint(), tokens: 1_000_000))
        #expect(small.count == 1)
        #expect(small.estimates.keys.sorted() == [1, 2, 3, 4])
        let large = try #require(choose(Self.hint(), tokens: 400_000_000))
        #expect(large.count == 4)
        // Each GPU opened costs its driver initialisation and teardown: the estimates grow by that much
        // beyond what the GPU saves.
        #expect(small.estimates[4]! > small.estimates[1]! + 3 * (0.19 + GPUCountPlanner.teardownSecondsPerGPU) - 0.1)
    }

    @Test func moreTokensNeverOpenFewerGPUs() {
        var last = 0
        for tokens in stride(from: 500_000, through: 300_000_000, by: 7_500_000) {
            let count = choose(Self.hint(), tokens: tokens)?.count ?? 0
            #expect(count >= last, "\(tokens) tokens: \(count) GPUs after \(last)")
            last = count
        }
        #expect(last == 4)
    }

    @Test func theMeasuredDriverInitialisationSteersTheChoice() {
        // A driver that takes seconds per GPU: one GPU for a run that four would otherwise share.
        #expect(choose(Self.hint(), tokens: 40_000_000)?.count == 4)
        #expect(choose(Self.hint(driverInitPerGPU: 5), tokens: 40_000_000)?.count == 1)
        // Without a measurement the default stands in for it.
        let unmeasured = choose(Self.hint(driverInitPerGPU: nil), tokens: 400_000_000)
        let measured = choose(Self.hint(driverInitPerGPU: GPUCountPlanner.defaultDriverInitSecondsPerGPU), tokens: 400_000_000)
        #expect(unmeasured != nil && unmeasured == measured)
    }

    /// The driver initialises while the run parses: only what it takes beyond the parse delays the run,
    /// so a large project opens the GPUs a slow driver start would otherwise talk it out of.
    @Test func theDriversStartBesideTheParseCostsOnlyWhatOutlastsIt() throws {
        func choose(driverInit: Double, before: Double) -> GPUCountPlanner.Choice? {
            GPUCountPlanner.choose(hint: Self.hint(driverInitPerGPU: driverInit), visible: 4,
                                   work: WorkSize(tokens: 40_000_000, sequences: 200_000, secondsBeforeEncoding: before),
                                   kernelsCached: true, hostThreads: 64, lanesPerGPU: 2)
        }
        let free = try #require(choose(driverInit: 0, before: 0))
        #expect(free.count == 4)
        #expect((choose(driverInit: 1, before: 0)?.count ?? 4) < 4)
        // A parse as long as four GPUs' start hides all of it; a shorter one part of it.
        let hidden = try #require(choose(driverInit: 1, before: 4))
        #expect(hidden == free)
        let partly = try #require(choose(driverInit: 1, before: 2.5))
        #expect(abs(partly.estimates[4]! - (free.estimates[4]! + 1.5)) < 1e-9)
        #expect(abs(partly.estimates[2]! - free.estimates[2]!) < 1e-9)
        // The parse's least length grows with the bytes and shrinks with the cores.
        #expect(GPUCountPlanner.secondsBeforeEncoding(bytes: 100_000_000, cores: 64) == 100e6 / (64 * GPUCountPlanner.parseBytesPerSecondPerCore))
        #expect(GPUCountPlanner.secondsBeforeEncoding(bytes: 100_000_000, cores: 16) > GPUCountPlanner.secondsBeforeEncoding(bytes: 100_000_000, cores: 64))
        #expect(GPUCountPlanner.secondsBeforeEncoding(bytes: 0, cores: 0) == 0)
    }

    @Test func noChoiceWithoutGPUFiguresOrWithOneGPU() {
        var cpuOnly = Self.hint()
        cpuOnly.gpus = []
        #expect(choose(cpuOnly, tokens: 50_000_000) == nil)
        #expect(choose(Self.hint(), visible: 1, tokens: 50_000_000) == nil)
        #expect(choose(Self.hint(), tokens: 0) == nil)
    }

    @Test func theDriverFigureIsStoredAndOldFilesStillRead() throws {
        let store = CostModelStore(directory: FileManager.default.temporaryDirectory.appendingPathComponent("gpucount-\(UUID().uuidString)"))
        defer { try? FileManager.default.removeItem(at: store.directory) }
        let model = Self.hint(driverInitPerGPU: 0.21)
        try store.save(model)
        #expect(store.load(model.key) == .found(model))
        // A file written before the field existed.
        let url = store.url(for: model.key)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        json.removeValue(forKey: "driverInitSecondsPerGPU")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        guard case .found(let old) = store.load(model.key) else { Issue.record("an older file must still load"); return }
        #expect(old.driverInitSecondsPerGPU == nil)
        // An impossible figure makes the file unusable, like any other.
        try store.save(Self.hint(driverInitPerGPU: -1))
        guard case .unusable = store.load(model.key) else { Issue.record("a negative driver figure must be unusable"); return }
    }
}

/// A stand-in process environment and driver for `RunSizedGPUNarrowing`.
final class FakeGPUEnvironment: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: String]
    var installed: Int?
    var started = false

    init(_ values: [String: String] = [:], installed: Int? = 4) {
        self.values = values
        self.installed = installed
    }

    subscript(key: String) -> String? {
        lock.withLock { values[key] }
    }

    var environment: RunSizedGPUNarrowing.Environment {
        RunSizedGPUNarrowing.Environment(get: { key in self.lock.withLock { self.values[key] } },
                                         set: { key, value in self.lock.withLock { self.values[key] = value } },
                                         installedGPUs: { self.installed }, driverStarted: { self.started })
    }
}

@Suite struct RunSizedGPUNarrowingTests {
    @Test func withEveryGPUTheDriversListIsSetUpFrontAndCutOnce() {
        let fake = FakeGPUEnvironment()
        let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
        #expect(narrowing.narrowableCount == nil)
        narrowing.allow()
        #expect(fake["CUDA_VISIBLE_DEVICES"] == "0,1,2,3")
        #expect(narrowing.narrowableCount == 4)
        #expect(narrowing.narrow(toFirst: 4) == nil)
        #expect(narrowing.narrow(toFirst: 2) == "0,1")
        #expect(fake["CUDA_VISIBLE_DEVICES"] == "0,1")
        #expect(narrowing.narrowableCount == nil)
        #expect(narrowing.narrow(toFirst: 1) == nil)
        #expect(fake["CUDA_VISIBLE_DEVICES"] == "0,1")
    }

    @Test func aUsersListIsCutInItsOwnTerms() {
        let fake = FakeGPUEnvironment(["CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb,GPU-cc"], installed: 8)
        let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
        narrowing.allow()
        #expect(narrowing.narrowableCount == 3)
        #expect(narrowing.narrow(toFirst: 1) == "GPU-aa")
    }

    @Test func nothingIsCutForASelectionOneGPUOrAStartedDriver() {
        for (values, installed) in [(["COLGREP_GPU_DEVICES": "0,1"], 4), (["COLGREP_GPU_DEVICES": "none"], 4),
                                    ([:], 1), ([:], nil), (["CUDA_VISIBLE_DEVICES": "3"], 4), (["CUDA_VISIBLE_DEVICES": "0,,1"], 4)]
            as [([String: String], Int?)] {
            let fake = FakeGPUEnvironment(values, installed: installed)
            let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
            narrowing.allow()
            #expect(narrowing.narrowableCount == nil, "\(values), \(installed ?? -1) installed")
            #expect(narrowing.narrow(toFirst: 1) == nil)
            #expect(fake["CUDA_VISIBLE_DEVICES"] == values["CUDA_VISIBLE_DEVICES"])
        }
        let fake = FakeGPUEnvironment()
        let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
        narrowing.allow()
        fake.started = true
        #expect(narrowing.narrowableCount == nil)
        #expect(narrowing.narrow(toFirst: 1) == nil)
        #expect(fake["CUDA_VISIBLE_DEVICES"] == "0,1,2,3")
    }

    /// The router cuts the list before it probes, from the cost model this machine stored last.
    @Test func theRouterOpensOnlyTheGPUsTheRunPaysFor() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("gpucount-route-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let model = AccelerationRouterTests.model
        let store = CostModelStore(directory: cache.appendingPathComponent("costmodel"))
        // A slow CPU, so that the GPUs are worth probing at all.
        var hint = GPUCountPlannerTests.hint(machine: MachineIdentity.current(), model: MachineIdentity.model(at: model), engine: ColGrepVersion.string)
        hint.cpu.cost.perTokenSeconds = 1e-4
        try store.save(hint)
        for (tokens, expected) in [(2_000_000, "0"), (400_000_000, "0,1,2,3")] {
            let fake = FakeGPUEnvironment()
            let narrowing = RunSizedGPUNarrowing(environment: fake.environment)
            narrowing.allow()
            var options = EncodeRouter.Options(mode: .auto, modelDirectory: model, skipIDs: [], hostThreads: 2, costModels: store,
                                               kernelCache: KernelCache(directory: cache.appendingPathComponent("kernels")), environment: [:])
            options.gpuNarrowing = narrowing
            let profiler = Profiler(enabled: true)
            let router = EncodeRouter(options: options, profiler: profiler, message: { _ in })
            _ = try router.prepare(work: WorkSize(tokens: tokens, sequences: tokens / 200))
            router.finish()
            #expect(fake["CUDA_VISIBLE_DEVICES"] == expected, "\(tokens) tokens")
            let count = expected.split(separator: ",").count
            #expect(profiler.recordedNotes().contains { $0.hasPrefix("GPUs: \(count) of 4 opened for this run's size") })
        }
    }
}
