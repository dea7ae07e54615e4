import Foundation

/// What the scheduler does when a device fails (its cold start or a batch).
public enum DeviceFailurePolicy: Sendable, Equatable {
    /// Auto mode: the device's batch goes back into the queue, the device leaves the run, the others
    /// finish it. The run fails only when every device has failed.
    case requeue
    /// `--force-gpu`: the run fails at once, naming the device and the cause.
    case failRun
}

/// Why an encode run failed.
public enum EncodeSchedulerError: Error, CustomStringConvertible, Equatable {
    /// A device failed under `DeviceFailurePolicy.failRun`.
    case deviceFailed(device: String, reason: String)
    /// Every device failed; each with its reason.
    case allDevicesFailed([String])
    /// A device returned the wrong number of outputs for a batch (a bug in that device).
    case wrongOutputCount(device: String, expected: Int, got: Int)

    public var description: String {
        switch self {
        case .deviceFailed(let device, let reason):
            return "encoding failed on \(device): \(reason)"
        case .allDevicesFailed(let reasons):
            return "encoding failed on every device: " + reasons.joined(separator: "; ")
        case .wrongOutputCount(let device, let expected, let got):
            return "device \(device) returned \(got) embeddings for a batch of \(expected) sequences"
        }
    }
}

/// What one device did during a run.
public struct DeviceRunStats: Sendable, Equatable {
    public var device: DeviceInfo
    /// Seconds spent in `prepare()` (cold start).
    public var prepareSeconds: Double = 0
    /// Seconds spent encoding batches.
    public var busySeconds: Double = 0
    public var tokens: Int = 0
    public var batches: Int = 0
    public var sequences: Int = 0
    /// Why the device left the run, when it failed.
    public var failure: String?

    public init(device: DeviceInfo) {
        self.device = device
    }
}

/// The outputs of a run in input order, and what each device did.
public struct EncodeRunResult<Output> {
    public var outputs: [Output]
    public var devices: [DeviceRunStats]
    public var wallSeconds: Double
}

/// Encodes sequences on several devices at once from one length-sorted queue.
///
/// Every device has a worker thread. A worker first runs its device's cold start, then repeatedly
/// takes one token-budget batch from its end of the queue (GPUs the long end, CPU workers the short
/// end) and encodes it. Near the end of a run a worker whose cost model says that a busy device would
/// finish the next batch sooner leaves it to that device instead of holding the run up. Outputs are
/// written at their input positions, so the result is in input order whatever the split; each
/// sequence is encoded exactly once by a device that succeeded.
public final class EncodeScheduler<Output>: @unchecked Sendable {
    private let lengths: [Int]
    private let lanes: [EncodeLane<Output>]
    private let policy: DeviceFailurePolicy
    private let profiler: Profiler
    private let onDeviceDropped: (@Sendable (DeviceInfo, String) -> Void)?

    // Shared state, guarded by `condition`.
    private let condition = NSCondition()
    private var queue: LengthSortedQueue
    private var outputs: [Output?]
    private var states: [LaneState]
    private var stats: [DeviceRunStats]
    private var fatal: EncodeSchedulerError?

    private enum LaneState {
        /// Cold start in progress; ready at about this time (monotonic seconds).
        case preparing(readyAt: Double)
        /// Encoding a batch; free at about this time.
        case busy(freeAt: Double)
        /// Waiting for work or leaving a batch to a faster busy device.
        case idle
        case failed
        case done

        var isWorking: Bool {
            switch self {
            case .preparing, .busy: return true
            default: return false
            }
        }
    }

    /// - Parameters:
    ///   - lengths: tokens of each sequence, in input order.
    ///   - lanes: the devices and how they take work.
    ///   - policy: what a device failure does.
    ///   - onDeviceDropped: called once per device that leaves the run under `.requeue`, with the reason.
    public init(lengths: [Int], lanes: [EncodeLane<Output>], policy: DeviceFailurePolicy,
                profiler: Profiler = .shared, onDeviceDropped: (@Sendable (DeviceInfo, String) -> Void)? = nil) {
        self.lengths = lengths
        self.lanes = lanes
        self.policy = policy
        self.profiler = profiler
        self.onDeviceDropped = onDeviceDropped
        self.queue = LengthSortedQueue(lengths: lengths)
        self.outputs = Array(repeating: nil, count: lengths.count)
        self.states = Array(repeating: .idle, count: lanes.count)
        self.stats = lanes.map { DeviceRunStats(device: $0.device.info) }
    }

    /// Runs every lane to completion; returns the outputs in input order.
    public func run() throws -> EncodeRunResult<Output> {
        let begin = ProfileClock.now()
        guard !lengths.isEmpty else {
            return EncodeRunResult(outputs: [], devices: stats, wallSeconds: 0)
        }
        guard !lanes.isEmpty else {
            throw EncodeSchedulerError.allDevicesFailed(["no device to encode on"])
        }
        // Every device counts as working from the start, so no device mistakes another's thread not
        // having started yet for an idle device.
        condition.lock()
        let start = now()
        for lane in lanes.indices {
            states[lane] = .preparing(readyAt: start + (lanes[lane].cost?.coldStartSeconds ?? 0))
        }
        condition.unlock()
        let group = DispatchGroup()
        for lane in lanes.indices {
            group.enter()
            let thread = Thread { [self] in
                work(lane: lane)
                group.leave()
            }
            thread.name = "colgrep-encode-\(lanes[lane].device.info.id)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()

        condition.lock()
        defer { condition.unlock() }
        if let fatal { throw fatal }
        guard queue.isEmpty, outputs.allSatisfy({ $0 != nil }) else {
            throw EncodeSchedulerError.allDevicesFailed(stats.map { "\($0.device.id): \($0.failure ?? "stopped")" })
        }
        return EncodeRunResult(outputs: outputs.map { $0! }, devices: stats, wallSeconds: ProfileClock.seconds(since: begin))
    }

    // MARK: worker

    /// A finished batch, recorded under the lock in the same step that picks the next one, so a
    /// device never looks idle to the others between two batches.
    private struct Completed {
        var batch: [Int]
        var outputs: [Output]
        var tokens: Int
        var seconds: Double
    }

    private func work(lane: Int) {
        let device = lanes[lane].device
        let info = device.info
        let prepareBegin = ProfileClock.now()
        do {
            try device.prepare()
        } catch {
            fail(lane: lane, batch: nil, reason: Self.reason(error))
            return
        }
        let prepareSeconds = ProfileClock.seconds(since: prepareBegin)
        profiler.add(stage: "encode.prepare", seconds: prepareSeconds, device: info.id)
        condition.lock()
        stats[lane].prepareSeconds = prepareSeconds
        condition.unlock()

        var completed: Completed?
        while let batch = nextBatch(lane: lane, recording: completed) {
            completed = nil
            let tokens = batch.reduce(0) { $0 + lengths[$1] }
            let begin = ProfileClock.now()
            let encoded: [Output]
            do {
                encoded = try device.encode(batch)
            } catch {
                fail(lane: lane, batch: batch, reason: Self.reason(error))
                return
            }
            let seconds = ProfileClock.seconds(since: begin)
            guard encoded.count == batch.count else {
                let error = EncodeSchedulerError.wrongOutputCount(device: info.id, expected: batch.count, got: encoded.count)
                fail(lane: lane, batch: batch, reason: error.description)
                return
            }
            profiler.add(stage: "encode", seconds: seconds, tokens: tokens, batches: 1, device: info.id)
            completed = Completed(batch: batch, outputs: encoded, tokens: tokens, seconds: seconds)
        }
    }

    /// Records `completed` (this lane's previous batch), then returns the next batch for `lane`, or
    /// nil when the run is over for it. Blocks while the queue is empty but other devices still hold
    /// batches (they may fail and give them back), and while a working device would finish the next
    /// batch sooner than this one.
    private func nextBatch(lane: Int, recording completed: Completed?) -> [Int]? {
        condition.lock()
        defer { condition.unlock() }
        if let completed {
            for (position, output) in zip(completed.batch, completed.outputs) { outputs[position] = output }
            stats[lane].busySeconds += completed.seconds
            stats[lane].tokens += completed.tokens
            stats[lane].batches += 1
            stats[lane].sequences += completed.batch.count
        }
        states[lane] = .idle
        condition.broadcast()
        while true {
            if fatal != nil {
                states[lane] = .done
                return nil
            }
            let othersWorking = states.indices.contains { $0 != lane && states[$0].isWorking }
            if queue.isEmpty {
                if !othersWorking {
                    states[lane] = .done
                    condition.broadcast()
                    return nil
                }
                condition.wait()
                continue
            }
            if othersWorking, shouldLeaveNextBatch(lane: lane) {
                condition.wait()
                continue
            }
            let settings = lanes[lane]
            guard let batch = queue.take(from: settings.end, tokenBudget: settings.tokenBudget) else { continue }
            let tokens = batch.reduce(0) { $0 + lengths[$1] }
            states[lane] = .busy(freeAt: now() + (settings.cost?.batchSeconds(tokens: tokens) ?? 0))
            return batch
        }
    }

    /// Whether a device that is preparing or busy would finish the batch this lane would take next
    /// sooner than this lane, by the cost models. Only working devices count, so some device always
    /// takes the work: the one whose batch completes last before the others wake up.
    private func shouldLeaveNextBatch(lane: Int) -> Bool {
        guard let mine = lanes[lane].cost else { return false }
        let tokens = queue.tokensOfNextBatch(from: lanes[lane].end, tokenBudget: lanes[lane].tokenBudget)
        let t = now()
        let myFinish = t + mine.batchSeconds(tokens: tokens)
        for other in lanes.indices where other != lane {
            guard let cost = lanes[other].cost else { continue }
            let freeAt: Double
            switch states[other] {
            case .preparing(let readyAt): freeAt = readyAt
            case .busy(let at): freeAt = at
            default: continue
            }
            if max(freeAt, t) + cost.batchSeconds(tokens: tokens) < myFinish { return true }
        }
        return false
    }

    private func fail(lane: Int, batch: [Int]?, reason: String) {
        let info = lanes[lane].device.info
        condition.lock()
        defer { condition.unlock() }
        stats[lane].failure = reason
        states[lane] = .failed
        switch policy {
        case .failRun:
            if fatal == nil { fatal = .deviceFailed(device: info.id, reason: reason) }
        case .requeue:
            if let batch { queue.giveBack(batch) }
            if states.allSatisfy({ if case .failed = $0 { return true } else { return false } }) {
                fatal = .allDevicesFailed(stats.map { "\($0.device.id): \($0.failure ?? "unknown")" })
            } else {
                profiler.note("device \(info.id) left the run: \(reason); its work went back to the queue")
                onDeviceDropped?(info, reason)
            }
        }
        condition.broadcast()
    }

    private func now() -> Double { Double(ProfileClock.now()) / 1e9 }

    private static func reason(_ error: Error) -> String {
        String(describing: error)
    }
}
