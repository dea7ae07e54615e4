import Foundation
import Testing
@testable import ColGrep

/// A simulated device: its "embedding" of sequence `p` is a deterministic function of the sequence
/// (as a real encoder's is), plus a device-specific rounding error well inside the tolerance, so
/// results from different splits compare within tolerance rather than bit for bit.
final class SimulatedDevice: EncodeDevice, @unchecked Sendable {
    let info: DeviceInfo
    let noise: Float
    let delayPerToken: Double
    let failPrepare: String?
    let failOnBatch: Int?
    let dropOneOutput: Bool
    let ledger: EncodeLedger
    /// Prepare waits for this gate (to order devices deterministically in tests).
    let startAfter: DispatchSemaphore?
    /// Signalled when this device fails, opening another device's `startAfter`.
    let onFailure: DispatchSemaphore?
    private(set) var batchesSeen = 0

    struct Failure: Error, CustomStringConvertible { var description: String }

    init(id: String, kind: DeviceKind, ledger: EncodeLedger, noise: Float = 0, lane: Int = 0,
         delayPerToken: Double = 0, failPrepare: String? = nil, failOnBatch: Int? = nil, dropOneOutput: Bool = false,
         startAfter: DispatchSemaphore? = nil, onFailure: DispatchSemaphore? = nil) {
        self.startAfter = startAfter
        self.onFailure = onFailure
        self.info = DeviceInfo(id: id, kind: kind, lane: lane)
        self.noise = noise
        self.delayPerToken = delayPerToken
        self.failPrepare = failPrepare
        self.failOnBatch = failOnBatch
        self.dropOneOutput = dropOneOutput
        self.ledger = ledger
    }

    func prepare() throws {
        if let startAfter {
            startAfter.wait()
            startAfter.signal()
        }
        if let failPrepare {
            onFailure?.signal()
            throw Failure(description: failPrepare)
        }
    }

    func encode(_ items: [TestSequence]) throws -> [[Float]] {
        batchesSeen += 1
        if batchesSeen == failOnBatch {
            onFailure?.signal()
            throw Failure(description: "out of memory on batch \(batchesSeen)")
        }
        let tokens = items.reduce(0) { $0 + $1.tokens.count }
        if delayPerToken > 0 { Thread.sleep(forTimeInterval: delayPerToken * Double(tokens)) }
        ledger.record(items.map(\.id), device: info.id)
        var out = items.map { SimulatedDevice.embedding(of: $0.tokens).map { $0 + noise } }
        if dropOneOutput { out.removeLast() }
        return out
    }

    static func embedding(of sequence: [Int32]) -> [Float] {
        (0..<4).map { d in sequence.enumerated().reduce(Float(0)) { $0 + sin(Float($1.element) * 0.01 + Float(d + $1.offset)) } }
    }
}

/// A token sequence with its input position (so a device can tell the ledger what it encoded).
struct TestSequence {
    var id: Int
    var tokens: [Int32]
}

/// Counts which device encoded which position (successful batches only).
final class EncodeLedger: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var byDevice: [String: [Int]] = [:]

    func record(_ positions: [Int], device: String) {
        lock.lock()
        byDevice[device, default: []].append(contentsOf: positions)
        lock.unlock()
    }

    var all: [Int] { lock.lock(); defer { lock.unlock() }; return byDevice.values.flatMap { $0 } }
}

/// Sequences of random lengths (1…maxLength tokens) with random ids, reproducible from `seed`.
func randomSequences(count: Int, maxLength: Int, seed: UInt64) -> [TestSequence] {
    var rng = SplitMix(seed: seed)
    return (0..<count).map { id in
        TestSequence(id: id, tokens: (0..<Int(rng.next() % UInt64(maxLength)) + 1).map { _ in Int32(rng.next() % 30_000) })
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func expectSameEmbeddings(_ got: [[Float]], _ sequences: [TestSequence], tolerance: Float = 1e-3) {
    #expect(got.count == sequences.count)
    for (vector, sequence) in zip(got, sequences) {
        let expected = SimulatedDevice.embedding(of: sequence.tokens)
        #expect(zip(vector, expected).allSatisfy { abs($0 - $1) <= tolerance })
    }
}

@Suite struct LengthSortedQueueTests {
    @Test func takesFromBothEndsWithinTheBudgetAndEachPositionOnce() {
        let lengths = [5, 1, 9, 3, 7, 2, 8]
        var queue = LengthSortedQueue(lengths: lengths)
        #expect(queue.take(from: .longest, tokenBudget: 17) == [2, 6]) // 9 + 8
        #expect(queue.take(from: .shortest, tokenBudget: 4) == [1, 5]) // 1 + 2, next (3) does not fit
        #expect(queue.take(from: .shortest, tokenBudget: 1) == [3]) // over budget: still one sequence
        #expect(queue.tokensOfNextBatch(from: .longest, tokenBudget: 100) == 12)
        #expect(queue.take(from: .longest, tokenBudget: 100) == [4, 0])
        #expect(queue.isEmpty)
        #expect(queue.take(from: .shortest, tokenBudget: 10) == nil)
    }

    @Test func positionsGivenBackAreMergedInLengthOrder() {
        let lengths = [4, 6, 2, 8, 10]
        var queue = LengthSortedQueue(lengths: lengths)
        let long = queue.take(from: .longest, tokenBudget: 18)! // [4, 3]
        #expect(long == [4, 3])
        queue.giveBack(long)
        #expect(queue.count == 5)
        #expect(queue.take(from: .longest, tokenBudget: 1) == [4])
        #expect(queue.take(from: .shortest, tokenBudget: 6) == [2, 0])
        #expect(queue.take(from: .longest, tokenBudget: 14) == [3, 1])
        #expect(queue.isEmpty)
    }
}

@Suite struct EncodeSchedulerTests {
    @Test func everySequenceIsEncodedOnceAndReturnedInInputOrder() throws {
        let sequences = randomSequences(count: 300, maxLength: 60, seed: 1)
        let ledger = EncodeLedger()
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, noise: 1e-5), end: .longest, tokenBudget: 900),
            EncodeLane(device: SimulatedDevice(id: "cpu#0", kind: .cpu, ledger: ledger), end: .shortest, tokenBudget: 120),
            EncodeLane(device: SimulatedDevice(id: "cpu#1", kind: .cpu, ledger: ledger), end: .shortest, tokenBudget: 120),
        ]
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        expectSameEmbeddings(result.outputs, sequences)
        #expect(ledger.all.sorted() == Array(0..<300))
        #expect(result.devices.reduce(0) { $0 + $1.sequences } == 300)
        #expect(result.devices.reduce(0) { $0 + $1.tokens } == sequences.reduce(0) { $0 + $1.tokens.count })
        #expect(result.devices.allSatisfy { $0.failure == nil })
    }

    /// Batch boundaries never change results: any number of devices and budgets give the same
    /// vectors, in the same order, as one device encoding everything.
    @Test(arguments: [(1, 1, 64), (2, 1, 7), (1, 3, 300), (4, 0, 50), (0, 4, 1), (2, 2, 1000)])
    func resultsDoNotDependOnTheSplit(gpus: Int, cpus: Int, budget: Int) throws {
        let sequences = randomSequences(count: 150, maxLength: 40, seed: UInt64(gpus * 100 + cpus * 10 + budget))
        let ledger = EncodeLedger()
        var lanes: [EncodeLane<TestSequence, [Float]>] = []
        for g in 0..<gpus {
            lanes.append(EncodeLane(device: SimulatedDevice(id: "cuda:\(g)", kind: .gpu, ledger: ledger, noise: 2e-5),
                                    end: .longest, tokenBudget: budget * 4))
        }
        for c in 0..<cpus {
            lanes.append(EncodeLane(device: SimulatedDevice(id: "cpu#\(c)", kind: .cpu, ledger: ledger),
                                    end: .shortest, tokenBudget: budget))
        }
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        expectSameEmbeddings(result.outputs, sequences)
        #expect(ledger.all.sorted() == Array(0..<sequences.count))
    }

    @Test func aDeviceFailingMidRunGivesItsBatchBackUnderAuto() throws {
        let sequences = randomSequences(count: 200, maxLength: 30, seed: 7)
        let ledger = EncodeLedger()
        let dropped = EncodeLedger()
        // cuda:1 runs alone and fails on its first batch; then cuda:0 runs and fails on its second;
        // then the CPU starts and must finish everything, including both batches given back.
        let cuda1Failed = DispatchSemaphore(value: 0), cuda0Failed = DispatchSemaphore(value: 0)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, failOnBatch: 2,
                                               startAfter: cuda1Failed, onFailure: cuda0Failed), end: .longest, tokenBudget: 200),
            EncodeLane(device: SimulatedDevice(id: "cuda:1", kind: .gpu, ledger: ledger, failOnBatch: 1,
                                               onFailure: cuda1Failed), end: .longest, tokenBudget: 200),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger, startAfter: cuda0Failed),
                       end: .shortest, tokenBudget: 50),
        ]
        let profiler = Profiler(enabled: true)
        let scheduler = EncodeScheduler(lanes: lanes, policy: .requeue, profiler: profiler) { info, _ in
            dropped.record([0], device: info.id)
        }
        let result = try scheduler.run(sequences, length: \.tokens.count)
        expectSameEmbeddings(result.outputs, sequences)
        #expect(ledger.all.sorted() == Array(0..<200)) // failed batches are not counted: every position once
        #expect(result.devices[0].failure == "out of memory on batch 2")
        #expect(result.devices[1].failure == "out of memory on batch 1")
        #expect(result.devices[2].failure == nil)
        #expect(Set(dropped.byDevice.keys) == ["cuda:0", "cuda:1"])
        #expect(result.devices[0].batches == 1)
        #expect(result.devices[2].sequences == 200 - result.devices[0].sequences)
        #expect(profiler.recordedNotes().contains { $0.contains("cuda:1") && $0.contains("went back to the queue") })
    }

    @Test func aColdStartFailureUnderAutoLeavesTheWorkToTheOthers() throws {
        let sequences = randomSequences(count: 40, maxLength: 20, seed: 3)
        let ledger = EncodeLedger()
        let gpuFailed = DispatchSemaphore(value: 0)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, failPrepare: "kernel compile failed", onFailure: gpuFailed),
                       end: .longest, tokenBudget: 100),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger, startAfter: gpuFailed), end: .shortest, tokenBudget: 30),
        ]
        let scheduler = EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false))
        let result = try scheduler.run(sequences, length: \.tokens.count)
        expectSameEmbeddings(result.outputs, sequences)
        #expect(ledger.byDevice["cpu"]?.sorted() == Array(0..<40))
        #expect(scheduler.statistics[0].failure == "kernel compile failed")
    }

    @Test func underForceGPUAFailingDeviceFailsTheRunNamingIt() {
        let sequences = randomSequences(count: 100, maxLength: 20, seed: 5)
        let ledger = EncodeLedger()
        let cuda1Failed = DispatchSemaphore(value: 0)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, startAfter: cuda1Failed),
                       end: .longest, tokenBudget: 100),
            EncodeLane(device: SimulatedDevice(id: "cuda:1", kind: .gpu, ledger: ledger, failOnBatch: 1,
                                               onFailure: cuda1Failed), end: .longest, tokenBudget: 100),
        ]
        #expect(throws: EncodeSchedulerError.deviceFailed(device: "cuda:1", reason: "out of memory on batch 1")) {
            try EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        }
    }

    @Test func underForceGPUAColdStartFailureFailsTheRun() {
        let sequences = randomSequences(count: 10, maxLength: 20, seed: 6)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: EncodeLedger(),
                                               failPrepare: "CUDA_ERROR_OUT_OF_MEMORY uploading weights"), end: .longest, tokenBudget: 100),
        ]
        #expect(throws: EncodeSchedulerError.deviceFailed(device: "cuda:0", reason: "CUDA_ERROR_OUT_OF_MEMORY uploading weights")) {
            try EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        }
    }

    @Test func whenEveryDeviceFailsTheRunFailsWithEveryReason() {
        let sequences = randomSequences(count: 20, maxLength: 10, seed: 9)
        let ledger = EncodeLedger()
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, failPrepare: "no device"), end: .longest, tokenBudget: 100),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger, failOnBatch: 1), end: .shortest, tokenBudget: 10),
        ]
        do {
            _ = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
            Issue.record("expected the run to fail")
        } catch let error as EncodeSchedulerError {
            guard case .allDevicesFailed(let reasons) = error else { Issue.record("wrong error \(error)"); return }
            #expect(reasons.contains("cuda:0: no device"))
            #expect(reasons.contains("cpu: out of memory on batch 1"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aDeviceReturningTooFewOutputsIsAnError() {
        let sequences = randomSequences(count: 10, maxLength: 10, seed: 11)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: EncodeLedger(), dropOneOutput: true), end: .longest, tokenBudget: 1000),
        ]
        #expect(throws: EncodeSchedulerError.self) {
            try EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        }
    }

    @Test func anEmptyRunNeverStartsADevice() throws {
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: EncodeLedger(), failPrepare: "must not be called"), end: .longest, tokenBudget: 10),
        ]
        let result = try EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false)).run([], length: \.tokens.count)
        #expect(result.outputs.isEmpty)
    }

    /// A slow device leaves work to a working device whose cost model finishes it far sooner; the
    /// fast device is working (preparing, then busy) whenever the slow one looks, so the split is
    /// deterministic: the slow device encodes nothing.
    @Test func aSlowDeviceLeavesBatchesToAFasterWorkingDevice() throws {
        let sequences = randomSequences(count: 60, maxLength: 20, seed: 13)
        let ledger = EncodeLedger()
        let fast = DeviceCost(coldStartSeconds: 30, perBatchSeconds: 0, perTokenSeconds: 1e-9)
        let slow = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 10)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger), end: .longest, tokenBudget: 40, cost: fast),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger), end: .shortest, tokenBudget: 40, cost: slow),
        ]
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        expectSameEmbeddings(result.outputs, sequences)
        #expect(ledger.byDevice["cpu"] == nil)
        #expect(result.devices[0].sequences == 60)
    }

    /// A device without a cost model (a GPU not calibrated yet) is judged by the rate it has shown in
    /// this process: once it has finished batches, a slow calibrated device leaves the next job to it
    /// (before, CPU workers kept taking batches beside an uncalibrated GPU to the end of the run).
    @Test func anUncalibratedDeviceIsJudgedByItsMeasuredRate() throws {
        let ledger = EncodeLedger()
        let slow = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 10)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger), end: .longest, tokenBudget: 40),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger, delayPerToken: 0.002), end: .shortest,
                       tokenBudget: 40, cost: slow),
        ]
        let scheduler = EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false))
        defer { scheduler.stop() }
        let first = randomSequences(count: 40, maxLength: 20, seed: 31)
        let one = try scheduler.encode(first, length: \.tokens.count)
        expectSameEmbeddings(one.outputs, first)
        try #require(one.devices[0].batches > 0, "the GPU must have shown a rate in the first job")
        let second = randomSequences(count: 60, maxLength: 20, seed: 32).map { TestSequence(id: $0.id + 1000, tokens: $0.tokens) }
        let two = try scheduler.encode(second, length: \.tokens.count)
        expectSameEmbeddings(two.outputs, second)
        #expect(two.devices[1].sequences == 0)
        #expect(two.devices[0].sequences == 60)
    }

    /// Two equal GPUs with two lanes each, the first calibrated 10 % faster, fed jobs of two batches one
    /// at a time (as index chunks arrive): each job's second batch goes to the other GPU, whose lanes are
    /// both idle, not to the second lane of the GPU already running the first. (Before, the faster-rated
    /// GPU's two lanes took both batches of every job and the other GPU encoded nothing.)
    @Test func aChunksBatchesSpreadOverIdleGPUsBeforeSharingOne() throws {
        let ledger = EncodeLedger()
        let faster = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 0.9e-3).sharedBy(lanes: 2)
        let slower = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 0, perTokenSeconds: 1.0e-3).sharedBy(lanes: 2)
        var lanes: [EncodeLane<TestSequence, [Float]>] = []
        for (id, cost) in [("cuda:0", faster), ("cuda:1", slower)] {
            for lane in 0..<2 {
                // 120 ms a batch: long beside a loaded machine's thread wake-ups (a lane that leaves a batch
                // to an idle GPU looks again 1 ms later; a busy 2-core CI box may take far longer to wake it).
                let device = SimulatedDevice(id: id, kind: .gpu, ledger: ledger, lane: lane, delayPerToken: 3e-3)
                lanes.append(EncodeLane(device: device, end: .longest, tokenBudget: 40, cost: cost))
            }
        }
        let scheduler = EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false))
        defer { scheduler.stop() }
        let jobs = 6
        for job in 0..<jobs {
            // Two sequences of 40 tokens: two batches of the 40-token budget.
            let sequences = (0..<2).map { TestSequence(id: job * 2 + $0, tokens: Array(repeating: Int32(job + $0 + 1), count: 40)) }
            let result = try scheduler.encode(sequences, length: \.tokens.count)
            expectSameEmbeddings(result.outputs, sequences)
        }
        let second = ledger.byDevice["cuda:1"]?.count ?? 0
        // Slow thread wake-ups may hand an occasional job's batches both to one GPU; most must be split.
        #expect(second >= jobs * 2 / 4, "cuda:1 encoded \(second) of \(jobs * 2) sequences")
        #expect(Set(ledger.all).count == jobs * 2 && ledger.all.count == jobs * 2)
    }

    /// The scheduler lives across jobs (index chunks): a device still in its cold start never holds
    /// a job up, and joins a later job once ready.
    @Test func aColdStartInProgressNeverHoldsAJobUp() throws {
        let ledger = EncodeLedger()
        let gpuMayStart = DispatchSemaphore(value: 0)
        let lanes: [EncodeLane<TestSequence, [Float]>] = [
            EncodeLane(device: SimulatedDevice(id: "cuda:0", kind: .gpu, ledger: ledger, startAfter: gpuMayStart), end: .longest, tokenBudget: 200),
            EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger), end: .shortest, tokenBudget: 50),
        ]
        let scheduler = EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false))
        defer { scheduler.stop() }
        let first = randomSequences(count: 80, maxLength: 20, seed: 21)
        let one = try scheduler.encode(first, length: \.tokens.count)
        expectSameEmbeddings(one.outputs, first)
        #expect(one.devices[1].sequences == 80) // the GPU was still "compiling"
        gpuMayStart.signal()
        let second = randomSequences(count: 120, maxLength: 20, seed: 22).map { TestSequence(id: $0.id + 1000, tokens: $0.tokens) }
        let two = try scheduler.encode(second, length: \.tokens.count)
        expectSameEmbeddings(two.outputs, second)
        #expect(ledger.all.sorted() == Array(0..<80) + Array(1000..<1120))
        #expect(scheduler.statistics.reduce(0) { $0 + $1.sequences } == 200)
    }
}
