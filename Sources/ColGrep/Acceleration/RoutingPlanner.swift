/// The work of one encode run, known after the walk and tokenization.
public struct WorkSize: Sendable, Equatable {
    public var tokens: Int
    public var sequences: Int
    /// The least the run spends before its first batch can encode (parsing and linking callers), which
    /// the GPUs' driver initialisation runs beside (`GPUCountPlanner`); 0 where unknown.
    public var secondsBeforeEncoding: Double

    public init(tokens: Int, sequences: Int, secondsBeforeEncoding: Double = 0) {
        self.tokens = tokens
        self.sequences = sequences
        self.secondsBeforeEncoding = secondsBeforeEncoding
    }
}

/// Which devices a run encodes on.
public enum RoutingChoice: String, Sendable, Equatable, Codable {
    case cpu
    case gpu
    /// CPU workers and GPU(s) together, from one queue.
    case hybrid
}

/// The planner's decision with the estimates it compared.
public struct RoutingPlan: Sendable, Equatable {
    public var choice: RoutingChoice
    /// GPUs used (0 for `.cpu`).
    public var gpuCount: Int
    /// Intra-op threads of the CPU lane (0 for `.gpu`).
    public var cpuThreads: Int
    /// Estimated seconds of each option that was possible.
    public var estimates: [RoutingChoice: Double]
    /// Why this choice, in words.
    public var reason: String
    /// True when the GPU had no calibration yet: it joins as an extra lane whose cold start and
    /// batches are measured in this run while the CPU already encodes.
    public var exploresGPU: Bool

    /// The estimate of the chosen option, if it was estimated.
    public var estimatedSeconds: Double? { estimates[choice] }

    /// One line for the profile: decision, estimates, reason.
    public var summary: String {
        let order: [RoutingChoice] = [.cpu, .gpu, .hybrid]
        let figures = order.compactMap { option in estimates[option].map { "\(option.rawValue) \(ProfileFormat.seconds($0).trimmingCharacters(in: .whitespaces))" } }
        let devices = switch choice {
        case .cpu: "cpu \(cpuThreads) threads"
        case .gpu: "\(gpuCount) GPU"
        case .hybrid: "cpu \(cpuThreads) threads + \(gpuCount) GPU"
        }
        return "routing: \(choice.rawValue) (\(devices)); estimated " + (figures.isEmpty ? "-" : figures.joined(separator: ", ")) + "; \(reason)"
    }
}

/// What the planner knows about this run and machine.
public struct RoutingInputs: Sendable {
    public var mode: AccelerationMode
    public var work: WorkSize
    /// The CPU's calibrated costs (always known in auto: calibrating it takes a few hundred ms).
    public var cpu: CPUCostModel?
    /// Calibrated GPUs that are usable in this process (empty when none or not calibrated yet).
    public var gpus: [GPUCostModel]
    /// GPUs usable in this process.
    public var gpusAvailable: Int
    /// Why no GPU is usable, when `gpusAvailable` is 0.
    public var gpuUnavailableReason: String?
    /// Whether the kernels are in the disk cache (decides compile vs load in the cold start).
    public var kernelsCached: Bool
    /// Cores of this host.
    public var hostThreads: Int
    /// Encode lanes (host threads) each GPU takes (`GPULanes`).
    public var lanesPerGPU: Int

    public init(mode: AccelerationMode, work: WorkSize, cpu: CPUCostModel?, gpus: [GPUCostModel], gpusAvailable: Int,
                gpuUnavailableReason: String? = nil, kernelsCached: Bool, hostThreads: Int, lanesPerGPU: Int = 1) {
        self.mode = mode
        self.work = work
        self.cpu = cpu
        self.gpus = gpus
        self.gpusAvailable = gpusAvailable
        self.gpuUnavailableReason = gpuUnavailableReason
        self.kernelsCached = kernelsCached
        self.hostThreads = hostThreads
        self.lanesPerGPU = max(1, lanesPerGPU)
    }
}

/// Picks CPU only, GPU only or both for one run from the measured cost model.
///
/// Single devices cost `cold start + batches × per-batch + tokens × per-token`. Together, every
/// device starts after its own cold start (they overlap) and the queue drains at the sum of their
/// rates; the run ends when the tokens are done, plus half a batch of tail. In a hybrid run each
/// GPU keeps its lanes' host threads to feed it, so the CPU lane has fewer threads.
public enum RoutingPlanner {
    /// Without a GPU calibration, a run the CPU finishes sooner than this never starts a GPU: a GPU
    /// cold start (driver, context, kernels, weights) is of this order even with warm caches.
    public static let explorationThresholdSeconds = 2.0

    /// Hybrid must beat the best single device by this factor: two kinds of workers contend for
    /// the host (tokenization, memory bandwidth) in ways the model does not capture.
    public static let hybridMargin = 0.97

    public static func plan(_ inputs: RoutingInputs) -> RoutingPlan {
        let host = max(1, inputs.hostThreads)
        switch inputs.mode {
        case .forceCPU:
            return RoutingPlan(choice: .cpu, gpuCount: 0, cpuThreads: host, estimates: cpuEstimate(inputs).map { [.cpu: $0] } ?? [:],
                               reason: "--force-cpu", exploresGPU: false)
        case .forceGPU:
            let count = max(1, inputs.gpusAvailable)
            var estimates: [RoutingChoice: Double] = [:]
            if let gpu = gpuEstimate(inputs, count: count) { estimates[.gpu] = gpu }
            return RoutingPlan(choice: .gpu, gpuCount: count, cpuThreads: 0, estimates: estimates, reason: "--force-gpu",
                               exploresGPU: inputs.gpus.isEmpty)
        case .auto:
            return planAuto(inputs, host: host)
        }
    }

    private static func planAuto(_ inputs: RoutingInputs, host: Int) -> RoutingPlan {
        let cpuOnly = cpuEstimate(inputs)
        func cpuPlan(_ reason: String, _ estimates: [RoutingChoice: Double]) -> RoutingPlan {
            RoutingPlan(choice: .cpu, gpuCount: 0, cpuThreads: host, estimates: estimates, reason: reason, exploresGPU: false)
        }
        let cpuEstimates: [RoutingChoice: Double] = cpuOnly.map { [.cpu: $0] } ?? [:]
        guard inputs.gpusAvailable > 0 else {
            return cpuPlan(inputs.gpuUnavailableReason.map { "GPU unavailable: \($0)" } ?? "no GPU", cpuEstimates)
        }
        guard inputs.work.tokens > 0 else { return cpuPlan("nothing to encode", cpuEstimates) }
        guard let cpuSeconds = cpuOnly else {
            // No CPU figures: never the case after calibration, but the GPU is the safe bet only
            // with its own figures, so start both and let the queue balance them.
            return RoutingPlan(choice: .hybrid, gpuCount: inputs.gpusAvailable, cpuThreads: max(1, host - inputs.gpusAvailable * inputs.lanesPerGPU),
                               estimates: [:], reason: "no calibration yet: CPU and GPU share the queue", exploresGPU: inputs.gpus.isEmpty)
        }
        if inputs.gpus.isEmpty {
            if cpuSeconds < explorationThresholdSeconds {
                return cpuPlan("GPU not calibrated yet and the CPU finishes first (under \(explorationThresholdSeconds) s)", cpuEstimates)
            }
            return RoutingPlan(choice: .hybrid, gpuCount: inputs.gpusAvailable, cpuThreads: max(1, host - inputs.gpusAvailable * inputs.lanesPerGPU),
                               estimates: cpuEstimates, reason: "GPU not calibrated yet: it joins the CPU and is measured in this run",
                               exploresGPU: true)
        }
        let count = min(inputs.gpusAvailable, inputs.gpus.count)
        var estimates = cpuEstimates
        let gpuSeconds = gpuEstimate(inputs, count: count)!
        estimates[.gpu] = gpuSeconds
        let hybridThreads = max(1, host - count * inputs.lanesPerGPU)
        let hybridSeconds = hybridEstimate(inputs, gpuCount: count, cpuThreads: hybridThreads)
        estimates[.hybrid] = hybridSeconds
        let bestSingle = min(cpuSeconds, gpuSeconds)
        if hybridSeconds < bestSingle * hybridMargin {
            return RoutingPlan(choice: .hybrid, gpuCount: count, cpuThreads: hybridThreads, estimates: estimates,
                               reason: "CPU and GPU together finish first", exploresGPU: false)
        }
        if gpuSeconds < cpuSeconds {
            return RoutingPlan(choice: .gpu, gpuCount: count, cpuThreads: 0, estimates: estimates,
                               reason: "the GPU finishes first, cold start included", exploresGPU: false)
        }
        return cpuPlan("the CPU finishes before the GPU's cold start pays off", estimates)
    }

    static func cpuEstimate(_ inputs: RoutingInputs) -> Double? {
        guard let cpu = inputs.cpu else { return nil }
        let model = cpu.with(threads: max(1, inputs.hostThreads))
        return model.cost.runSeconds(tokens: inputs.work.tokens, tokenBudget: model.tokenBudget)
    }

    static func gpuEstimate(_ inputs: RoutingInputs, count: Int) -> Double? {
        guard !inputs.gpus.isEmpty, count > 0 else { return nil }
        let lanes = inputs.gpus.prefix(count).map { gpu in
            Lane(cost: gpu.runCost(kernelsCached: inputs.kernelsCached), budget: gpu.tokenBudget)
        }
        return drainSeconds(tokens: inputs.work.tokens, lanes: Array(lanes))
    }

    static func hybridEstimate(_ inputs: RoutingInputs, gpuCount: Int, cpuThreads: Int) -> Double {
        var lanes = inputs.gpus.prefix(gpuCount).map { gpu in
            Lane(cost: gpu.runCost(kernelsCached: inputs.kernelsCached), budget: gpu.tokenBudget)
        }
        if let cpu = inputs.cpu?.with(threads: cpuThreads) {
            lanes.append(Lane(cost: cpu.cost, budget: cpu.tokenBudget))
        }
        return drainSeconds(tokens: inputs.work.tokens, lanes: lanes)
    }

    struct Lane {
        var cost: DeviceCost
        var budget: Int
        var rate: Double { cost.throughput(tokenBudget: budget) }
        var start: Double { cost.coldStartSeconds }
    }

    /// When a queue of `tokens` drains with lanes that start after their cold starts and then run
    /// at their rates, plus half a batch of tail (the last batch of the slowest lane in use).
    static func drainSeconds(tokens: Int, lanes: [Lane]) -> Double {
        guard tokens > 0, !lanes.isEmpty else { return 0 }
        if lanes.count == 1 { return lanes[0].cost.runSeconds(tokens: tokens, tokenBudget: lanes[0].budget) }
        let sorted = lanes.sorted { $0.start < $1.start }
        var rateSum = 0.0
        var weightedStart = 0.0
        for (index, lane) in sorted.enumerated() {
            rateSum += lane.rate
            weightedStart += lane.rate * lane.start
            let finish = (Double(tokens) + weightedStart) / rateSum
            let nextStart = index + 1 < sorted.count ? sorted[index + 1].start : .infinity
            if finish <= nextStart {
                let used = sorted.prefix(index + 1)
                let tail = used.map { $0.cost.batchSeconds(tokens: min(tokens, $0.budget)) }.max() ?? 0
                return finish + tail / 2
            }
        }
        return .infinity
    }
}
