/// Which kind of processor a device is; the planner and the cost model treat the kinds differently
/// (a GPU pays a cold start, a CPU does not).
public enum DeviceKind: String, Codable, Sendable, Equatable {
    case cpu
    case gpu
}

/// A device's identity in reports and errors: `cpu`, `cuda:0`, `cuda:1`, and which of its encode lanes
/// (host threads with their own streams) this is. Errors and `--force-gpu` name the device (`id`);
/// lanes of one device share its weights and its throughput.
public struct DeviceInfo: Sendable, Hashable, CustomStringConvertible {
    public var id: String
    public var kind: DeviceKind
    /// The lane of the device (0 for a device with one lane).
    public var lane: Int

    public init(id: String, kind: DeviceKind, lane: Int = 0) {
        self.id = id
        self.kind = kind
        self.lane = lane
    }

    public var description: String { id }

    /// `cuda:0` for lane 0, `cuda:0/1` for lane 1 (thread names, per-lane reports).
    public var laneLabel: String { lane == 0 ? id : "\(id)/\(lane)" }
}

/// One device able to encode batches of items (token sequences): a CPU backend, one GPU, or a
/// simulated device in tests. The scheduler calls every method of one device from that device's own
/// worker thread.
public protocol EncodeDevice<Item, Output>: AnyObject {
    associatedtype Item
    associatedtype Output

    var info: DeviceInfo { get }

    /// The cold start (context, kernels, weight upload), run once on the worker thread before the
    /// first batch, so a GPU warms up while the CPU already encodes.
    func prepare() throws

    /// Encodes one batch; returns one output per item, in order.
    func encode(_ items: [Item]) throws -> [Output]
}

/// Which end of the length-sorted queue a device takes its batches from.
public enum QueueEnd: Sendable, Equatable {
    /// The longest sequences first (a GPU: long sequences have the most work per launch).
    case longest
    /// The shortest sequences first (CPU workers).
    case shortest
}

/// A device with the way it takes work from the shared queue.
public struct EncodeLane<Item, Output> {
    public var device: any EncodeDevice<Item, Output>
    /// Which end of the queue this device takes from.
    public var end: QueueEnd
    /// Tokens per batch this device takes (at least one sequence, even when longer).
    public var tokenBudget: Int
    /// Estimated cost on this device; with it a device leaves a batch to a busy device that would
    /// finish it sooner (the end of a run), without it the device always takes work.
    public var cost: DeviceCost?

    public init(device: any EncodeDevice<Item, Output>, end: QueueEnd, tokenBudget: Int, cost: DeviceCost? = nil) {
        self.device = device
        self.end = end
        self.tokenBudget = max(1, tokenBudget)
        self.cost = cost
    }
}
