import Foundation
import Testing
@testable import Tokenizers

/// The binary tokenizer cache: a load from the cache gives the same ids as HF, the cache is really
/// consulted, and a damaged, truncated, foreign or stale cache file is never used (the JSON is parsed
/// again and the file rewritten).
@Suite struct TokenizerCacheTests {
    /// A scratch folder with a copy of `tokenizer` (so tests can edit it) and an empty cache folder.
    private struct Sandbox {
        let root: URL
        let tokenizerFile: URL
        let cache: TokenizerCache

        init(copying tokenizer: URL) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tokcache-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            tokenizerFile = root.appendingPathComponent("tokenizer.json")
            try FileManager.default.copyItem(at: tokenizer, to: tokenizerFile)
            cache = TokenizerCache(directory: root.appendingPathComponent("cache"))
        }

        var key: TokenizerCache.Key {
            get throws { TokenizerCache.Key(source: tokenizerFile, contents: try Data(contentsOf: tokenizerFile)) }
        }

        var cacheFile: URL {
            get throws { cache.file(for: try key) }
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    private func parity(_ tokenizer: Tokenizer, _ expectedName: String) throws -> [String] {
        let texts = try FixtureSupport.corpus()
        let expected = try FixtureSupport.expected(expectedName)
        return FixtureSupport.mismatches(tokenizer, texts: texts, expected: expected.ids, addSpecialTokens: true)
    }

    @Test func cachedLoadsMatchHuggingFaceForBothModelKinds() throws {
        for (file, expected) in [(FixtureSupport.miniLMTokenizer, "expected-minilm.json"),
                                 (FixtureSupport.bpeTokenizer, "expected-bpe.json")] {
            let box = try Sandbox(copying: file)
            defer { box.remove() }
            _ = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
            #expect(FileManager.default.fileExists(atPath: try box.cacheFile.path), "the first load writes the cache")
            #expect(box.cache.load(try box.key) != nil)
            let cached = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
            let bad = try parity(cached, expected)
            #expect(bad.isEmpty, "\(file.lastPathComponent) from the cache: \(bad.joined(separator: "\n"))")
        }
    }

    @Test func aValidCacheFileIsWhatALoadUses() throws {
        // A cache file made for this tokenizer's bytes but holding another truncation length: the load
        // must follow the cache (proving the JSON was not parsed).
        let box = try Sandbox(copying: FixtureSupport.miniLMTokenizer)
        defer { box.remove() }
        let json = try Data(contentsOf: box.tokenizerFile)
        let (spec, _) = try TokenizerSpec.parse(jsonData: json, source: "t")
        var settings = try spec.settings(source: "t")
        settings["truncation"] = ["max_length": 16, "strategy": "LongestFirst", "stride": 0] as [String: Any]
        let altered = TokenizerSpec(vocab: spec.vocab, merges: spec.merges, addedTokens: spec.addedTokens,
                                    modelType: spec.modelType, settingsJSON: try JSONSerialization.data(withJSONObject: settings))
        try FileManager.default.createDirectory(at: box.cache.directory, withIntermediateDirectories: true)
        try TokenizerCache.encode(altered, key: try box.key).write(to: try box.cacheFile)
        let tokenizer = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
        #expect(tokenizer.truncationMaxLength == 16)
        #expect(try Tokenizer(contentsOf: box.tokenizerFile, cache: nil).truncationMaxLength == 128)
    }

    @Test func damagedCacheFilesAreIgnoredAndRewritten() throws {
        let box = try Sandbox(copying: FixtureSupport.miniLMTokenizer)
        defer { box.remove() }
        let reference = try Tokenizer(contentsOf: box.tokenizerFile, cache: nil)
        let probe = "func parseArguments(_ argv: [String]) throws -> Options // naïve 東京"
        _ = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
        let good = try Data(contentsOf: try box.cacheFile)

        var flipped = good
        flipped[flipped.count / 2] ^= 0x40
        var badMagic = good
        badMagic[0] = UInt8(ascii: "X")
        var badVersion = good
        badVersion[8] &+= 1
        let damaged: [(String, Data)] = [
            ("one flipped payload byte", flipped),
            ("truncated", good.prefix(good.count - 7)),
            ("header only", good.prefix(TokenizerCache.headerSize)),
            ("empty", Data()),
            ("other magic", badMagic),
            ("other format version", badVersion),
            ("garbage", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })),
            ("trailing bytes", good + Data([1, 2, 3])),
        ]
        for (what, bytes) in damaged {
            try bytes.write(to: try box.cacheFile)
            #expect(box.cache.load(try box.key) == nil, "\(what) must be a miss")
            let tokenizer = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
            #expect(tokenizer.encode(probe) == reference.encode(probe), "\(what)")
            #expect(try Data(contentsOf: try box.cacheFile) == good, "\(what): the cache is rewritten")
        }
    }

    @Test func aChecksummedButMalformedPayloadIsAMissNotACrash() throws {
        let box = try Sandbox(copying: FixtureSupport.bpeTokenizer)
        defer { box.remove() }
        let key = try box.key
        // Payloads whose checksum is right but whose content lies: counts past the end, invalid UTF-8.
        let payloads: [[UInt8]] = [
            { var w = ByteWriter(); w.string("BPE"); w.bytes([]); w.u32(UInt32.max); return w.buffer }(),
            { var w = ByteWriter(); w.string("BPE"); w.bytes([]); w.u32(1); w.i32(0); w.bytes([0xFF, 0xFE]); return w.buffer }(),
            { var w = ByteWriter(); w.string("BPE"); w.bytes([]); w.u32(0); w.u8(7); return w.buffer }(),
            { var w = ByteWriter(); w.u32(1_000_000); return w.buffer }(),
        ]
        for payload in payloads {
            var file = ByteWriter()
            file.raw(TokenizerCache.magic)
            file.u32(TokenizerCache.formatVersion)
            file.u32(0)
            file.u64(key.size)
            file.u64(key.contentHash)
            file.u64(UInt64(payload.count))
            file.u64(payload.withUnsafeBytes { FastHash.hash($0) })
            file.raw(payload)
            #expect(TokenizerCache.decode(Data(file.buffer), key: key) == nil)
        }
    }

    @Test func anEditedTokenizerFileMakesTheCacheStale() throws {
        let box = try Sandbox(copying: FixtureSupport.miniLMTokenizer)
        defer { box.remove() }
        let before = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
        #expect(before.truncationMaxLength == 128)
        let oldKey = try box.key
        // Same path, new content (another truncation length): the old cache file must not be used.
        var text = try String(contentsOf: box.tokenizerFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"max_length\": 128", with: "\"max_length\": 32")
            .replacingOccurrences(of: "\"max_length\":128", with: "\"max_length\":32")
        try Data(text.utf8).write(to: box.tokenizerFile)
        let newKey = try box.key
        #expect(newKey != oldKey)
        #expect(box.cache.load(newKey) == nil)
        let after = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
        #expect(after.truncationMaxLength == 32)
        #expect(box.cache.load(newKey) != nil, "the cache is rewritten for the new content")
        #expect(box.cache.load(oldKey) == nil)
    }

    @Test func anUnwritableCacheFolderOnlyCostsTheSpeedUp() throws {
        let box = try Sandbox(copying: FixtureSupport.miniLMTokenizer)
        defer { box.remove() }
        // The cache folder's place is taken by a regular file: nothing can be written under it.
        try Data("not a folder".utf8).write(to: box.cache.directory)
        let tokenizer = try Tokenizer(contentsOf: box.tokenizerFile, cache: box.cache)
        #expect(tokenizer.encode("hello world") == [101, 7592, 2088, 102])
        #expect(box.cache.load(try box.key) == nil)
    }

    @Test func standardFolderFollowsTheEnvironment() {
        #expect(TokenizerCache.standard(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/h"])?.directory.path
            == "/x/cache/colgrep/tokenizers")
        #expect(TokenizerCache.standard(environment: ["HOME": "/h"])?.directory.path == "/h/.cache/colgrep/tokenizers")
        #expect(TokenizerCache.standard(environment: ["HOME": "/h", "COLGREP_TOKENIZER_CACHE": "off"]) == nil)
        #expect(TokenizerCache.standard(environment: [:]) == nil)
    }

    @Test func lookupsMatchMapsBuiltFromTheJSON() throws {
        for file in [FixtureSupport.miniLMTokenizer, FixtureSupport.bpeTokenizer] {
            let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
            let model = try #require(root["model"] as? [String: Any])
            let vocab = try #require(model["vocab"] as? [String: Int])
            var byToken: [String: Int32] = [:]
            var byID: [Int32: String] = [:]
            for (token, id) in vocab.sorted(by: { $0.value < $1.value }) { byToken[token] = Int32(id); byID[Int32(id)] = token }
            for entry in (root["added_tokens"] as? [[String: Any]]) ?? [] {
                let content = try #require(entry["content"] as? String), id = Int32(try #require(entry["id"] as? Int))
                byToken[content] = id
                byID[id] = content
            }
            let tokenizer = try Tokenizer(contentsOf: file, cache: nil)
            #expect(tokenizer.vocabularySize == byID.count)
            let wrongIDs = byToken.filter { tokenizer.id(forToken: $0.key) != $0.value }.map(\.key)
            let wrongTokens = byID.filter { tokenizer.token(forID: $0.key) != $0.value }.map(\.key)
            #expect(wrongIDs.isEmpty, "\(file.lastPathComponent): \(wrongIDs.prefix(5))")
            #expect(wrongTokens.isEmpty, "\(file.lastPathComponent): \(wrongTokens.prefix(5))")
            for absent in ["no-such-token-xyz", "", "Ġno-such", "##zzzzqq"] where byToken[absent] == nil {
                #expect(tokenizer.id(forToken: absent) == nil, "\(absent)")
            }
            #expect(tokenizer.token(forID: -5) == nil)
            #expect(tokenizer.token(forID: Int32(byID.count + 100)) == nil)
        }
    }
}
