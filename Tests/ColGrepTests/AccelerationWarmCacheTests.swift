import Foundation
import Testing
@testable import ColGrep

@Suite struct AccelerationWarmCacheTests {
    private let noGPU = GPUInventory(ordinals: [], description: nil, unavailableReason: "no NVIDIA driver")

    @Test func calibratesOnceThenHasNothingToDoAndRecoversFromACorruptFile() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-warm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let store = CostModelStore(directory: cache)
        let warmer = CacheWarmer(modelDirectory: AccelerationRouterTests.model, hostThreads: 1, costModels: store,
                                 kernelCache: .init(directory: cache.appendingPathComponent("kernels")), gpus: noGPU)
        var lines: [String] = []
        #expect(try warmer.run(provider: .all) { lines.append($0) })
        #expect(lines.contains { $0.hasPrefix("cpu: model load:") })
        #expect(lines.contains { $0.hasPrefix("cpu: calibration") && $0.contains("µs/token") })
        #expect(lines.contains { $0.hasPrefix("cuda: skipped, GPU unavailable: no NVIDIA driver") })
        lines = []
        #expect(try !warmer.run(provider: .cpu) { lines.append($0) })
        #expect(lines.last?.hasPrefix("Nothing to do") == true)
        // A damaged file is replaced by a new calibration.
        // (Beside the model, its copy as this machine's latest model, read before any GPU probe.)
        let files = try FileManager.default.contentsOfDirectory(at: cache, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" && $0.lastPathComponent.hasPrefix("costmodel-") }
        #expect(files.count == 1)
        try Data("{\"format\": 1, \"cpu\": ".utf8).write(to: files[0])
        lines = []
        #expect(try warmer.run(provider: .cpu) { lines.append($0) })
        #expect(lines.first?.contains("not a valid cost model") == true)
    }

    @Test func askingForCUDAWithoutAGPUIsAnErrorNamingTheCause() {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-warm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let warmer = CacheWarmer(modelDirectory: AccelerationRouterTests.model, hostThreads: 1, costModels: CostModelStore(directory: cache),
                                 kernelCache: .init(directory: cache), gpus: noGPU)
        #expect(throws: ColGrepError.gpuUnavailable("no NVIDIA driver")) { try warmer.run(provider: .cuda) { _ in } }
    }

    /// The CPU has no index-build kernels to compile (the GPU's are checked by the device run: warm-cache
    /// then a cold init that loads `kmeans-*` from the cache); asking loads the model and says so with nil.
    @Test func theCPUHasNoIndexBuildKernelsToPrepare() throws {
        let device = BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: AccelerationRouterTests.model, skipIDs: [])
        #expect(try device.prepareIndexBuildKernels() == nil)
        #expect(device.model != nil)
    }

    @Test func theCPUHasNoCuBLASLtChoicesToMake() throws {
        // warm-cache times cuBLASLt's algorithms only on a GPU; on the CPU the step is absent (nil), not "0 timed".
        let device = BackendEncodeDevice(processor: .cpu(threads: 1), modelDirectory: AccelerationRouterTests.model, skipIDs: [])
        #expect(try device.prepareMatmulChoices(tokenBudget: 65536) == nil)
        #expect(device.model != nil)
    }
}
