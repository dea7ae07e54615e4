import Foundation
import Testing
@testable import ColGrep

/// `state.json` as `IndexState.save` writes it is read directly, to the same value `JSONDecoder` gives;
/// anything else is left to `JSONDecoder` (same values, same errors).
@Suite struct IndexStateReaderTests {
    static func encoded(_ state: IndexState, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(state)
    }

    static func fast(_ data: Data) -> IndexState? { data.withUnsafeBytes { IndexStateReader.decode($0) } }

    static func sample(_ seed: UInt64) -> IndexState {
        var rng = seed
        func next() -> UInt64 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return rng }
        let names = ["src/main.swift", "a b/c\"d.py", "tab\there\\x.rs", "ünïcödé/naïve.go", "emoji 🚀/x.ts", "ctl\u{1}\u{1F}/y.c",
                     "line\nbreak.md", "slash/\\/z.js", "", "日本語/ファイル.java"]
        var state = IndexState()
        state.cliVersion = seed % 2 == 0 ? "0.1.0" : "9.9.9-β"
        state.dirty = seed % 3 == 0
        state.nextDocID = Int64(bitPattern: next() >> 1)
        state.unitCount = Int(next() % 100_000)
        state.embeddingsAbsent = [nil, true, false][Int(seed % 3)]
        state.ignoredFiles = seed % 2 == 0 ? [] : ["x.min.js", "ünï\"q\".bin"]
        for (k, name) in names.enumerated() where next() % 4 != 0 {
            state.files["\(name)\(k)"] = FileStamp(contentHash: k == 0 ? UInt64.max : next(),
                                                   mtime: k == 1 ? Int64.min : Int64(bitPattern: next()), size: Int64(next() % 1_000_000))
        }
        return state
    }

    @Test func savedStatesReadDirectlyAsJSONDecoderReadsThem() throws {
        for seed in UInt64(0)..<40 {
            let state = Self.sample(seed)
            for pretty in [false, true] {
                let data = try Self.encoded(state, pretty: pretty)
                let direct = try #require(Self.fast(data), "seed \(seed) pretty \(pretty): \(String(decoding: data, as: UTF8.self))")
                #expect(direct == state)
                #expect(direct == (try JSONDecoder().decode(IndexState.self, from: data)))
            }
        }
        #expect(Self.fast(try Self.encoded(IndexState())) == IndexState())
    }

    @Test func anythingElseIsLeftToJSONDecoder() throws {
        let good = String(decoding: try Self.encoded(Self.sample(1)), as: UTF8.self)
        #expect(Self.fast(Data(good.utf8)) != nil)
        let refused = [
            good.replacingOccurrences(of: "\"dirty\":", with: "\"extra\":1,\"dirty\":"),        // unknown key
            good.replacingOccurrences(of: "\"dirty\":", with: "\"dirty\":true,\"dirty\":"),     // repeated key
            good.replacingOccurrences(of: "\"unit_count\":", with: "\"unit_count\":1.0,\"x\":"),
            good.replacingOccurrences(of: "\"unit_count\":", with: "\"unit_count\":01,\"x\":"),
            good.replacingOccurrences(of: "\"unit_count\":", with: "\"unit_count\":1e3,\"x\":"),
            good.replacingOccurrences(of: "\"dirty\":", with: "\"dirt\":"),                    // missing key
            String(good.dropLast()),                                                           // truncated
            good + " x",                                                                       // trailing bytes
            good.replacingOccurrences(of: "\"cli_version\":\"", with: "\"cli_version\":\"\\ud800"), // lone surrogate
            "{\"files\":{\"a\":{\"content_hash\":-1,\"mtime\":0,\"size\":0}}}",
            "",
            "[]",
        ]
        for text in refused { #expect(Self.fast(Data(text.utf8)) == nil, "\(text.prefix(80))") }
        // Escapes JSONDecoder reads are read the same way.
        let escaped = good.replacingOccurrences(of: "\"cli_version\":\"", with: "\"cli_version\":\"\\/\\u00e9\\ud83d\\ude80\\t")
        let data = Data(escaped.utf8)
        #expect(try #require(Self.fast(data)) == (try JSONDecoder().decode(IndexState.self, from: data)))
        #expect(Self.fast(data)?.cliVersion.hasPrefix("/é🚀\t") == true)
    }

    @Test func loadFallsBackToJSONDecoderWithItsErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-reader-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let layout = IndexLayout(directory: dir)
        #expect(try IndexState.load(layout) == nil)
        let state = Self.sample(7)
        try state.save(layout)
        #expect(try IndexState.load(layout)?.files == state.files)
        // An unknown key (a newer writer): JSONDecoder ignores it, so the state still loads.
        let extended = String(decoding: try Self.encoded(state), as: UTF8.self).replacingOccurrences(of: "\"dirty\":", with: "\"future\":[1,2],\"dirty\":")
        try Data(extended.utf8).write(to: layout.stateFile)
        #expect(try IndexState.load(layout)?.files == state.files)
        try Data("{\"files\": oops".utf8).write(to: layout.stateFile)
        #expect(throws: ColGrepError.self) { try IndexState.load(layout) }
    }
}
