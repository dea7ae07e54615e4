import Foundation
import Testing
@testable import ColGrep

/// `IndexState.save` writes with `IndexStateWriter`: what it writes reads back to the same state through
/// the direct reader and through `JSONDecoder`, and for ASCII paths it is byte for byte what
/// `JSONEncoder` (sorted keys, unescaped slashes) wrote before.
@Suite struct IndexStateWriterTests {
    @Test func writtenStatesReadBackThroughBothReaders() throws {
        for seed in UInt64(0)..<40 {
            let state = IndexStateReaderTests.sample(seed)
            let data = Data(IndexStateWriter.encode(state))
            let direct = try #require(IndexStateReaderTests.fast(data), "seed \(seed): \(String(decoding: data, as: UTF8.self))")
            #expect(direct == state, "seed \(seed)")
            #expect(try JSONDecoder().decode(IndexState.self, from: data) == state, "seed \(seed)")
        }
    }

    @Test func asciiStatesAreWhatJSONEncoderWrote() throws {
        for seed in UInt64(0)..<20 {
            var state = IndexStateReaderTests.sample(seed)
            state.cliVersion = "0.1.\(seed)"
            state.files = Dictionary(uniqueKeysWithValues: state.files.enumerated().map { ("src/f\($0.offset)/m-\(seed).swift", $0.element.value) })
            state.ignoredFiles = state.ignoredFiles.isEmpty ? [] : ["x.min.js", "a\"b\\c\td.bin"]
            let written = Data(IndexStateWriter.encode(state))
            #expect(written == (try IndexStateReaderTests.encoded(state)), "seed \(seed): \(String(decoding: written, as: UTF8.self))")
        }
    }

    @Test func saveWritesTheStateAtomically() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-state-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let layout = IndexLayout(directory: folder)
        let state = IndexStateReaderTests.sample(7)
        try state.save(layout)
        var expected = state
        expected.cliVersion = ColGrepVersion.string
        #expect(try IndexState.load(layout) == expected)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["state.json"])
    }
}
