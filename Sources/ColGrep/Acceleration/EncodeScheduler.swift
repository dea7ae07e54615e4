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

    /// Lanes of one device summed into one entry per device, in first-seen order: tokens, batches,
    /// sequences and busy seconds add up (busy is lane-seconds, so it may exceed the wall), the cold
    /// start is the longest lane's, the failure the first lane's. `lanes` counts the lanes merged.
    public static func byDevice(_ stats: [DeviceRunStats]) -> [(stats: DeviceRunStats, lanes: Int)] {
        var merged: [(stats: DeviceRunStats, lanes: Int)] = []
        for entry in stats {
            guard let index = merged.firstIndex(where: { $0.stats.device.id == entry.device.id }) else {
                var first = entry
                first.device.lane = 0
                merged.append((first, 1))
                continue
            }
            merged[index].lanes += 1
            merged[index].stats.prepareSeconds = max(merged[index].stats.prepareSeconds, entry.prepareSeconds)
            merged[index].stats.busySeconds += entry.busySeconds
            merged[index].stats.tokens += entry.tokens
            merged[index].stats.batches += entry.batches
            merged[index].stats.sequences += entry.sequences
            merged[index].stats.failure = merged[index].stats.failure ?? entry.failure
        }
        return merged
    }
}

/// The outputs of one job in input order, and what each device did for it.
public struct EncodeRunResult<Output> {
    public var outputs: [Output]
    public var devices: [DeviceRunStats]
    public var wallSeconds: Double
}

/// Encodes items on several devices at once from one length-sorted queue per job.
///
/// Every device has a worker thread that lives as long as the scheduler: it first runs its device's
/// cold start, then repeatedly takes one token-budget batch from its end of the oldest job's queue that
/// still holds work (GPUs the long end, CPU workers the short end) and encodes it. Several callers may
/// submit jobs at once (the index pipeline keeps the next chunk queued while one encodes, so that lanes
/// left without a batch of this chunk start on the next instead of waiting for its slowest batch).
/// A device still in its cold start never holds a job up: the job is done when every item has an
/// output, so a GPU joins whenever it is ready. A worker whose cost model says that another device would
/// finish the next batch sooner leaves it to that device; a GPU whose other lanes are idle counts as
/// faster than one busy with another batch, so a chunk's batches spread over the GPUs before two share
/// one. Outputs are written at their input positions, so the
/// result is in input order whatever the split; each item is encoded exactly once by a device that
/// succeeded. A job whose caller asks it to stop (`encode(_:length:shouldStop:)`) is given no further
/// batch; its batches already on a device finish (a device is never interrupted mid-batch, so every lane
/// stays usable) and its caller gets `ColGrepError.interrupted`; other jobs go on as if it had never been.
public final class EncodeScheduler<Item, Output>: @unchecked Sendable {
    private let lanes: [EncodeLane<Item, Output>]
    /// For each lane, the lanes that share its device (itself included): host threads of one GPU.
    private let deviceMates: [[Int]]
    private let policy: DeviceFailurePolicy
    private let profiler: Profiler
    private let onDeviceDropped: (@Sendable (DeviceInfo, String) -> Void)?

    // Shared state, guarded by `condition`.
    private let condition = NSCondition()
    /// Jobs in submission order; each leaves when its caller collects it.
    private var jobs: [Job] = []
    private var nextJobID = 0
    private var states: [LaneState]
    private var totals: [DeviceRunStats]
    private var fatal: EncodeSchedulerError?
    private var started = false
    private var stopping = false
    private var running = 0

    private struct Job {
        var id: Int
        var items: [Item]
        var lengths: [Int]
        var queue: LengthSortedQueue
        var outputs: [Output?]
        var remaining: Int
        var stats: [DeviceRunStats]
        /// Asked before each batch of this job is handed out (and by the waiting caller): true ends the job.
        var shouldStop: (() -> Bool)?
        /// The caller asked to stop: no lane takes another batch of this job.
        var cancelled = false
        /// Batches of this job on a device now.
        var inFlight = 0

        /// The caller may collect it: every item has its output, or it was cancelled and none of its
        /// batches is still on a device.
        var isSettled: Bool { remaining == 0 || (cancelled && inFlight == 0) }

        /// Whether the job is cancelled now, asking its caller's `shouldStop` if it was not yet.
        mutating func stopRequested() -> Bool {
            if !cancelled, let shouldStop, shouldStop() { cancelled = true }
            return cancelled
        }
    }

    /// How often a caller waiting for its job asks its `shouldStop` (workers ask before every batch;
    /// this catches a stop while no lane is free to ask, e.g. during a GPU's cold start).
    static var stopPollSeconds: Double { 0.05 }

    private enum LaneState {
        /// Cold start in progress; expected to end at about this time (monotonic seconds).
        case preparing(readyAt: Double)
        /// Encoding a batch; free at about this time.
        case busy(freeAt: Double)
        /// Ready and waiting for work (or about to look at the queue): it takes the next batch as
        /// soon as it wakes, so others may leave work to it.
        case idle
        /// Ready but leaving the next batch to a faster device: the lane that was expected to finish it
        /// soonest. Others never wait on a deferring lane, so two lanes can never wait on each other —
        /// except the lanes of the device it waits for, to which it is as good as idle (it waits for them).
        case deferring(to: Int)
        case failed
        case stopped

        var isWorking: Bool {
            switch self {
            case .preparing, .busy: return true
            default: return false
            }
        }

        var isAlive: Bool {
            switch self {
            case .failed, .stopped: return false
            default: return true
            }
        }
    }

    /// - Parameters:
    ///   - lanes: the devices and how they take work.
    ///   - policy: what a device failure does.
    ///   - onDeviceDropped: called once per device that leaves under `.requeue`, with the reason.
    public init(lanes: [EncodeLane<Item, Output>], policy: DeviceFailurePolicy, profiler: Profiler = .shared,
                onDeviceDropped: (@Sendable (DeviceInfo, String) -> Void)? = nil) {
        self.lanes = lanes
        self.deviceMates = lanes.map { lane in lanes.indices.filter { lanes[$0].device.info.id == lane.device.info.id } }
        self.policy = policy
        self.profiler = profiler
        self.onDeviceDropped = onDeviceDropped
        self.states = Array(repeating: .idle, count: lanes.count)
        self.totals = lanes.map { DeviceRunStats(device: $0.device.info) }
    }

    deinit {
        stop()
    }

    /// Devices in lane order.
    public var devices: [DeviceInfo] { lanes.map(\.device.info) }

    /// What every device did so far, over all jobs (cold start included).
    public var statistics: [DeviceRunStats] {
        condition.lock()
        defer { condition.unlock() }
        return totals
    }

    /// Starts the workers (and so every device's cold start) now. `encode` starts them if needed.
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        // Every device counts as working from the start, so no device mistakes another's thread
        // not having started yet for an idle device.
        let begin = now()
        for lane in lanes.indices {
            states[lane] = .preparing(readyAt: begin + (lanes[lane].cost?.coldStartSeconds ?? 0))
        }
        for lane in lanes.indices {
            running += 1
            let thread = Thread { [self] in
                work(lane: lane)
                condition.lock()
                running -= 1
                condition.broadcast()
                condition.unlock()
            }
            thread.name = "colgrep-encode-\(lanes[lane].device.info.laneLabel)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Asks the workers to leave once their current batch is done; waits for those that are not in
    /// a cold start (a cold start cannot be interrupted and must not delay the caller).
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while started && running > 0 && states.contains(where: { if case .preparing = $0 { return false } else { return $0.isAlive } }) {
            condition.wait()
        }
        condition.unlock()
    }

    /// Encodes `items` (one output each, in input order) on every live device at once. Callers on
    /// several threads may each have a job in the scheduler; the devices work the oldest first.
    /// - Parameters:
    ///   - length: the tokens of an item (what budgets and costs count).
    ///   - shouldStop: asked before each batch of this job is handed to a device (and every
    ///     `stopPollSeconds` while the caller waits); once it returns true, no further batch of the job
    ///     starts, the batches already on a device finish, and this throws `ColGrepError.interrupted`
    ///     (unless every item was encoded by then: then the outputs are returned). It is called with the
    ///     scheduler's lock held, from any thread: it must be quick and must not call the scheduler.
    public func encode(_ items: [Item], length: (Item) -> Int, shouldStop: (() -> Bool)? = nil) throws -> EncodeRunResult<Output> {
        let begin = ProfileClock.now()
        guard !items.isEmpty else {
            return EncodeRunResult(outputs: [], devices: lanes.map { DeviceRunStats(device: $0.device.info) }, wallSeconds: 0)
        }
        guard !lanes.isEmpty else { throw EncodeSchedulerError.allDevicesFailed(["no device to encode on"]) }
        start()
        let lengths = items.map(length)
        condition.lock()
        defer { condition.unlock() }
        if let fatal { throw fatal }
        let id = nextJobID
        nextJobID += 1
        jobs.append(Job(id: id, items: items, lengths: lengths, queue: LengthSortedQueue(lengths: lengths),
                        outputs: Array(repeating: nil, count: items.count), remaining: items.count,
                        stats: lanes.map { DeviceRunStats(device: $0.device.info) }, shouldStop: shouldStop))
        condition.broadcast()
        // No copy of a job may be held across the wait: a worker writing its outputs would then copy
        // the whole outputs array (one retain per item) for every batch it records. (A debug build kept
        // such a copy alive and spent about half its scheduler time on it; release builds ended its
        // lifetime early, so this only guarantees what the optimiser happened to do.)
        while fatal == nil, let index = jobIndex(id), !jobs[index].isSettled {
            if jobs[index].cancelled || shouldStop == nil {
                condition.wait()
            } else if jobs[index].stopRequested() {
                // Lanes deferring to a device now skip this job's batches.
                condition.broadcast()
            } else {
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.stopPollSeconds))
            }
        }
        let finished = jobs.remove(at: jobIndex(id)!)
        if let fatal { throw fatal }
        // Cancelled before every item was encoded: what was encoded is dropped with the job.
        if finished.remaining > 0 { throw ColGrepError.interrupted }
        return EncodeRunResult(outputs: finished.outputs.map { $0! }, devices: finished.stats,
                               wallSeconds: ProfileClock.seconds(since: begin))
    }

    /// One-shot convenience: starts the devices, encodes `items`, stops.
    public func run(_ items: [Item], length: (Item) -> Int) throws -> EncodeRunResult<Output> {
        defer { stop() }
        return try encode(items, length: length)
    }

    // MARK: worker

    /// A finished batch, recorded under the lock in the same step that picks the next one, so a
    /// device never looks idle to the others between two batches.
    private struct Completed {
        var job: Int
        var positions: [Int]
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
            fail(lane: lane, reason: Self.reason(error))
            return
        }
        let prepareSeconds = ProfileClock.seconds(since: prepareBegin)
        profiler.add(stage: "encode.prepare", seconds: prepareSeconds, device: info.id)
        condition.lock()
        totals[lane].prepareSeconds = prepareSeconds
        condition.unlock()

        var completed: Completed?
        while let batch = nextBatch(lane: lane, recording: completed) {
            completed = nil
            let begin = ProfileClock.now()
            let encoded: [Output]
            do {
                encoded = try device.encode(batch.items)
            } catch {
                fail(lane: lane, batch: (batch.job, batch.positions), reason: Self.reason(error))
                return
            }
            let seconds = ProfileClock.seconds(since: begin)
            guard encoded.count == batch.items.count else {
                let error = EncodeSchedulerError.wrongOutputCount(device: info.id, expected: batch.items.count, got: encoded.count)
                fail(lane: lane, batch: (batch.job, batch.positions), reason: error.description)
                return
            }
            profiler.add(stage: "encode", seconds: seconds, tokens: batch.tokens, batches: 1, device: info.id)
            completed = Completed(job: batch.job, positions: batch.positions, outputs: encoded, tokens: batch.tokens, seconds: seconds)
        }
    }

    /// A batch handed to a lane: its job, positions in that job, items and tokens.
    private struct Batch {
        var job: Int
        var positions: [Int]
        var items: [Item]
        var tokens: Int
    }

    /// Where job `id` is in `jobs` (nil once its caller collected it).
    private func jobIndex(_ id: Int) -> Int? { jobs.firstIndex { $0.id == id } }

    /// Records `completed` (this lane's previous batch), then returns the next batch for `lane`, or
    /// nil when the worker should leave. Blocks while there is no work, and while a working device
    /// would finish the next batch sooner than this one.
    private func nextBatch(lane: Int, recording completed: Completed?) -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        if let completed, let j = jobIndex(completed.job) {
            for (position, output) in zip(completed.positions, completed.outputs) { jobs[j].outputs[position] = output }
            jobs[j].remaining -= completed.positions.count
            jobs[j].inFlight -= 1
            jobs[j].stats[lane].busySeconds += completed.seconds
            jobs[j].stats[lane].tokens += completed.tokens
            jobs[j].stats[lane].batches += 1
            jobs[j].stats[lane].sequences += completed.positions.count
            totals[lane].busySeconds += completed.seconds
            totals[lane].tokens += completed.tokens
            totals[lane].batches += 1
            totals[lane].sequences += completed.positions.count
        }
        states[lane] = .idle
        condition.broadcast()
        while true {
            if fatal != nil || stopping {
                states[lane] = .stopped
                condition.broadcast()
                return nil
            }
            // The oldest job with queued work (indices change while this lane waits: looked up each time).
            guard let j = jobs.firstIndex(where: { !$0.cancelled && !$0.queue.isEmpty }) else {
                condition.wait()
                continue
            }
            if jobs[j].stopRequested() {
                // Its caller may collect it once its batches on other lanes are in.
                condition.broadcast()
                continue
            }
            if let (wake, target) = leaveNextBatchUntil(lane: lane, job: j) {
                states[lane] = .deferring(to: target)
                _ = condition.wait(until: Date(timeIntervalSinceNow: wake))
                states[lane] = .idle
                continue
            }
            let settings = lanes[lane]
            guard let positions = jobs[j].queue.take(from: settings.end, tokenBudget: settings.tokenBudget) else { continue }
            let tokens = positions.reduce(0) { $0 + jobs[j].lengths[$1] }
            states[lane] = .busy(freeAt: now() + (batchSeconds(lane: lane, tokens: tokens) ?? 0))
            jobs[j].inFlight += 1
            return Batch(job: jobs[j].id, positions: positions, items: positions.map { jobs[j].items[$0] }, tokens: tokens)
        }
    }

    /// When a working device would finish the batch this lane would take next sooner than this
    /// lane (by the cost models), the seconds to wait before looking again and the lane expected to
    /// finish it soonest; nil to take it now. Only devices that are working count, and a cold start that
    /// overran its estimate no longer does, so some device always takes the work.
    private func leaveNextBatchUntil(lane: Int, job j: Int) -> (seconds: Double, target: Int)? {
        guard lanes[lane].cost != nil else { return nil }
        let tokens = jobs[j].queue.tokensOfNextBatch(from: lanes[lane].end, tokenBudget: lanes[lane].tokenBudget)
        let t = now()
        guard let mySeconds = occupiedBatchSeconds(lane: lane, tokens: tokens) else { return nil }
        let myFinish = t + mySeconds
        var wake: Double?
        var best: (lane: Int, finish: Double)?
        // Lanes of this lane's own device never count: they share its GPU, so leaving them the batch
        // would only idle a host thread.
        for other in lanes.indices where !deviceMates[lane].contains(other) {
            guard let otherSeconds = occupiedBatchSeconds(lane: other, tokens: tokens) else { continue }
            let freeAt: Double
            switch states[other] {
            case .preparing(let readyAt) where readyAt > t: freeAt = readyAt
            case .busy(let at): freeAt = max(at, t)
            // A ready device waiting for work wakes on the same broadcast as this lane; counting it
            // as free keeps a slow lane from grabbing the first batch of a job before it looks.
            case .idle: freeAt = t
            // A lane waiting for this device (it found this device faster when it looked) takes the batch
            // as soon as it looks again: for equal GPUs, the second batch of a chunk then goes to the GPU
            // whose lanes deferred while the first was taken, not to a second lane of the first GPU.
            case .deferring(let target) where deviceMates[lane].contains(target): freeAt = t
            default: continue
            }
            let otherFinish = freeAt + otherSeconds
            if otherFinish < myFinish {
                wake = min(wake ?? .infinity, max(freeAt - t, 0.001))
                if otherFinish < best?.finish ?? .infinity { best = (other, otherFinish) }
            }
        }
        guard let wake, let best else { return nil }
        return (min(wake, 0.25), best.lane)
    }

    /// Seconds `lane` would take for a batch of `tokens` started now, given how many other lanes of its
    /// device are busy. A lane's cost is its device's shared by all its lanes (`DeviceCost.sharedBy`):
    /// right when they all work, but a GPU none of whose other lanes is busy runs the batch that many
    /// times faster. Without this, equal GPUs split a chunk by calibration noise: the lanes of the one
    /// rated a few per cent faster took every batch they were idle for, two at once on one GPU, while
    /// other GPUs sat idle (on four H200s one GPU took 60–70 % of a cold index's tokens; session 16).
    private func occupiedBatchSeconds(lane: Int, tokens: Int) -> Double? {
        guard let shared = batchSeconds(lane: lane, tokens: tokens) else { return nil }
        let mates = deviceMates[lane]
        guard mates.count > 1 else { return shared }
        let busyMates = mates.filter { mate in
            guard mate != lane, case .busy = states[mate] else { return false }
            return true
        }.count
        return shared * Double(1 + busyMates) / Double(mates.count)
    }

    /// Seconds `lane` would take for a batch of `tokens`: its cost model's estimate, else (a device
    /// not calibrated yet, e.g. a GPU on its first run) the rate it has shown in this process; nil
    /// before it has finished a batch. Without the measured rate, CPU workers beside an uncalibrated
    /// GPU kept taking batches to the end of the run (measured: 15 workers busy 19.7 s for 4 % of the
    /// tokens while the GPU did the other 96 % in 6.3 s).
    private func batchSeconds(lane: Int, tokens: Int) -> Double? {
        if let cost = lanes[lane].cost { return cost.batchSeconds(tokens: tokens) }
        let done = totals[lane]
        guard done.tokens > 0, done.busySeconds > 0 else { return nil }
        return done.busySeconds / Double(done.tokens) * Double(tokens)
    }

    private func fail(lane: Int, batch: (job: Int, positions: [Int])? = nil, reason: String) {
        let info = lanes[lane].device.info
        condition.lock()
        defer { condition.unlock() }
        totals[lane].failure = reason
        for j in jobs.indices { jobs[j].stats[lane].failure = reason }
        states[lane] = .failed
        if let batch, let j = jobIndex(batch.job) { jobs[j].inFlight -= 1 }
        switch policy {
        case .failRun:
            if fatal == nil { fatal = .deviceFailed(device: info.id, reason: reason) }
        case .requeue:
            if let batch, let j = jobIndex(batch.job) { jobs[j].queue.giveBack(batch.positions) }
            if !states.contains(where: \.isAlive) {
                fatal = .allDevicesFailed(totals.map { "\($0.device.id): \($0.failure ?? "stopped")" })
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
