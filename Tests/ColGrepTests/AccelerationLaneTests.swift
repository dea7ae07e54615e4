import Encoder
import Foundation
import Tensor
import Testing
@testable import ColGrep

/// A CPU backend that counts the operations it runs: which lane's backend did the work.
final class LaneCountingBackend: ForwardingBackend, @unchecked Sendable {
    let forwardee: any Backend
    private let lock = NSLock()
    private var linearCalls = 0
    private var threads = Set<UInt64>()

    init(_ forwardee: any Backend) { self.forwardee = forwardee }

    var linears: Int { lock.lock(); defer { lock.unlock() }; return linearCalls }
    var callingThreads: Int { lock.lock(); defer { lock.unlock() }; return threads.count }

    func linear(_ x: any DeviceMatrix, weight: any DeviceMatrix, bias: (any DeviceMatrix)?, activation: Activation,
                residual: (any DeviceMatrix)?) throws -> any DeviceMatrix {
        lock.lock()
        linearCalls += 1
        threads.insert(UInt64(pthread_self()))
        lock.unlock()
        return try forwardee.linear(x, weight: weight, bias: bias, activation: activation, residual: residual)
    }
}

/// Read-only matrices handed to worker threads.
private struct Operands: @unchecked Sendable {
    let x: any DeviceMatrix
    let w: any DeviceMatrix
}

/// Several lanes per device: CPU backends stand in for one GPU's lanes (each lane its own backend, one
/// model's weights shared through a `ThreadRoutedBackend`), and simulated devices with several lanes
/// each prove the scheduler's guarantees hold lane by lane.
@Suite struct AccelerationLaneTests {
    /// `count` lanes of one simulated GPU sharing the test model, each on its own fp32 CPU backend
    /// (counted), opened `opens` times in all.
    final class Opened: @unchecked Sendable {
        let lock = NSLock()
        var backends: [Int: LaneCountingBackend] = [:]
        func add(_ lane: Int, _ backend: LaneCountingBackend) { lock.lock(); backends[lane] = backend; lock.unlock() }
        var all: [Int: LaneCountingBackend] { lock.lock(); defer { lock.unlock() }; return backends }
    }

    static func cpuLanes(_ count: Int, id: String = "cuda:0", skip: Set<Int32> = [], failLoad: Bool = false,
                         opened: Opened = Opened(), openDelay: TimeInterval = 0) -> SharedModelLanes {
        let directory = failLoad ? URL(fileURLWithPath: "/nonexistent/colgrep-model") : AccelerationRouterTests.model
        return SharedModelLanes(device: DeviceInfo(id: id, kind: .gpu), lanes: count, modelDirectory: directory, skipIDs: skip) { lane in
            if openDelay > 0 { Thread.sleep(forTimeInterval: openDelay) }
            let backend = LaneCountingBackend(CPUBackend(threads: 1, precision: .fp32))
            opened.add(lane, backend)
            return OpenedLaneBackend(backend: backend, timings: ColdStartTimings(weightSeconds: 0))
        }
    }

    static func reference(_ items: [[Int32]], skip: Set<Int32>) throws -> [HostMatrix] {
        let model = try ColBERTModel(modelDirectory: AccelerationRouterTests.model, backend: CPUBackend(threads: 1, precision: .fp32))
        return try model.encode(items, dropping: skip)
    }

    @Test func lanesOfOneDeviceShareOneModelAndEachRunsOnItsOwnBackend() throws {
        let items = AccelerationRouterTests.sequences(120, seed: 41)
        let skip: Set<Int32> = [7, 11]
        let opened = Opened()
        let lanes = Self.cpuLanes(3, skip: skip, opened: opened).makeLanes()
        let scheduler = EncodeScheduler(lanes: lanes.map { EncodeLane(device: $0, end: .longest, tokenBudget: 90) },
                                        policy: .failRun, profiler: Profiler(enabled: false))
        let result = try scheduler.run(items, length: \.count)
        #expect(AccelerationRouterTests.maxDifference(result.outputs, try Self.reference(items, skip: skip)) < 1e-5)
        #expect(zip(result.outputs, items).allSatisfy { $0.rows == $1.filter { !skip.contains($0) }.count })
        // One model (one copy of the weights) for the three lanes; one weight load.
        let models = lanes.compactMap(\.sharedModel)
        #expect(models.count == 3)
        #expect(models.allSatisfy { $0 === models[0] })
        #expect(lanes.filter { ($0.coldStartTimings?.weightSeconds ?? 0) > 0 }.count == 1)
        // Every lane that encoded ran its linears on its own backend, from its own thread only.
        let backends = opened.all
        #expect(backends.count == 3)
        for (index, stats) in result.devices.enumerated() where stats.batches > 0 {
            #expect(backends[index]!.linears > 0)
            #expect(backends[index]!.callingThreads == 1)
        }
        #expect(result.devices.map(\.device.lane) == [0, 1, 2])
        #expect(Set(result.devices.map(\.device.id)) == ["cuda:0"])
    }

    @Test func theRouterSendsEachThreadsOperationsToItsBoundBackend() throws {
        let unbound = LaneCountingBackend(CPUBackend(threads: 1, precision: .fp32))
        let router = ThreadRoutedBackend(unbound: unbound)
        let bound = (0..<4).map { _ in LaneCountingBackend(CPUBackend(threads: 1, precision: .fp32)) }
        let x = try router.upload(HostMatrix(rows: 2, cols: 3, values: [1, 2, 3, 4, 5, 6]))
        let w = try router.upload(HostMatrix(rows: 3, cols: 3, values: [1, 0, 0, 0, 1, 0, 0, 0, 1]))
        let operands = Operands(x: x, w: w)
        DispatchQueue.concurrentPerform(iterations: 4) { index in
            router.with(bound[index]) {
                for _ in 0..<(index + 1) { _ = try? router.linear(operands.x, weight: operands.w, bias: nil, activation: .none, residual: nil) }
            }
        }
        #expect(bound.map(\.linears) == [1, 2, 3, 4])
        #expect(unbound.linears == 0)
        // Outside any binding, and after a nested one ends, calls go back to the right backend.
        let y = try router.download(router.linear(x, weight: w, bias: nil, activation: .none, residual: nil))
        #expect(y.values == [1, 2, 3, 4, 5, 6])
        #expect(unbound.linears == 1)
        try router.with(bound[0]) {
            try router.with(bound[1]) { _ = try router.linear(x, weight: w, bias: nil, activation: .none, residual: nil) }
            _ = try router.linear(x, weight: w, bias: nil, activation: .none, residual: nil)
        }
        #expect(bound[0].linears == 2 && bound[1].linears == 3)
    }

    @Test func aModelThatCannotLoadFailsEveryLaneOfItsDeviceAndTheOthersFinish() throws {
        let items = AccelerationRouterTests.sequences(60, seed: 43)
        let broken = Self.cpuLanes(2, id: "cuda:1", failLoad: true).makeLanes()
        // The working device opens slowly, so that the broken one's lanes have tried their load before the work
        // is done (on a loaded machine they sometimes had not started by then, and nothing had failed).
        let working = Self.cpuLanes(2, id: "cuda:0", openDelay: 0.3).makeLanes()
        let lanes = (working + broken).map { EncodeLane<[Int32], HostMatrix>(device: $0, end: .longest, tokenBudget: 100) }
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(items, length: \.count)
        #expect(AccelerationRouterTests.maxDifference(result.outputs, try Self.reference(items, skip: [])) < 1e-5)
        #expect(result.devices[2].failure != nil && result.devices[3].failure != nil)
        #expect(result.devices[2].failure == result.devices[3].failure)
        #expect(result.devices[0].sequences + result.devices[1].sequences == 60)
        // Under --force-gpu the run fails naming the device, not a lane.
        let strict = (Self.cpuLanes(2, id: "cuda:1", failLoad: true).makeLanes()).map { EncodeLane<[Int32], HostMatrix>(device: $0, end: .longest, tokenBudget: 100) }
        do {
            _ = try EncodeScheduler(lanes: strict, policy: .failRun, profiler: Profiler(enabled: false)).run(items, length: \.count)
            Issue.record("expected the run to fail")
        } catch let EncodeSchedulerError.deviceFailed(device, reason) {
            #expect(device == "cuda:1")
            #expect(reason.contains("colgrep-model"))
        }
    }

    /// Simulated devices with several lanes each: every item once and in order whatever the split, and a
    /// lane that fails mid-run gives its batch back while its sibling lanes and the other devices finish.
    @Test(arguments: [(1, 2), (2, 2), (3, 3), (4, 2)])
    func severalLanesPerDeviceEncodeEveryItemOnceInOrder(devices: Int, lanesPerDevice: Int) throws {
        let sequences = randomSequences(count: 240, maxLength: 50, seed: UInt64(devices * 10 + lanesPerDevice))
        let ledger = EncodeLedger()
        var lanes: [EncodeLane<TestSequence, [Float]>] = []
        let device = DeviceCost(coldStartSeconds: 0, perBatchSeconds: 1e-4, perTokenSeconds: 1e-7)
        // Lane 1 of device 0 runs first and fails on its first batch; every other lane starts after that,
        // so the failed batch must go back to the queue and be encoded by the others.
        let failed = DispatchSemaphore(value: 0)
        for d in 0..<devices {
            for lane in 0..<lanesPerDevice {
                let failing = d == 0 && lane == 1
                lanes.append(EncodeLane(device: SimulatedDevice(id: "cuda:\(d)", kind: .gpu, ledger: ledger, noise: 1e-5, lane: lane,
                                                                failOnBatch: failing ? 1 : nil,
                                                                startAfter: failing ? nil : failed, onFailure: failing ? failed : nil),
                                        end: .longest, tokenBudget: 150, cost: device.sharedBy(lanes: lanesPerDevice)))
            }
        }
        lanes.append(EncodeLane(device: SimulatedDevice(id: "cpu", kind: .cpu, ledger: ledger, startAfter: failed), end: .shortest, tokenBudget: 40))
        let result = try EncodeScheduler(lanes: lanes, policy: .requeue, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        #expect(result.outputs.count == sequences.count)
        for (vector, sequence) in zip(result.outputs, sequences) {
            #expect(zip(vector, SimulatedDevice.embedding(of: sequence.tokens)).allSatisfy { abs($0 - $1) <= 1e-3 })
        }
        #expect(ledger.all.sorted() == Array(0..<sequences.count))
        #expect(result.devices.reduce(0) { $0 + $1.sequences } == sequences.count)
        let merged = DeviceRunStats.byDevice(result.devices)
        #expect(merged.map(\.stats.device.id) == (0..<devices).map { "cuda:\($0)" } + ["cpu"])
        #expect(merged.map(\.lanes) == Array(repeating: lanesPerDevice, count: devices) + [1])
        #expect(merged.reduce(0) { $0 + $1.stats.sequences } == sequences.count)
        #expect(result.devices[1].failure == "out of memory on batch 1")
        #expect(result.devices[1].sequences == 0)
        #expect(merged[0].stats.failure == "out of memory on batch 1")
    }

    @Test func aLaneFailingUnderForceGPUFailsTheRunNamingItsDevice() {
        let sequences = randomSequences(count: 100, maxLength: 20, seed: 45)
        let ledger = EncodeLedger()
        // Lane 1 of cuda:1 fails on its first batch before any other lane starts.
        let failed = DispatchSemaphore(value: 0)
        let lanes: [EncodeLane<TestSequence, [Float]>] = (0..<2).flatMap { d in
            (0..<2).map { lane in
                let failing = d == 1 && lane == 1
                return EncodeLane<TestSequence, [Float]>(device: SimulatedDevice(id: "cuda:\(d)", kind: .gpu, ledger: ledger, lane: lane,
                                                                                 failOnBatch: failing ? 1 : nil, startAfter: failing ? nil : failed,
                                                                                 onFailure: failing ? failed : nil),
                                                         end: .longest, tokenBudget: 60)
            }
        }
        #expect(throws: EncodeSchedulerError.deviceFailed(device: "cuda:1", reason: "out of memory on batch 1")) {
            try EncodeScheduler(lanes: lanes, policy: .failRun, profiler: Profiler(enabled: false)).run(sequences, length: \.tokens.count)
        }
    }

    /// A lane's batch comes back as one block; large blocks are split per sequence on every core, in order.
    @Test func aLargeBlockIsSplitPerSequenceInOrder() {
        let sizes = (0..<300).map { ($0 * 37) % 101 }
        let offsets = HostRowBlock.offsets(sizes: sizes)
        let cols = 160
        let block = HostRowBlock(cols: cols, offsets: offsets) { destination in
            for i in 0..<(offsets.last! * cols) { destination[i] = Float(i % 65_521) }
        }
        #expect(block.rows * cols >= 1 << 21)
        let split = SharedModelLanes.Lane.split(block)
        #expect(split.count == sizes.count)
        #expect(zip(split, block.matrices()).allSatisfy { $0.rows == $1.rows && $0.cols == $1.cols && $0.values == $1.values })
        #expect(split.map(\.rows) == sizes)
    }

    @Test func aDevicesCostIsSharedByItsLanes() {
        let device = DeviceCost(coldStartSeconds: 0.3, perBatchSeconds: 0.002, perTokenSeconds: 1e-7)
        let lane = device.sharedBy(lanes: 2)
        #expect(lane.coldStartSeconds == 0.3)
        #expect(abs(lane.batchSeconds(tokens: 65536) - 2 * device.batchSeconds(tokens: 65536)) < 1e-12)
        // Two lanes busy at once drain at the device's rate, not twice it.
        #expect(abs(2 * lane.throughput(tokenBudget: 65536) - device.throughput(tokenBudget: 65536)) < 1e-3)
        #expect(device.sharedBy(lanes: 0) == device)
    }

    @Test func theLaneCountComesFromTheEnvironmentWithAClearError() throws {
        #expect(try GPULanes.count(environment: [:]) == GPULanes.defaultCount)
        #expect(try GPULanes.count(environment: ["COLGREP_GPU_LANES": " 3 "]) == 3)
        for bad in ["0", "9", "two", "-1"] {
            #expect(throws: ColGrepError.self) { try GPULanes.count(environment: ["COLGREP_GPU_LANES": bad]) }
        }
        do {
            _ = try GPULanes.count(environment: ["COLGREP_GPU_LANES": "two"])
        } catch {
            #expect("\(error)".contains("COLGREP_GPU_LANES"))
        }
    }
}
