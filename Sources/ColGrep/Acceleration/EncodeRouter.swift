import Encoder
import Foundation
import Tensor
import TensorCUDA

/// Routes one indexing run's document encoding: loads (or calibrates) the cost model, plans CPU,
/// GPU or both from the run's size, keeps the chosen devices warm across chunks through one
/// `EncodeScheduler`, and at the end records the decision with estimated and actual costs in the
/// profile and refines the stored cost model with what the GPUs measured.
///
/// `--force-gpu` is strict (any GPU failure is an error naming the device and cause); auto never
/// fails because of a GPU: a GPU that cannot start or fails mid-run leaves its work to the CPU,
/// and the user is told once.
public final class EncodeRouter {
    /// Settings of a router.
    public struct Options: Sendable {
        public var mode: AccelerationMode
        public var modelDirectory: URL
        /// Token ids whose rows documents drop (ColBERT's skiplist).
        public var skipIDs: Set<Int32>
        /// Cores for the CPU lane.
        public var hostThreads: Int
        /// Tokens per CPU batch.
        public var cpuTokenBudget: Int
        /// Tokens per GPU batch.
        public var gpuTokenBudget: Int
        /// Encode lanes per GPU (host threads sharing the GPU's weights); nil: `COLGREP_GPU_LANES`, else
        /// `GPULanes.defaultCount`.
        public var lanesPerGPU: Int?
        public var costModels: CostModelStore
        public var kernelCache: KernelCache
        public var environment: [String: String]
        /// Cuts the GPUs the driver sees to what the run needs (where the CLI allowed it).
        public var gpuNarrowing: RunSizedGPUNarrowing = .process

        public init(mode: AccelerationMode, modelDirectory: URL, skipIDs: Set<Int32>,
                    hostThreads: Int = UsableCores.count,
                    cpuTokenBudget: Int = 4096, gpuTokenBudget: Int = 65536, lanesPerGPU: Int? = nil,
                    costModels: CostModelStore = CostModelStore(directory: CostModelStore.defaultDirectory()),
                    kernelCache: KernelCache = KernelCache(directory: KernelCache.defaultDirectory()),
                    environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.mode = mode
            self.modelDirectory = modelDirectory
            self.skipIDs = skipIDs
            self.hostThreads = max(1, hostThreads)
            self.cpuTokenBudget = cpuTokenBudget
            self.gpuTokenBudget = gpuTokenBudget
            self.lanesPerGPU = lanesPerGPU.map { min(max($0, 1), GPULanes.maximum) }
            self.costModels = costModels
            self.kernelCache = kernelCache
            self.environment = environment
        }
    }

    public let options: Options
    public let profiler: Profiler
    public private(set) var plan: RoutingPlan?
    public private(set) var costModel: CostModel?
    private let probe: GPUProbe
    private var gpus: GPUInventory { probe.inventory }
    /// Names the GPUs, so building it probes them: only once a GPU could win.
    private lazy var key = CostModelKey(machine: MachineIdentity.current(), gpu: gpus.description ?? "none",
                                        model: MachineIdentity.model(at: options.modelDirectory), engine: ColGrepVersion.string)
    private var scheduler: EncodeScheduler<[Int32], HostMatrix>?
    /// Each planned GPU's lanes (one group per GPU, sharing its weights).
    private var gpuLanes: [[SharedModelLanes.Lane]] = []
    private lazy var headDim = (try? TransformerConfig(contentsOf: options.modelDirectory.appendingPathComponent("config.json")).headDim) ?? 64
    private var encodeSeconds = 0.0
    private var encodesInFlight = 0
    private var encodingSince = ProfileClock.now()
    /// Guards the plan made by the first encode and the encode clock against concurrent encodes.
    private let encodeLock = NSLock()
    private var computeGPU: (any Backend)?
    private let message: @Sendable (String) -> Void

    private let preloadedCPU: BackendEncodeDevice?

    /// - Parameters:
    ///   - cpuDevice: the CPU device to use (a model already loaded); else one is loaded when needed.
    ///   - message: where the one-time fallback notice goes (stderr by default).
    public init(options: Options, profiler: Profiler = .shared, gpus: GPUInventory? = nil, probe: GPUProbe? = nil, cpuDevice: BackendEncodeDevice? = nil,
                message: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.options = options
        self.profiler = profiler
        self.message = message
        self.preloadedCPU = cpuDevice
        self.probe = probe ?? GPUProbe.forMode(options.mode, injected: gpus, environment: options.environment)
    }

    deinit {
        scheduler?.stop()
    }

    /// Plans the run for `work` (known after the walk and tokenization) and starts the chosen
    /// devices' cold starts. Under `--force-gpu` without a usable GPU this throws the cause.
    @discardableResult
    public func prepare(work: WorkSize) throws -> RoutingPlan {
        if let plan { return plan }
        if options.mode == .auto, !probe.isProbed {
            let hint = options.costModels.latest(machine: MachineIdentity.current(), model: MachineIdentity.model(at: options.modelDirectory),
                                                 engine: ColGrepVersion.string)
            if let reason = cpuWinsWithoutProbing(work, hint: hint) { return startCPUOnly(reason: reason, work: work) }
            if let hint { openOnlyTheGPUsTheRunNeeds(work, hint: hint) }
        }
        if options.mode == .forceGPU, gpus.count == 0 {
            throw ColGrepError.gpuUnavailable(gpus.unavailableReason ?? "no CUDA device")
        }
        let cpuDevice = preloadedCPU ?? BackendEncodeDevice(processor: .cpu(threads: options.hostThreads),
                                                            modelDirectory: options.modelDirectory, skipIDs: options.skipIDs)
        // Calibration only serves to choose between devices: without a GPU there is nothing to choose.
        let model = try profiler.measure("costmodel") { try loadOrCalibrate(cpu: cpuDevice, work: work, calibrate: options.mode == .auto && gpus.count > 0) }
        costModel = model
        let cached = gpus.kernelsLookCached(in: options.kernelCache.directory, headDim: headDim)
        let perGPU = gpus.count > 0 ? try options.lanesPerGPU ?? GPULanes.count(environment: options.environment) : 1
        let inputs = RoutingInputs(mode: options.mode, work: work, cpu: model?.cpu,
                                   gpus: gpus.count > 0 ? Array((model?.gpus ?? []).prefix(gpus.count)) : [],
                                   gpusAvailable: gpus.count, gpuUnavailableReason: gpus.unavailableReason,
                                   kernelsCached: cached, hostThreads: options.hostThreads, lanesPerGPU: perGPU)
        let chosen = model == nil && options.mode == .auto && gpus.count > 0
            ? RoutingPlan(choice: .cpu, gpuCount: 0, cpuThreads: options.hostThreads, estimates: [:],
                          reason: "smaller than a calibration run: not worth a GPU cold start", exploresGPU: false)
            : RoutingPlanner.plan(inputs)
        plan = chosen
        profiler.note(chosen.summary + " (work: \(work.sequences) sequences, \(work.tokens) tokens; kernels \(cached ? "cached" : "not cached"))")

        var lanes: [EncodeLane<[Int32], HostMatrix>] = []
        if chosen.choice != .cpu {
            for (index, ordinal) in gpus.ordinals.prefix(chosen.gpuCount).enumerated() {
                let group = SharedModelLanes.cuda(ordinal: ordinal, lanes: perGPU, modelDirectory: options.modelDirectory,
                                                  skipIDs: options.skipIDs, kernelCache: options.kernelCache)
                let deviceLanes = group.makeLanes()
                gpuLanes.append(deviceLanes)
                // The stored cost is the device's; each lane gets its share (lanes of a device never
                // leave work to each other: they are equally fast by construction).
                let cost = index < inputs.gpus.count ? inputs.gpus[index].runCost(kernelsCached: cached).sharedBy(lanes: perGPU) : nil
                for lane in deviceLanes {
                    lanes.append(EncodeLane(device: lane, end: .longest,
                                            tokenBudget: inputs.gpus.first?.tokenBudget ?? options.gpuTokenBudget, cost: cost))
                }
            }
            profiler.note("GPU lanes: \(perGPU) per GPU (\(GPULanes.environmentKey)), weights shared per GPU")
        }
        // Auto keeps a CPU lane whenever it uses a GPU: it encodes while the GPU starts, takes what
        // it finishes sooner, and inherits everything if the GPU fails.
        if chosen.choice == .cpu || options.mode == .auto {
            lanes.append(EncodeLane(device: cpuDevice, end: .shortest, tokenBudget: model?.cpu.tokenBudget ?? options.cpuTokenBudget,
                                    cost: chosen.choice == .cpu ? nil : model?.cpu.cost))
        }
        let notify = message
        let mode = options.mode
        scheduler = EncodeScheduler(lanes: lanes, policy: mode == .forceGPU ? .failRun : .requeue, profiler: profiler) { device, reason in
            guard device.kind == .gpu else { return }
            GPUFallbackNotice.report("colgrep: GPU \(device.id) failed (\(reason)); continuing on the CPU", to: notify)
        }
        scheduler?.start()
        return chosen
    }

    /// Encodes prepared document sequences (one matrix per sequence, in input order). Several threads
    /// may encode at once: their jobs share the devices (`EncodeScheduler`). Once `shouldStop` returns
    /// true no further batch of these sequences starts and this throws `ColGrepError.interrupted`
    /// (`EncodeScheduler.encode(_:length:shouldStop:)`).
    public func encodeDocuments(_ sequences: [[Int32]], shouldStop: (() -> Bool)? = nil) throws -> [HostMatrix] {
        let scheduler = try encodeLock.withLock { () throws -> EncodeScheduler<[Int32], HostMatrix>? in
            if plan == nil {
                try prepare(work: WorkSize(tokens: sequences.reduce(0) { $0 + $1.count }, sequences: sequences.count))
            }
            if encodesInFlight == 0 { encodingSince = ProfileClock.now() }
            encodesInFlight += 1
            return self.scheduler
        }
        // `encodeSeconds` counts the wall while any encode is in flight (overlapping jobs once).
        defer {
            encodeLock.withLock {
                encodesInFlight -= 1
                if encodesInFlight == 0 { encodeSeconds += ProfileClock.seconds(since: encodingSince) }
            }
        }
        guard let scheduler else { throw ColGrepError.other("encode router has no devices") }
        do {
            let result = try scheduler.encode(sequences, length: \.count, shouldStop: shouldStop)
            return result.outputs
        } catch let error as EncodeSchedulerError {
            if options.mode == .forceGPU { throw ColGrepError.gpuUnavailable(error.description + " (--force-gpu never falls back to the CPU)") }
            throw ColGrepError.other(error.description)
        }
    }

    /// A GPU backend for k-means and codec assignment: under `--force-gpu` always (a GPU that cannot
    /// open is an error naming the cause), in auto only when this run chose a GPU and no GPU failed
    /// (else nil: the CPU). It is a backend of its own, not an encode lane's: the index writer runs
    /// k-means while the lanes encode the next chunk, and a backend serves one thread at a time. With
    /// several GPUs in the plan, bulk assignment is split over all of them (`SplitKMeansBackend`); one
    /// that cannot open is left out with a notice, as long as the first one opens.
    public func computeBackend() throws -> (any Backend)? {
        if let computeGPU { return computeGPU }
        if scheduler?.statistics.contains(where: { $0.device.kind == .gpu && $0.failure != nil }) == true {
            if options.mode == .forceGPU, let failed = scheduler?.statistics.first(where: { $0.device.kind == .gpu && $0.failure != nil }) {
                throw ColGrepError.gpuUnavailable("\(failed.device.id): \(failed.failure ?? "failed")")
            }
            return nil
        }
        let ordinals: [Int]
        switch options.mode {
        case .forceCPU:
            return nil
        case .forceGPU:
            guard !gpus.ordinals.isEmpty else { throw ColGrepError.gpuUnavailable(gpus.unavailableReason ?? "no CUDA device") }
            ordinals = Array(gpus.ordinals.prefix(max(1, plan?.gpuCount ?? gpus.count)))
        case .auto:
            guard let plan, plan.choice != .cpu, !gpus.ordinals.isEmpty else { return nil }
            ordinals = Array(gpus.ordinals.prefix(max(1, plan.gpuCount)))
        }
        let label = ordinals.map { "cuda:\($0)" }.joined(separator: "+")
        var members: [CUDABackend] = []
        do {
            try profiler.measure("compute backend", device: label) {
                for (index, ordinal) in ordinals.enumerated() {
                    do {
                        members.append(try CUDABackend(device: ordinal, kernelCache: options.kernelCache))
                    } catch where index > 0 {
                        GPUFallbackNotice.report("colgrep: GPU cuda:\(ordinal) unavailable for k-means (\(error)); using the others", to: message)
                    }
                }
            }
        } catch {
            if options.mode == .forceGPU { throw ColGrepError.gpuUnavailable("cuda:\(ordinals[0]): \(error)") }
            GPUFallbackNotice.report("colgrep: GPU cuda:\(ordinals[0]) unavailable for k-means (\(error)); using the CPU", to: message)
            return nil
        }
        computeGPU = members.count == 1 ? members[0] : SplitKMeansBackend(members: members)
        return computeGPU
    }

    /// Stops the devices, records estimated vs actual costs, and stores what the GPUs measured.
    public func finish() {
        guard let scheduler, let plan else { return }
        scheduler.stop()
        let stats = scheduler.statistics
        var actual = String(format: "routing actual: encode %.3f s", encodeSeconds)
        if let estimate = plan.estimatedSeconds { actual += String(format: " (estimated %.3f s)", estimate) }
        for (device, laneCount) in DeviceRunStats.byDevice(stats) {
            // Swift strings never go through String(format:) (%@ is not memory-safe on Linux Foundation).
            actual += "; \(device.device.id)" + (laneCount > 1 ? " (\(laneCount) lanes, busy in lane-seconds)" : "") + ": "
                + String(format: "%d tokens, %d batches, busy %.3f s, cold start %.3f s",
                         device.tokens, device.batches, device.busySeconds, device.prepareSeconds)
            if let failure = device.failure { actual += " (failed: \(failure))" }
        }
        profiler.note(actual)
        refineCostModel()
        self.scheduler = nil
    }

    // MARK: cost model

    /// Why the CPU alone is the plan without even probing the GPUs (nil: probe). The last cost
    /// model stored on this machine for this model (any GPU) says what a GPU's cold start costs,
    /// probe included; a run the CPU finishes before that never opens the driver. Without any
    /// stored model, a run smaller than a calibration is the CPU's too.
    private func cpuWinsWithoutProbing(_ work: WorkSize, hint: CostModel?) -> String? {
        guard let hint else {
            return work.tokens <= Calibrator.cpu.totalTokens
                ? "no cost model yet and the run (\(work.tokens) tokens) is smaller than a calibration: the CPU encodes it, GPUs not probed"
                : nil
        }
        guard let gpuStart = hint.gpus.map({ $0.coldStartSeconds(kernelsCached: true) }).min() else { return nil }
        let cpu = hint.cpu.with(threads: options.hostThreads).cost.batchSeconds(tokens: work.tokens)
        guard cpu < gpuStart else { return nil }
        return String(format: "the CPU needs about %.0f ms for the whole run, less than a GPU start (%.0f ms): GPUs not probed", cpu * 1000, gpuStart * 1000)
    }

    /// With every GPU selected in a CLI process (`RunSizedGPUNarrowing.allow`), shows the
    /// driver only as many GPUs as this run's size pays for (`GPUCountPlanner`), before the probe starts
    /// it; `hint` is the last cost model stored on this machine for this model.
    private func openOnlyTheGPUsTheRunNeeds(_ work: WorkSize, hint: CostModel) {
        guard let visible = options.gpuNarrowing.narrowableCount else { return }
        let cached = GPUInventory(ordinals: [], description: hint.key.gpu, unavailableReason: nil)
            .kernelsLookCached(in: options.kernelCache.directory, headDim: headDim)
        let lanes = (try? options.lanesPerGPU ?? GPULanes.count(environment: options.environment)) ?? 1
        guard let choice = GPUCountPlanner.choose(hint: hint, visible: visible, work: work, kernelsCached: cached,
                                                  hostThreads: options.hostThreads, lanesPerGPU: lanes) else { return }
        if choice.count < visible { options.gpuNarrowing.narrow(toFirst: choice.count) }
        profiler.note(choice.summary(visible: visible, tokens: work.tokens))
    }

    /// A CPU-only plan and scheduler (no GPU touched).
    private func startCPUOnly(reason: String, work: WorkSize) -> RoutingPlan {
        let cpuDevice = preloadedCPU ?? BackendEncodeDevice(processor: .cpu(threads: options.hostThreads),
                                                            modelDirectory: options.modelDirectory, skipIDs: options.skipIDs)
        let chosen = RoutingPlan(choice: .cpu, gpuCount: 0, cpuThreads: options.hostThreads, estimates: [:], reason: reason, exploresGPU: false)
        plan = chosen
        profiler.note(chosen.summary + " (work: \(work.sequences) sequences, \(work.tokens) tokens)")
        scheduler = EncodeScheduler(lanes: [EncodeLane(device: cpuDevice, end: .shortest, tokenBudget: options.cpuTokenBudget)],
                                    policy: .requeue, profiler: profiler)
        scheduler?.start()
        return chosen
    }

    /// The stored model for this key; else, when `calibrate` (auto with a GPU) and the run is larger
    /// than a calibration, a CPU calibration with the CPU device the run uses anyway, stored for
    /// next time. Forced modes and machines without a GPU never pay a calibration.
    private func loadOrCalibrate(cpu: BackendEncodeDevice, work: WorkSize, calibrate: Bool) throws -> CostModel? {
        switch options.costModels.load(key) {
        case .found(let model):
            return model
        case .unusable(let reason):
            profiler.note("cost model: \(reason); recalibrating")
        case .missing:
            break
        }
        guard calibrate else { return nil }
        // Calibrating would encode more than the whole run: the CPU just encodes it (a GPU cold
        // start costs more than that much CPU work on any machine this targets).
        if work.tokens <= Calibrator.cpu.totalTokens {
            profiler.note("cost model: none yet; the run (\(work.tokens) tokens) is smaller than a calibration (\(Calibrator.cpu.totalTokens) tokens), so the CPU encodes it uncalibrated")
            return nil
        }
        let begin = ProfileClock.now()
        let measured = try Calibrator.cpu.measure(cpu)
        let model = CostModel(key: key, cpu: CPUCostModel(threads: options.hostThreads, tokenBudget: options.cpuTokenBudget, cost: measured.cost),
                              gpus: [], calibrationSeconds: ProfileClock.seconds(since: begin))
        profiler.note(String(format: "cost model: calibrated the CPU in %.0f ms (%.2f µs/token, model load %.0f ms)",
                             model.calibrationSeconds * 1000, measured.cost.perTokenSeconds * 1e6, measured.coldStart.totalSeconds * 1000))
        do { try options.costModels.save(model) } catch { profiler.note("cost model not saved: \(error)") }
        return model
    }

    /// Folds the GPUs' measured cold starts and real batches into the stored model. A device's batches
    /// come from all its lanes at once, so a lane's fitted cost is the device's shared by its lanes: the
    /// stored cost is the device's (`DeviceCost.sharedBy` inverted).
    private func refineCostModel() {
        let measured = gpuLanes.filter { lanes in
            SharedModelLanes.coldStartTimings(of: lanes) != nil && lanes.reduce(0) { $0 + $1.batchSamples.count } >= 2
        }
        guard !measured.isEmpty, var model = costModel ?? calibratedCPUOnlyModel() else { return }
        for lanes in measured {
            guard let timings = SharedModelLanes.coldStartTimings(of: lanes), let id = lanes.first?.info.id else { continue }
            let previous = model.gpus.first { $0.device == id }
            let laneCost = Calibrator.fit(lanes.flatMap(\.batchSamples))
            let share = Double(lanes.count)
            let cost = DeviceCost(coldStartSeconds: timings.totalSeconds, perBatchSeconds: laneCost.perBatchSeconds / share,
                                  perTokenSeconds: laneCost.perTokenSeconds / share)
            let updated = GPUCostModel(
                device: id, name: gpus.description ?? id, contextSeconds: timings.contextSeconds,
                kernelCompileSeconds: timings.kernelsCompiled ? timings.kernelSeconds : previous?.kernelCompileSeconds,
                kernelCacheLoadSeconds: timings.kernelsCompiled ? previous?.kernelCacheLoadSeconds : timings.kernelSeconds,
                weightUploadSeconds: timings.weightSeconds, tokenBudget: options.gpuTokenBudget, cost: cost, lanes: lanes.count)
            model.gpus.removeAll { $0.device == id }
            model.gpus.append(updated)
        }
        model.gpus.sort { $0.device < $1.device }
        if let perGPU = GPUProbe.driverInitSecondsPerGPU { model.driverInitSecondsPerGPU = perGPU }
        do {
            try options.costModels.save(model)
            costModel = model
        } catch {
            profiler.note("cost model not saved: \(error)")
        }
    }

    /// A forced run has no CPU figures; GPU figures are only stored next to a CPU calibration.
    private func calibratedCPUOnlyModel() -> CostModel? {
        if case .found(let model) = options.costModels.load(key) { return model }
        return nil
    }

    /// Where a one-shot CLI encodes its query: the CPU, unless the cost model says a GPU finishes a
    /// single query sooner, cold start included (it never does for a process that starts cold), or
    /// `--force-gpu`.
    public static func queryChoice(mode: AccelerationMode, queryTokens: Int, costModel: CostModel?,
                                   gpus: GPUInventory, kernelsCached: Bool, hostThreads: Int) -> RoutingChoice {
        let inputs = RoutingInputs(mode: mode, work: WorkSize(tokens: queryTokens, sequences: 1), cpu: costModel?.cpu,
                                   gpus: costModel?.gpus ?? [], gpusAvailable: gpus.count, gpuUnavailableReason: gpus.unavailableReason,
                                   kernelsCached: kernelsCached, hostThreads: hostThreads)
        let plan = RoutingPlanner.plan(inputs)
        // A query is never worth exploring an uncalibrated GPU.
        if mode == .auto, plan.exploresGPU { return .cpu }
        return plan.choice == .hybrid ? .gpu : plan.choice
    }
}
