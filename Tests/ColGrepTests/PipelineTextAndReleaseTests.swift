import CodeUnits
import Foundation
import Testing
@testable import ColGrep

/// Two pieces of the indexing pipeline's lanes: the embedding texts' dedup by precomputed hashes, and the
/// release of a written group of rows on a queue of its own.
@Suite struct PipelineTextAndReleaseTests {
    @Test func equalTextsShareOneEntryAndDistinctOnesKeepTheirOwn() {
        let texts = ["def a(): pass", "def b(): pass", "def a(): pass", "class C: ...", "def b(): pass"]
        let built = texts.map { (text: $0, hash: UInt64(truncatingIfNeeded: $0.hashValue)) }
        let (unique, mapping) = EncodePipeline.uniqueTexts(built)
        #expect(unique == ["def a(): pass", "def b(): pass", "class C: ..."])
        #expect(mapping == [0, 1, 0, 2, 1])
    }

    /// Different texts that share a hash (a 64-bit collision, forced here) stay distinct, and equal texts
    /// among them still meet.
    @Test func textsWhoseHashesCollideStayDistinct() {
        let texts = ["x", "y", "z", "y", "x", "z"]
        let (unique, mapping) = EncodePipeline.uniqueTexts(texts.map { (text: $0, hash: 7) })
        #expect(unique == ["x", "y", "z"])
        #expect(mapping == [0, 1, 2, 1, 0, 2])
        for (i, text) in texts.enumerated() { #expect(unique[mapping[i]] == text) }
    }

    /// The chunk's texts are exactly `EmbeddingText.build` of each unit, deduplicated.
    @Test func chunkTextsAreTheUnitsTextsDeduplicated() {
        func unit(_ name: String, _ code: String) -> CodeUnit {
            CodeUnit(name: name, qualifiedName: name, file: "m.py", line: 1, endLine: 1, language: "python",
                     unitType: .function, signature: "def \(name)()", code: code)
        }
        let units = (0..<200).map { unit("f\($0 % 70)", "return \($0 % 70)") }
        let (texts, mapping) = EncodePipeline.embeddingTexts(units)
        #expect(texts.count == 70)
        for (i, u) in units.enumerated() { #expect(texts[mapping[i]] == EmbeddingText.build(for: u)) }
    }

    /// What the store writer hands over is freed on the release queue, not on the thread that handed it
    /// over (which keeps no reference to it).
    @Test func aReleasedValueIsFreedOnAnotherThread() {
        final class Probe: @unchecked Sendable {
            let freedOn: LockedValue<pthread_t?>
            init(_ freedOn: LockedValue<pthread_t?>) { self.freedOn = freedOn }
            deinit { freedOn.withLock { $0 = pthread_self() } }
        }
        let freedOn = LockedValue<pthread_t?>(nil)
        let probes = (0..<3).map { _ in Probe(freedOn) }
        BackgroundRelease.release(consume probes)
        BackgroundRelease.drain()
        let thread = freedOn.withLock { $0 }
        #expect(thread != nil)
        if let thread { #expect(pthread_equal(thread, pthread_self()) == 0) }
    }
}
