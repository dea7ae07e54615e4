import Encoder
import Foundation
import Tensor
import TensorCUDA

/// `colgrep warm-cache`: compiles and caches the GPU kernels and calibrates the cost model ahead of
/// time, reporting every step with its duration, or that there is nothing to do.
public struct CacheWarmer {
    /// Which caches to prepare.
    public enum Provider: String, CaseIterable, Sendable {
        case cpu, cuda, all
    }

    public var modelDirectory: URL
    public var hostThreads: Int
    public var costModels: CostModelStore
    public var kernelCache: KernelCache
    public var gpus: GPUInventory
    public var cpuTokenBudget = 4096
    public var gpuTokenBudget = 65536

    public init(modelDirectory: URL, hostThreads: Int = UsableCores.count,
                costModels: CostModelStore = CostModelStore(directory: CostModelStore.defaultDirectory()),
                kernelCache: KernelCache = KernelCache(directory: KernelCache.defaultDirectory()),
                gpus: GPUInventory = .current()) {
        self.modelDirectory = modelDirectory
        self.hostThreads = max(1, hostThreads)
        self.costModels = costModels
        self.kernelCache = kernelCache
        self.gpus = gpus
    }

    private var key: CostModelKey {
        CostModelKey(machine: MachineIdentity.current(), gpu: gpus.description ?? "none",
                     model: MachineIdentity.model(at: modelDirectory), engine: ColGrepVersion.string)
    }

    /// Runs the steps for `provider`; `recalibrate` redoes a calibration that is already stored.
    /// Returns whether anything was done. Throws when `cuda` is asked for and no GPU is usable.
    @discardableResult
    public func run(provider: Provider, recalibrate: Bool = false, log: (String) -> Void) throws -> Bool {
        if provider == .cuda, gpus.count == 0 {
            throw ColGrepError.gpuUnavailable(gpus.unavailableReason ?? "no CUDA device")
        }
        let total = ProfileClock.now()
        var model: CostModel? = nil
        switch costModels.load(key) {
        case .found(let stored): model = stored
        case .unusable(let reason): log("cost model: \(reason); recalibrating")
        case .missing: break
        }
        var didSomething = false

        if model == nil || recalibrate && provider != .cuda {
            let device = BackendEncodeDevice(processor: .cpu(threads: hostThreads), modelDirectory: modelDirectory, skipIDs: [])
            let begin = ProfileClock.now()
            let measured = try Calibrator.cpu.measure(device)
            let seconds = ProfileClock.seconds(since: begin)
            log(step("cpu: model load", measured.coldStart.totalSeconds))
            log(step("cpu: calibration (\(measured.samples.count) batch shapes, \(hostThreads) threads)", seconds - measured.coldStart.totalSeconds)
                + String(format: " → %.2f µs/token, %.2f ms/batch", measured.cost.perTokenSeconds * 1e6, measured.cost.perBatchSeconds * 1e3))
            model = CostModel(key: key, cpu: CPUCostModel(threads: hostThreads, tokenBudget: cpuTokenBudget, cost: measured.cost),
                              gpus: model?.gpus ?? [], calibrationSeconds: seconds)
            didSomething = true
        } else if provider != .cuda {
            log("cpu: cost model already calibrated for this machine and model")
        }

        if provider != .cpu {
            if gpus.count == 0 {
                log("cuda: skipped, GPU unavailable: \(gpus.unavailableReason ?? "no CUDA device")")
            } else if var current = model {
                for ordinal in gpus.ordinals {
                    if try warmGPU(ordinal: ordinal, model: &current, recalibrate: recalibrate, log: log) { didSomething = true }
                }
                if let perGPU = GPUProbe.driverInitSecondsPerGPU { current.driverInitSecondsPerGPU = perGPU }
                model = current
            }
        }
        if didSomething, let model {
            try costModels.save(model)
            log("cost model saved: \(costModels.url(for: model.key).path)")
            log(step("warm-cache: done", ProfileClock.seconds(since: total)))
        } else {
            let what = provider == .cpu || gpus.count == 0
                ? "the CPU cost model is calibrated for this machine, model and version"
                : "the kernels are cached and the cost model is calibrated for this machine, GPU, model and version"
            log("Nothing to do: \(what). Use --recalibrate to measure again.")
        }
        return didSomething
    }

    /// Opens the GPU (kernels from the cache or compiled into it), times the steps, and calibrates
    /// it unless its figures are complete. Returns whether anything was compiled or measured.
    private func warmGPU(ordinal: Int, model: inout CostModel, recalibrate: Bool, log: (String) -> Void) throws -> Bool {
        let id = "cuda:\(ordinal)"
        let device = BackendEncodeDevice(processor: .cuda(ordinal: ordinal), modelDirectory: modelDirectory, skipIDs: [], kernelCache: kernelCache)
        let timings: ColdStartTimings
        do { timings = try device.coldStart() } catch {
            throw ColGrepError.gpuUnavailable("\(id): \(error)")
        }
        log("\(id): \(gpus.description ?? "")")
        for line in device.startupSteps { log("\(id): \(line)") }
        // The index build's k-means kernels are not part of the encoder's start-up: compiled here, a first
        // cold index does not pay for them.
        let indexKernels = try device.prepareIndexBuildKernels()
        if let indexKernels { log("\(id): \(indexKernels)") }
        // cuBLASLt's algorithm choices for the model's GEMMs at the index's batch sizes: timed now and kept in the
        // kernel cache (or found there), so that the first index does not time them (~0.15 s on two H200s, session 12).
        var choicesTimed = false
        if let choices = try device.prepareMatmulChoices(tokenBudget: gpuTokenBudget) {
            choicesTimed = choices.timed > 0
            log(choices.timed + choices.loaded == 0
                ? "\(id): cuBLASLt algorithms: none new (chosen earlier in this process for this GPU model, or GEMMs not on cuBLASLt)"
                : "\(id): cuBLASLt algorithms: \(choices.timed) shapes timed and kept in \(kernelCache.directory.path), \(choices.loaded) found there")
        }
        let indexKernelsCompiled = indexKernels?.contains("compiled") == true
        let previous = model.gpus.first { $0.device == id }
        var compile = timings.kernelsCompiled ? timings.kernelSeconds : previous?.kernelCompileSeconds
        var load = timings.kernelsCompiled ? previous?.kernelCacheLoadSeconds : timings.kernelSeconds
        if timings.kernelsCompiled {
            log(step("\(id): kernels compiled and cached in \(kernelCache.directory.path)", timings.kernelSeconds))
            // The next process loads them: time that too, so the planner knows both costs.
            let again = BackendEncodeDevice(processor: .cuda(ordinal: ordinal), modelDirectory: modelDirectory, skipIDs: [], kernelCache: kernelCache)
            load = try again.coldStart().kernelSeconds
            log(step("\(id): kernels loaded from the cache", load ?? 0))
        } else if compile == nil || recalibrate {
            // Cached before we ever timed a compile: compile once into a scratch cache to measure it.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-kernel-timing-\(getpid())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let fresh = BackendEncodeDevice(processor: .cuda(ordinal: ordinal), modelDirectory: modelDirectory, skipIDs: [],
                                            kernelCache: KernelCache(directory: scratch))
            compile = try fresh.coldStart().kernelSeconds
            log(step("\(id): kernels already cached; a compile (measured in a scratch cache) takes", compile ?? 0))
        }
        if let previous, !timings.kernelsCompiled, !recalibrate, previous.kernelCompileSeconds != nil, compile == previous.kernelCompileSeconds {
            log("\(id): kernels cached and GPU already calibrated")
            return indexKernelsCompiled || choicesTimed
        }
        let begin = ProfileClock.now()
        let calibrator = Calibrator.gpu
        // The device is already warm: measure batches only (its cold start returns the stored timings).
        let measured = try calibrator.measure(device)
        log(step("\(id): calibration (\(measured.samples.count) batch shapes)", ProfileClock.seconds(since: begin))
            + String(format: " → %.3f µs/token, %.2f ms/batch", measured.cost.perTokenSeconds * 1e6, measured.cost.perBatchSeconds * 1e3))
        var cost = measured.cost
        cost.coldStartSeconds = timings.contextSeconds + (load ?? timings.kernelSeconds) + timings.weightSeconds
        model.gpus.removeAll { $0.device == id }
        model.gpus.append(GPUCostModel(device: id, name: gpus.description ?? id, contextSeconds: timings.contextSeconds,
                                       kernelCompileSeconds: compile, kernelCacheLoadSeconds: load,
                                       weightUploadSeconds: timings.weightSeconds, tokenBudget: gpuTokenBudget, cost: cost))
        model.gpus.sort { $0.device < $1.device }
        return true
    }

    /// The folder of `idOrPath`: a local folder or a model already in the Hugging Face cache.
    public static func localModel(_ idOrPath: String) throws -> URL {
        do {
            return try ModelLocator.resolve(idOrPath, fallback: nil)
        } catch {
            throw ColGrepError.notFound("model \(idOrPath): \(error). Pass --model <folder>, or index once so that the model is downloaded.")
        }
    }

    private func step(_ what: String, _ seconds: Double) -> String {
        what + (seconds < 1 ? String(format: ": %.1f ms", seconds * 1000) : String(format: ": %.3f s", seconds))
    }
}
