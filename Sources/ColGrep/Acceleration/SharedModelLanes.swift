import Encoder
import Foundation
import Tensor
import TensorCUDA

/// One lane's backend on a shared device, as its opener made it.
public struct OpenedLaneBackend {
    public var backend: any Backend
    /// Context and kernel steps of opening it (the weights are timed by the group).
    public var timings: ColdStartTimings
    /// Waits until everything queued on this backend is done (weights uploaded before other lanes read them).
    public var synchronize: () throws -> Void

    public init(backend: any Backend, timings: ColdStartTimings, synchronize: @escaping () throws -> Void = {}) {
        self.backend = backend
        self.timings = timings
        self.synchronize = synchronize
    }
}

/// Several encode lanes on one device sharing one model: each lane is a host thread with its own
/// backend (on a GPU: its own streams, pinned staging and activation pool), and all lanes read one copy
/// of the weights through a `ThreadRoutedBackend`. While one lane does host work (packing a batch,
/// splitting and copying out its vectors) another keeps the device busy: one host thread per GPU left
/// about 45 % of an H200 idle (session 7: 9.3M tokens/s with one thread, 16.8M with two).
///
/// The first lane to finish opening its backend loads the model through it; the others wait for that
/// load (a failed load fails every lane, with its reason). Every lane reports the device's id, so errors
/// and `--force-gpu` name the device; `DeviceInfo.lane` tells the lanes apart.
public final class SharedModelLanes: @unchecked Sendable {
    public let device: DeviceInfo
    public let modelDirectory: URL
    public let skipIDs: Set<Int32>
    /// New lanes, in order (lane `i` has `info.lane == i`); they keep the group (and so the model) alive.
    /// Ask once: each call makes lanes of their own that share this group's model.
    public func makeLanes() -> [Lane] { laneInfos.map { Lane(group: self, info: $0) } }

    private let open: (Int) throws -> OpenedLaneBackend
    private let laneInfos: [DeviceInfo]
    private let condition = NSCondition()
    private var loading = false
    private var loaded: Result<(model: ColBERTModel, router: ThreadRoutedBackend), Error>?

    /// - Parameters:
    ///   - device: the device's identity (lane 0).
    ///   - lanes: lanes to open (at least one).
    ///   - open: opens lane `i`'s backend; called on that lane's worker thread, lanes at once.
    public init(device: DeviceInfo, lanes count: Int, modelDirectory: URL, skipIDs: Set<Int32>,
                open: @escaping (Int) throws -> OpenedLaneBackend) {
        self.device = device
        self.modelDirectory = modelDirectory
        self.skipIDs = skipIDs
        self.open = open
        laneInfos = (0..<max(1, count)).map { index in
            var info = device
            info.lane = index
            return info
        }
    }

    /// GPU `ordinal` with `lanes` lanes, each its own `CUDABackend` (context, kernels from `kernelCache`,
    /// the attention kernels for the model's head size).
    public static func cuda(ordinal: Int, lanes: Int, modelDirectory: URL, skipIDs: Set<Int32>, kernelCache: KernelCache?) -> SharedModelLanes {
        SharedModelLanes(device: DeviceInfo(id: "cuda:\(ordinal)", kind: .gpu), lanes: lanes, modelDirectory: modelDirectory, skipIDs: skipIDs) { lane in
            let availability = CUDABackend.availability
            guard availability.isAvailable else { throw ColGrepError.gpuUnavailable(BackendEncodeDevice.reason(of: availability)) }
            let config = try TransformerConfig(contentsOf: modelDirectory.appendingPathComponent("config.json"))
            let cuda = try CUDABackend(device: ordinal, kernelCache: kernelCache)
            try cuda.prepare(headDims: [config.headDim])
            // The availability probe opened the driver and the first context: lane 0's cold start.
            return OpenedLaneBackend(backend: cuda,
                                     timings: ColdStartTimings(startupOf: cuda, probeSeconds: lane == 0 ? CUDABackend.probeSeconds : 0),
                                     synchronize: { try cuda.synchronize() })
        }
    }

    /// The shared model, loaded through `backend` by the first lane that asks; the others wait for it.
    fileprivate func model(loadingThrough opened: OpenedLaneBackend) throws -> (model: ColBERTModel, router: ThreadRoutedBackend, weightSeconds: Double) {
        condition.lock()
        while loading { condition.wait() }
        if let loaded {
            condition.unlock()
            let value = try loaded.get()
            return (value.model, value.router, 0)
        }
        loading = true
        condition.unlock()
        let begin = ProfileClock.now()
        let result = Result { () throws -> (model: ColBERTModel, router: ThreadRoutedBackend) in
            let router = ThreadRoutedBackend(unbound: opened.backend)
            let model = try router.with(opened.backend) { try ColBERTModel(modelDirectory: modelDirectory, backend: router) }
            try opened.synchronize()
            return (model, router)
        }
        let seconds = ProfileClock.seconds(since: begin)
        condition.lock()
        loaded = result
        loading = false
        condition.broadcast()
        condition.unlock()
        let value = try result.get()
        return (value.model, value.router, seconds)
    }

    /// The cold start of a device from its lanes: the lane that loaded the weights (its context, kernels
    /// and the upload); nil before that lane is ready.
    public static func coldStartTimings(of lanes: [Lane]) -> ColdStartTimings? {
        lanes.compactMap(\.coldStartTimings).max { $0.weightSeconds < $1.weightSeconds }
    }

    /// One lane of the device: an encode device whose calls run on the lane's own backend.
    public final class Lane: EncodeDevice, @unchecked Sendable {
        public typealias Item = [Int32]
        public typealias Output = HostMatrix

        public let info: DeviceInfo
        fileprivate let group: SharedModelLanes
        private var opened: OpenedLaneBackend?
        private var model: ColBERTModel?
        private var router: ThreadRoutedBackend?
        public private(set) var coldStartTimings: ColdStartTimings?
        public private(set) var batchSamples: [CalibrationSample] = []

        fileprivate init(group: SharedModelLanes, info: DeviceInfo) {
            self.group = group
            self.info = info
        }

        /// This lane's backend (nil before its cold start).
        public var backend: (any Backend)? { opened?.backend }
        /// The model every lane of the device reads (nil before this lane's cold start).
        public var sharedModel: ColBERTModel? { model }

        /// Opens this lane's backend, then takes the shared model (loading it if no lane has yet).
        public func prepare() throws {
            guard model == nil else { return }
            let lane = try opened ?? group.open(info.lane)
            opened = lane
            let shared = try group.model(loadingThrough: lane)
            var timings = lane.timings
            timings.weightSeconds = shared.weightSeconds
            coldStartTimings = timings
            router = shared.router
            model = shared.model
        }

        /// One matrix per sequence of `block`, copied out on every core when the block is large (a 384-d
        /// batch of 64k tokens is 100 MB), after which the block (and its pinned buffer) is released.
        static func split(_ block: HostRowBlock) -> [HostMatrix] {
            guard block.rows * block.cols >= 1 << 21 else { return block.matrices() }
            return Array(0..<block.groupCount).parallelMap(minimumCount: 64) { block.matrix($0) }
        }

        public func encode(_ items: [[Int32]]) throws -> [HostMatrix] {
            guard let model, let router, let backend = opened?.backend else {
                throw ColGrepError.other("\(info.laneLabel) was used before its cold start")
            }
            let tokens = items.reduce(0) { $0 + $1.count }
            let begin = ProfileClock.now()
            // The scheduler already sized the batch: one packed batch, its kept rows gathered and widened to fp32
            // on the device and copied by DMA into one reused pinned block, then split per sequence. The
            // per-sequence download (`ColBERTModel.encode`) widened and gathered every row on this thread:
            // host work that kept a lane's GPU idle (one lane 9.4M tokens/s against 14.5M for the block path, Ettin shape).
            let block = try router.with(backend) { try model.embedRows(PackedBatch(sequences: items), dropping: group.skipIDs) }
            let vectors = Self.split(block)
            if batchSamples.count < 512 {
                batchSamples.append(CalibrationSample(tokens: tokens, seconds: ProfileClock.seconds(since: begin)))
            }
            return vectors
        }
    }
}
