import Encoder
import Foundation
import Tensor
import TensorCUDA

/// The product's encoder: tokenization and query encoding on a CPU `ColBERTEncoder`, document
/// encoding routed over the CPU and GPUs by an `EncodeRouter` (the same CPU model serves both, so
/// the weights are read once). Indexing calls `plan(units:estimatedTokens:)` after the walk, then
/// `encodeDocuments` per chunk, `computeBackend()` for k-means and the codec, and `finish()`.
public final class RoutedEncoder {
    public let cpuEncoder: ColBERTEncoder
    public let mode: AccelerationMode
    public let modelDirectory: URL
    public let profiler: Profiler
    private let router: EncodeRouter
    private let probe: GPUProbe
    private var gpus: GPUInventory { probe.inventory }
    private let hostThreads: Int
    private var gpuQueryEncoder: ColBERTEncoder?

    /// Loads the model on the CPU (timed as the CPU's cold start). No GPU is touched here.
    /// `preloaded`: a CPU encoder of this model folder with `hostThreads` threads, already loaded (a query
    /// server's resident one), used instead of loading the weights again.
    public init(modelDirectory: URL, mode: AccelerationMode, hostThreads: Int = UsableCores.count,
                profiler: Profiler = .shared, gpus: GPUInventory? = nil, costModels: CostModelStore? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment, preloaded: ColBERTEncoder? = nil) throws {
        self.mode = mode
        self.modelDirectory = modelDirectory
        self.profiler = profiler
        self.hostThreads = max(1, hostThreads)
        let begin = ProfileClock.now()
        cpuEncoder = try preloaded ?? ColBERTEncoder(modelDirectory: modelDirectory, backend: CPUBackend(threads: self.hostThreads))
        let loadSeconds = ProfileClock.seconds(since: begin)
        profiler.add(stage: "model load", seconds: loadSeconds, device: "cpu")
        probe = GPUProbe.forMode(mode, injected: gpus, environment: environment)
        var options = EncodeRouter.Options(mode: mode, modelDirectory: modelDirectory, skipIDs: cpuEncoder.skiplistIDs,
                                           hostThreads: self.hostThreads, environment: environment)
        if let costModels { options.costModels = costModels }
        let cpuDevice = BackendEncodeDevice(preloaded: cpuEncoder.model, threads: self.hostThreads, loadSeconds: loadSeconds,
                                            modelDirectory: modelDirectory, skipIDs: cpuEncoder.skiplistIDs)
        router = EncodeRouter(options: options, profiler: profiler, probe: probe, cpuDevice: cpuDevice)
    }

    deinit {
        router.finish()
    }

    /// The routing decision, once planned.
    public var plan: RoutingPlan? { router.plan }

    /// Plans the run from its size, known after the walk: `estimatedTokens` may come from
    /// `estimateTokens(texts:)` or a byte count, `secondsBeforeEncoding` is the least time the run works
    /// before its first batch (`WorkSize`). Starts the chosen GPUs' cold starts at once, so they
    /// overlap parsing and tokenization. Under `--force-gpu` without a GPU this throws the cause.
    @discardableResult
    public func plan(units: Int, estimatedTokens: Int, secondsBeforeEncoding: Double = 0) throws -> RoutingPlan {
        try router.prepare(work: WorkSize(tokens: estimatedTokens, sequences: units, secondsBeforeEncoding: secondsBeforeEncoding))
    }

    /// Tokens of documents as this model will see them: roughly one per 4 bytes of text, capped
    /// at the model's document length (for planning before tokenization).
    public func estimateTokens(textBytes: [Int]) -> Int {
        textBytes.reduce(0) { $0 + min(max(2, $1 / 4 + 3), cpuEncoder.documentLength) }
    }

    /// Prepared token ids of documents (timed as the "tokenize" stage).
    public func tokenizeDocuments(_ texts: [String]) -> [[Int32]] {
        let begin = ProfileClock.now()
        let ids = cpuEncoder.tokenizeDocuments(texts)
        profiler.add(stage: "tokenize", seconds: ProfileClock.seconds(since: begin), tokens: ids.reduce(0) { $0 + $1.count },
                     batches: 1)
        return ids
    }

    /// One matrix of unit vectors per document, in input order, on the planned devices.
    public func encodeDocuments(_ texts: [String]) throws -> [HostMatrix] {
        let ids = tokenizeDocuments(texts)
        return try router.encodeDocuments(ids)
    }

    /// Encodes prepared document ids on the planned devices; `shouldStop` cancels it between batches
    /// (`EncodeRouter.encodeDocuments(_:shouldStop:)`).
    public func encodeDocuments(prepared ids: [[Int32]], shouldStop: (() -> Bool)? = nil) throws -> [HostMatrix] {
        try router.encodeDocuments(ids, shouldStop: shouldStop)
    }

    /// A query's vectors: on the CPU unless the cost model says a GPU answers sooner (never for a
    /// process that starts cold) or `--force-gpu` (strict).
    public func encodeQuery(_ text: String) throws -> HostMatrix {
        let ids = cpuEncoder.tokenizeQuery(text)
        let choice = queryChoice(tokens: ids.count)
        if choice == .cpu {
            return try profiler.measure("query encode", device: "cpu") { try cpuEncoder.encode(prepared: [ids], isQuery: true)[0] }
        }
        guard let ordinal = gpus.ordinals.first else {
            throw ColGrepError.gpuUnavailable(gpus.unavailableReason ?? "no CUDA device")
        }
        do {
            if gpuQueryEncoder == nil {
                gpuQueryEncoder = try profiler.measure("query model load", device: "cuda:\(ordinal)") {
                    try ColBERTEncoder(modelDirectory: modelDirectory, backend: CUDABackend(device: ordinal))
                }
            }
            return try profiler.measure("query encode", device: "cuda:\(ordinal)") { try gpuQueryEncoder!.encode(prepared: [ids], isQuery: true)[0] }
        } catch let error as ColGrepError {
            throw error
        } catch {
            if mode == .forceGPU { throw ColGrepError.gpuUnavailable("cuda:\(ordinal): \(error)") }
            GPUFallbackNotice.report("colgrep: GPU cuda:\(ordinal) failed (\(error)); encoding the query on the CPU")
            return try cpuEncoder.encode(prepared: [ids], isQuery: true)[0]
        }
    }

    /// A warm GPU backend for k-means and codec assignment (see `EncodeRouter.computeBackend`).
    public func computeBackend() throws -> (any Backend)? {
        try router.computeBackend()
    }

    /// Stops the devices and records the routing outcome in the profile.
    public func finish() {
        router.finish()
    }

    /// Auto asks the last stored cost model first, as if its GPUs were there: when even they would
    /// not win, the GPUs are never probed (a one-shot query never pays for the driver).
    private func queryChoice(tokens: Int) -> RoutingChoice {
        if mode == .auto, !probe.isProbed {
            let hint = router.options.costModels.latest(machine: MachineIdentity.current(), model: MachineIdentity.model(at: modelDirectory),
                                                        engine: ColGrepVersion.string)
            guard let hint, !hint.gpus.isEmpty else { return .cpu }
            let assumed = GPUInventory(ordinals: Array(hint.gpus.indices), description: nil, unavailableReason: nil)
            if EncodeRouter.queryChoice(mode: mode, queryTokens: tokens, costModel: hint, gpus: assumed,
                                        kernelsCached: true, hostThreads: hostThreads) == .cpu { return .cpu }
        }
        return EncodeRouter.queryChoice(mode: mode, queryTokens: tokens, costModel: loadedCostModel(), gpus: gpus,
                                        kernelsCached: true, hostThreads: hostThreads)
    }

    private func loadedCostModel() -> CostModel? {
        router.costModel ?? {
            let key = CostModelKey(machine: MachineIdentity.current(), gpu: gpus.description ?? "none",
                                   model: MachineIdentity.model(at: modelDirectory), engine: ColGrepVersion.string)
            if case .found(let model) = router.options.costModels.load(key) { return model }
            return nil
        }()
    }
}
