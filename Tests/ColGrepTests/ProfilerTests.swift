import Foundation
import Testing
@testable import ColGrep

@Suite struct ProfilerTests {
    @Test func disabledProfilerRecordsNothingAndStillRunsTheBody() {
        let profiler = Profiler(enabled: false)
        let value = profiler.measure("walk") { 41 + 1 }
        profiler.add(stage: "encode", seconds: 1, tokens: 10, batches: 1, device: "cpu")
        profiler.note("routing: cpu")
        #expect(value == 42)
        #expect(profiler.snapshot().isEmpty)
        #expect(profiler.recordedNotes().isEmpty)
    }

    @Test func stagesAccumulatePerDeviceInFirstSeenOrder() {
        let profiler = Profiler(enabled: true)
        profiler.add(stage: "walk", seconds: 0.5)
        profiler.add(stage: "encode", seconds: 1, tokens: 100, batches: 2, device: "cuda:0")
        profiler.add(stage: "encode", seconds: 2, tokens: 50, batches: 3, device: "cpu")
        profiler.add(stage: "encode", seconds: 1, tokens: 100, batches: 2, device: "cuda:0")
        let rows = profiler.snapshot()
        #expect(rows.map(\.label) == ["walk", "encode[cuda:0]", "encode[cpu]"])
        #expect(rows[1] == ProfileStage(stage: "encode", device: "cuda:0", calls: 2, seconds: 2, tokens: 200, batches: 4))
        let text = profiler.report()
        #expect(text.contains("encode[cuda:0]"))
        #expect(text.contains("tokens=200"))
        #expect(text.contains("peak memory"))
    }

    @Test func measureRecordsAStageEvenWhenTheBodyThrows() {
        struct Boom: Error {}
        let profiler = Profiler(enabled: true)
        #expect(throws: Boom.self) { try profiler.measure("store") { throw Boom() } }
        #expect(profiler.snapshot().map(\.stage) == ["store"])
    }

    @Test func concurrentAddsAreAllCounted() {
        let profiler = Profiler(enabled: true)
        DispatchQueue.concurrentPerform(iterations: 400) { i in
            profiler.add(stage: "tokenize", seconds: 0.001, tokens: 3, batches: 1, device: i % 2 == 0 ? "a" : "b")
        }
        let rows = profiler.snapshot()
        #expect(rows.reduce(0) { $0 + $1.calls } == 400)
        #expect(rows.reduce(0) { $0 + $1.tokens } == 1200)
    }

    @Test func environmentSwitch() {
        #expect(Profiler.isRequested(by: ["COLGREP_PROFILE": "1"]))
        #expect(Profiler.isRequested(by: ["COLGREP_PROFILE": "TRUE"]))
        #expect(!Profiler.isRequested(by: ["COLGREP_PROFILE": "0"]))
        #expect(!Profiler.isRequested(by: [:]))
    }

    /// `COLGREP_TRACE`: every measured interval becomes one complete event on its thread's row, with its
    /// real start and length; the file is valid trace-event JSON.
    @Test func theTraceHoldsEachIntervalOnItsThread() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-trace-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let trace = try #require(ProfileTrace.requested(by: ["COLGREP_TRACE": file.path]))
        #expect(ProfileTrace.requested(by: [:]) == nil)
        let profiler = Profiler(enabled: true, trace: trace)
        profiler.measure("parse") { _ = usleep(20_000) }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            profiler.measure("encode", device: "cuda:1") { _ = usleep(5_000) }
            done.signal()
        }
        done.wait()
        trace.write()
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
        let events = try #require(object?["traceEvents"] as? [[String: Any]])
        #expect(events.count == 2)
        let parse = try #require(events.first { $0["name"] as? String == "parse" })
        let encode = try #require(events.first { $0["name"] as? String == "encode[cuda:1]" })
        #expect(parse["ph"] as? String == "X" && (parse["dur"] as? Double ?? 0) >= 20_000)
        #expect((encode["dur"] as? Double ?? 0) >= 5_000 && (encode["ts"] as? Double ?? 0) >= (parse["dur"] as? Double ?? 0))
        #expect(parse["tid"] as? Int != encode["tid"] as? Int)
    }

    @Test func peakMemoryIsPositive() {
        #expect(PeakMemory.residentBytes() > 0)
    }
}

@Suite struct ProcessAgeTests {
    /// The age comes from the kernel's start time: positive, below the test run's own length, and rising.
    @Test func processAgeIsPositiveAndRises() throws {
        let first = try #require(ProcessAge.seconds())
        #expect(first >= 0 && first < 3_600)
        Thread.sleep(forTimeInterval: 0.05)
        let second = try #require(ProcessAge.seconds())
        #expect(second >= first + 0.04)
    }

    @Test func anEnabledProfileReportsTheProcessAge() {
        let report = Profiler(enabled: true).report()
        #expect(report.contains("process age "))
    }
}
