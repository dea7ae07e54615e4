import Foundation
import Testing

/// A one-shot search pays only for what it uses (issue #6, startup cost): no index file is rewritten by
/// a search, a pattern-only search never loads the model, and the offline-fallback notice of an
/// unobtainable default model is printed once, not on every call. Drives the built binary.
@Suite(.serialized) struct StartupCostTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-startup-\(UUID().uuidString.prefix(8))")
    var data: URL { base.appendingPathComponent("data") }
    var project: URL { base.appendingPathComponent("proj") }

    var ready: Bool {
        BuiltBinary.url != nil && FileManager.default.fileExists(atPath: BuiltBinary.packageRoot
            .appendingPathComponent(".deps/models/all-MiniLM-L6-v2/config.json").path)
    }

    /// Runs colgrep in the project with its own data dir, caches and an unreachable Hub endpoint.
    func colgrep(_ args: [String], env: [String: String] = [:]) throws -> BuiltBinary.Run {
        let isolated = ["XDG_CACHE_HOME": base.appendingPathComponent("cache").path, "HF_HUB_CACHE": base.appendingPathComponent("hf").path,
                        "HF_ENDPOINT": "http://127.0.0.1:9"].merging(env) { $1 }
        return BuiltBinary.finish(try BuiltBinary.start(args, cwd: project, data: data, env: isolated))
    }

    func writeProject() throws {
        let files = [
            "net/retry.py": "def fetch_with_retry(url, attempts=3):\n    \"\"\"Retry with exponential backoff.\"\"\"\n    for i in range(attempts):\n        pass\n",
            "cart/total.js": "// Cart total with tax.\nfunction cartTotal(items, taxRate) {\n  return items.length * (1 + taxRate);\n}\n",
            "cart/tax.js": "function taxFor(total) {\n  const rate = 0.2; // flat rate\n  return total * rate;\n}\n",
        ]
        for (path, text) in files {
            let url = project.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// Modification time and bytes of every file of the index folder.
    func indexSnapshot() throws -> [String: String] {
        let indices = data.appendingPathComponent("indices")
        var out: [String: String] = [:]
        let walker = FileManager.default.enumerator(at: indices, includingPropertiesForKeys: [.contentModificationDateKey, .isRegularFileKey])
        while let url = walker?.nextObject() as? URL {
            let values = try url.resourceValues(forKeys: [.contentModificationDateKey, .isRegularFileKey])
            // stats.json counts searches (by design); SQLite's -wal/-shm are its reader coordination files.
            let name = url.lastPathComponent
            guard values.isRegularFile == true, name != "stats.json", name != ".lock", !name.hasSuffix("-wal"), !name.hasSuffix("-shm") else { continue }
            let bytes = (try? Data(contentsOf: url)) ?? Data()
            out[url.path] = "\(values.contentModificationDate?.timeIntervalSince1970 ?? 0) \(bytes.count) \(bytes.hashValue)"
        }
        return out
    }

    @Test func searchesRewriteNothingPatternSearchesSkipTheModelAndTheNoticeShowsOnce() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { try? FileManager.default.removeItem(at: base) }
        try writeProject()

        // The default model (a Hub id) cannot be fetched: the first call says so and falls back…
        let first = try colgrep(["init", "."])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("using the offline fallback all-MiniLM-L6-v2"), "\(first.stderr)")
        // …later calls do not repeat it (and do not retry the network).
        let search = try colgrep(["cart total with tax"])
        #expect(search.status == 0 && search.stdout.contains("cart/total.js"), "\(search.stdout)\(search.stderr)")
        #expect(!search.stderr.contains("offline fallback"), "\(search.stderr)")

        // Searching an up-to-date index writes no index file (state, project, store, vectors).
        let before = try indexSnapshot()
        #expect(before.keys.contains { $0.hasSuffix("state.json") } && before.keys.contains { $0.hasSuffix("project.json") })
        let again = try colgrep(["retry with backoff"])
        #expect(again.status == 0 && again.stdout.contains("net/retry.py"))
        #expect(try indexSnapshot() == before)

        // A pattern alone needs no model, and still lists every matching unit.
        let pattern = try colgrep(["-e", "rate"])
        #expect(pattern.status == 0, "\(pattern.stderr)")
        #expect(!pattern.stderr.contains("Model:"), "model loaded for a pattern-only search: \(pattern.stderr)")
        #expect(pattern.stdout.contains("cart/total.js:2:function cartTotal(items, taxRate) {"), "\(pattern.stdout)")
        #expect(pattern.stdout.contains("cart/tax.js:2:const rate = 0.2; // flat rate"), "\(pattern.stdout)")
        #expect(!pattern.stdout.contains("net/retry.py"))
    }

    /// The parsed tokenizer is cached under `$XDG_CACHE_HOME/colgrep/tokenizers` by the first command that
    /// loads the model; a damaged cache file is ignored and rewritten, and results never depend on the cache.
    @Test func theTokenizerCacheIsWrittenOnceAndADamagedOneChangesNothing() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { try? FileManager.default.removeItem(at: base) }
        try writeProject()
        let built = try colgrep(["init", "."])
        #expect(built.status == 0, "\(built.stderr)")
        let folder = base.appendingPathComponent("cache/colgrep/tokenizers")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".tokenizer-cache") }
        #expect(files.count == 1, "\(files)")
        let file = folder.appendingPathComponent(try #require(files.first))
        let good = try Data(contentsOf: file)

        let reference = try colgrep(["-k", "3", "cart total with tax"])
        #expect(reference.status == 0 && reference.stdout.contains("cart/total.js"), "\(reference.stderr)")
        try Data(good.prefix(good.count / 2) + Data(repeating: 0xA5, count: 64)).write(to: file)
        let damaged = try colgrep(["-k", "3", "cart total with tax"])
        #expect(damaged.status == 0 && damaged.stdout == reference.stdout, "\(damaged.stderr)")
        #expect(try Data(contentsOf: file) == good, "the damaged cache file is rewritten")
        let uncached = try colgrep(["-k", "3", "cart total with tax"], env: ["COLGREP_TOKENIZER_CACHE": "off"])
        #expect(uncached.status == 0 && uncached.stdout == reference.stdout, "\(uncached.stderr)")
    }

    #if os(Linux)
    /// libcurl (with its ~30 TLS, Kerberos and LDAP libraries) is loaded only by a command that asks the Hub
    /// for a model, never by a search: the dynamic loader's own log (`LD_DEBUG=libs`) lists what each
    /// process loaded.
    @Test func onlyACommandThatAsksTheHubLoadsLibcurl() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { try? FileManager.default.removeItem(at: base) }
        try writeProject()
        // The first command asks the (unreachable) Hub for the default model, through libcurl…
        let first = try colgrep(["init", "."], env: ["LD_DEBUG": "libs"])
        #expect(first.status == 0, "\(first.stderr.suffix(2000))")
        #expect(first.stderr.contains("using the offline fallback all-MiniLM-L6-v2"), "\(first.stderr.suffix(2000))")
        #expect(first.stderr.contains("calling init: ") && first.stderr.contains("libcurl"),
                "the Hub request did not load libcurl")
        // …a search asks nothing and loads no libcurl, with or without the freshness check.
        for args in [["-k", "3", "cart total with tax"], ["--no-update", "-k", "3", "retry with backoff"]] {
            let search = try colgrep(args, env: ["LD_DEBUG": "libs"])
            #expect(search.status == 0 && !search.stdout.isEmpty, "\(search.stderr.suffix(2000))")
            #expect(!search.stderr.contains("libcurl"), "a search loaded libcurl: \(args)")
        }
    }
    #endif
}
