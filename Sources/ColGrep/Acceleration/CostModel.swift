import Foundation

/// Everything a calibration depends on: when any part changes, the stored model is stale.
public struct CostModelKey: Codable, Hashable, Sendable {
    /// Host name, CPU model and logical core count.
    public var machine: String
    /// The GPU names in device order, or "none".
    public var gpu: String
    /// The model's identity (folder name, weight file size and modification time).
    public var model: String
    /// colgrep version and cost-model format.
    public var engine: String

    public init(machine: String, gpu: String, model: String, engine: String) {
        self.machine = machine
        self.gpu = gpu
        self.model = model
        self.engine = engine
    }

    /// The version of the stored format and of the calibration procedure.
    public static let formatVersion = 1
}

/// The CPU's measured costs at a thread count.
public struct CPUCostModel: Codable, Sendable, Equatable {
    /// Intra-op threads the figures were measured with.
    public var threads: Int
    /// Tokens per batch the CPU lane takes.
    public var tokenBudget: Int
    /// Cold start = model load (weights read and laid out); per-batch and per-token costs.
    public var cost: DeviceCost

    public init(threads: Int, tokenBudget: Int, cost: DeviceCost) {
        self.threads = threads
        self.tokenBudget = tokenBudget
        self.cost = cost
    }

    /// The same CPU with `threads` threads (a hybrid run leaves cores to feed the GPUs):
    /// per-token cost scales with the inverse of the thread count.
    public func with(threads newThreads: Int) -> CPUCostModel {
        guard newThreads != threads, newThreads > 0 else { return self }
        var scaled = self
        scaled.threads = newThreads
        scaled.cost.perTokenSeconds = cost.perTokenSeconds * Double(threads) / Double(newThreads)
        return scaled
    }
}

/// One GPU's measured costs: the cold start split into the seed's terms, then batch costs.
public struct GPUCostModel: Codable, Sendable, Equatable {
    /// `cuda:0`.
    public var device: String
    /// The device name ("NVIDIA H100 80GB HBM3").
    public var name: String
    /// Libraries, driver initialisation and context creation.
    public var contextSeconds: Double
    /// Compiling every kernel (an empty kernel cache); nil until a compile has been observed.
    public var kernelCompileSeconds: Double?
    /// Loading every kernel from the disk cache.
    public var kernelCacheLoadSeconds: Double?
    /// Uploading the model weights.
    public var weightUploadSeconds: Double
    /// Tokens per batch the GPU lane takes.
    public var tokenBudget: Int
    /// Warm per-batch and per-token costs of the whole device (`coldStartSeconds` is the warm-cache cold
    /// start): with several lanes, what the device does with all of them busy, not one lane.
    public var cost: DeviceCost
    /// Lanes the device ran with when `cost` was measured (nil: one, as before lanes existed).
    public var lanes: Int?

    public init(device: String, name: String, contextSeconds: Double, kernelCompileSeconds: Double?,
                kernelCacheLoadSeconds: Double?, weightUploadSeconds: Double, tokenBudget: Int, cost: DeviceCost, lanes: Int? = nil) {
        self.device = device
        self.name = name
        self.contextSeconds = contextSeconds
        self.kernelCompileSeconds = kernelCompileSeconds
        self.kernelCacheLoadSeconds = kernelCacheLoadSeconds
        self.weightUploadSeconds = weightUploadSeconds
        self.tokenBudget = tokenBudget
        self.cost = cost
        self.lanes = lanes
    }

    /// Cold start for this run: context + kernels (from the cache, or compiled) + weight upload.
    /// A compile never observed counts as `unmeasuredCompileSeconds`, so an empty cache is never
    /// assumed to be free.
    public func coldStartSeconds(kernelsCached: Bool) -> Double {
        let kernels = kernelsCached
            ? (kernelCacheLoadSeconds ?? kernelCompileSeconds ?? Self.unmeasuredCompileSeconds)
            : (kernelCompileSeconds ?? Self.unmeasuredCompileSeconds)
        return contextSeconds + kernels + weightUploadSeconds
    }

    /// Costs for a run with or without cached kernels.
    public func runCost(kernelsCached: Bool) -> DeviceCost {
        var run = cost
        run.coldStartSeconds = coldStartSeconds(kernelsCached: kernelsCached)
        return run
    }

    /// Stand-in for a compile that was never timed on this machine (NVRTC of our kernels takes
    /// seconds); replaced by the measurement as soon as a run compiles.
    public static let unmeasuredCompileSeconds = 10.0
}

/// The calibrated costs of this machine for one model, stored per `CostModelKey`.
public struct CostModel: Codable, Sendable, Equatable {
    public var key: CostModelKey
    public var format: Int
    public var cpu: CPUCostModel
    /// One entry per calibrated GPU (empty when none was calibrated).
    public var gpus: [GPUCostModel]
    /// How long the calibration took.
    public var calibrationSeconds: Double
    public var calibratedAt: Date
    /// The driver's initialisation (`cuInit`) divided by the GPUs it saw, from the last probe that
    /// stored this model (nil in models stored before it was kept): what each GPU opened costs before
    /// any context (`GPUCountPlanner`).
    public var driverInitSecondsPerGPU: Double?

    public init(key: CostModelKey, cpu: CPUCostModel, gpus: [GPUCostModel], calibrationSeconds: Double, calibratedAt: Date = Date(),
                driverInitSecondsPerGPU: Double? = nil) {
        self.key = key
        self.format = CostModelKey.formatVersion
        self.cpu = cpu
        self.gpus = gpus
        self.calibrationSeconds = calibrationSeconds
        self.calibratedAt = calibratedAt
        self.driverInitSecondsPerGPU = driverInitSecondsPerGPU
    }
}
