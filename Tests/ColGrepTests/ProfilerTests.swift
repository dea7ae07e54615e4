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

    @Test func peakMemoryIsPositive() {
        #expect(PeakMemory.residentBytes() > 0)
    }
}
