import Encoder
import Foundation
import Tensor
import TensorCUDA

/// Which processor a `BackendEncodeDevice` runs on.
public enum Processor: Sendable, Equatable, CustomStringConvertible {
    /// The CPU backend with this many intra-op threads.
    case cpu(threads: Int)
    /// CUDA device `ordinal` (among those `CUDA_VISIBLE_DEVICES` leaves visible).
    case cuda(ordinal: Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let ordinal): return "cuda:\(ordinal)"
        }
    }
}

/// The ColBERT model on one backend, as an encode device and a calibration target: its cold start
/// opens the backend and loads the weights onto it (for CUDA: context, kernels from the cache or
/// compiled, weight upload, attention kernels for the model's head size), timed step by step.
public final class BackendEncodeDevice: EncodeDevice, CalibrationTarget, @unchecked Sendable {
    public typealias Item = [Int32]
    public typealias Output = HostMatrix

    public let info: DeviceInfo
    public let processor: Processor
    public let modelDirectory: URL
    /// Token ids whose rows documents drop (ColBERT's skiplist).
    public let skipIDs: Set<Int32>
    /// Where compiled kernels are cached (CUDA only); nil compiles every time.
    public let kernelCache: KernelCache?

    public private(set) var model: ColBERTModel?
    public private(set) var backend: (any Backend)?
    public private(set) var coldStartTimings: ColdStartTimings?
    /// The CUDA backend's own start-up steps (for warm-cache's report).
    public private(set) var startupSteps: [String] = []
    /// (tokens, seconds) of the real batches encoded so far (the first 512), to refine the cost model.
    public private(set) var batchSamples: [CalibrationSample] = []

    public init(processor: Processor, modelDirectory: URL, skipIDs: Set<Int32>,
                kernelCache: KernelCache? = KernelCache(directory: KernelCache.defaultDirectory())) {
        self.processor = processor
        self.modelDirectory = modelDirectory
        self.skipIDs = skipIDs
        self.kernelCache = kernelCache
        switch processor {
        case .cpu: info = DeviceInfo(id: "cpu", kind: .cpu)
        case .cuda(let ordinal): info = DeviceInfo(id: "cuda:\(ordinal)", kind: .gpu)
        }
    }

    /// A CPU device around a model already loaded (the product's CPU encoder, which also
    /// tokenizes), so the weights are read once; `loadSeconds` is what that load took.
    public init(preloaded model: ColBERTModel, threads: Int, loadSeconds: Double, modelDirectory: URL, skipIDs: Set<Int32>) {
        self.processor = .cpu(threads: threads)
        self.modelDirectory = modelDirectory
        self.skipIDs = skipIDs
        self.kernelCache = nil
        self.info = DeviceInfo(id: "cpu", kind: .cpu)
        self.model = model
        self.backend = model.backend
        self.coldStartTimings = ColdStartTimings(weightSeconds: loadSeconds)
    }

    public func prepare() throws {
        if model == nil { _ = try coldStart() }
    }

    /// Loads or compiles what an index build runs on this device besides the encoder (the GPU's k-means and
    /// nearest-centroid kernels for the model's output width). Returns the step (with "compiled" in it when
    /// the kernel cache did not have it), or nil on the CPU, which has nothing to compile.
    public func prepareIndexBuildKernels() throws -> String? {
        try prepare()
        guard let cuda = backend as? CUDABackend, let model else { return nil }
        return try cuda.prepareKMeans(dim: model.dimension)?.description
    }

    /// Times (or finds in the kernel cache) cuBLASLt's algorithm for every GEMM of the model at each power-of-two
    /// row bucket an encode of `tokenBudget`-token batches reaches, by encoding one synthetic batch per bucket on
    /// cuBLASLt: the first index after warm-cache then times nothing. Returns how many shapes were timed (and kept in
    /// the cache) and how many came from the cache, or nil on the CPU.
    public func prepareMatmulChoices(tokenBudget: Int) throws -> (timed: Int, loaded: Int)? {
        try prepare()
        guard let cuda = backend as? CUDABackend else { return nil }
        try cuda.waitForCuBLASLt()
        let before = CUDABackend.cuBLASLtTuningCounts
        let length = 256
        var rows = tokenBudget
        while rows >= CUDABackend.cuBLASLtTunedMinimumRows, rows >= length {
            try encodeSynthetic(count: rows / length, length: length)
            rows /= 2
        }
        let after = CUDABackend.cuBLASLtTuningCounts
        return (after.timed - before.timed, after.loaded - before.loaded)
    }

    public func coldStart() throws -> ColdStartTimings {
        if let coldStartTimings, model != nil { return coldStartTimings }
        let timings: ColdStartTimings
        switch processor {
        case .cpu(let threads):
            let begin = ProfileClock.now()
            let cpu = CPUBackend(threads: threads)
            let loaded = try ColBERTModel(modelDirectory: modelDirectory, backend: cpu)
            timings = ColdStartTimings(weightSeconds: ProfileClock.seconds(since: begin))
            backend = cpu
            model = loaded
        case .cuda(let ordinal):
            let availability = CUDABackend.availability
            guard availability.isAvailable else { throw ColGrepError.gpuUnavailable(Self.reason(of: availability)) }
            let cuda = try CUDABackend(device: ordinal, kernelCache: kernelCache)
            // The availability probe above opened the driver and the context: part of the cold start.
            var steps = ColdStartTimings(startupOf: cuda, probeSeconds: CUDABackend.probeSeconds)
            let weightsBegin = ProfileClock.now()
            let loaded = try ColBERTModel(modelDirectory: modelDirectory, backend: cuda)
            try cuda.synchronize()
            steps.weightSeconds = ProfileClock.seconds(since: weightsBegin)
            let before = cuda.startupSteps.count
            let kernelsBegin = ProfileClock.now()
            try cuda.prepare(headDims: [loaded.backbone.config.headDim])
            steps.kernelSeconds += ProfileClock.seconds(since: kernelsBegin)
            steps.kernelsCompiled = steps.kernelsCompiled || cuda.startupSteps[before...].contains { $0.step.contains("compiled") }
            startupSteps = cuda.startupSteps.map(\.description)
                + [String(format: "weights (read and upload): %.1f ms", steps.weightSeconds * 1000)]
            timings = steps
            backend = cuda
            model = loaded
        }
        coldStartTimings = timings
        return timings
    }

    public func encode(_ items: [[Int32]]) throws -> [HostMatrix] {
        guard let model else { throw ColGrepError.other("\(info.id) was used before its cold start") }
        let tokens = items.reduce(0) { $0 + $1.count }
        let begin = ProfileClock.now()
        // The scheduler already sized the batch: pack it as one.
        let vectors = try model.encode(items, dropping: skipIDs, batcher: TokenBudgetBatcher(tokenBudget: max(tokens, 1)))
        if batchSamples.count < 512 {
            batchSamples.append(CalibrationSample(tokens: tokens, seconds: ProfileClock.seconds(since: begin)))
        }
        return vectors
    }

    public func encodeSynthetic(count: Int, length: Int) throws {
        guard let model else { throw ColGrepError.other("\(info.id) was used before its cold start") }
        let vocabulary = max(2, model.backbone.config.vocabSize)
        var state = UInt64(count &* 31 &+ length)
        let sequences = (0..<count).map { _ in
            (0..<length).map { _ -> Int32 in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int32((state >> 33) % UInt64(vocabulary))
            }
        }
        if case .cuda = processor {
            // The GPU lanes' path (`SharedModelLanes.Lane.encode`): one block per batch, split per sequence.
            // The per-sequence download widened every row on the host and made warm-cache's figures 3–5× too
            // slow for the lanes, so auto planned CPU + GPU where the GPU alone was faster (route-2).
            _ = SharedModelLanes.Lane.split(try model.embedRows(PackedBatch(sequences: sequences)))
        } else {
            _ = try model.encode(sequences, batcher: TokenBudgetBatcher(tokenBudget: count * length))
        }
    }

    static func reason(of availability: CUDAAvailability) -> String {
        if case .unavailable(let reason) = availability { return reason }
        return availability.description
    }
}

extension ColdStartTimings {
    /// A CUDA backend's start-up steps so far, split into kernels (loaded or compiled) and the rest
    /// (libraries, driver, context), plus `probeSeconds` that the availability probe spent before it.
    init(startupOf cuda: CUDABackend, probeSeconds: Double) {
        var context = probeSeconds, kernels = 0.0, compiled = false
        for step in cuda.startupSteps {
            if step.step.contains("kernels") {
                kernels += step.seconds
                compiled = compiled || step.step.contains("compiled")
            } else {
                context += step.seconds
            }
        }
        self.init(contextSeconds: context, kernelSeconds: kernels, kernelsCompiled: compiled, weightSeconds: 0)
    }
}
