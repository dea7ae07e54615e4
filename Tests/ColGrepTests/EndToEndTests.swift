import Foundation
@testable import Plaid
import Testing

/// Drives the built `colgrep` binary (from `swift build --build-tests`) on small projects created
/// here, with `COLGREP_DATA_DIR` in a temp folder and the bundled fallback model.
@Suite(.serialized) struct EndToEndTests {
    typealias Run = BuiltBinary.Run
    static var packageRoot: URL { BuiltBinary.packageRoot }
    static var binary: URL? { BuiltBinary.url }

    static var modelAvailable: Bool {
        FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(".deps/models/all-MiniLM-L6-v2/config.json").path)
    }

    let data: URL
    let project: URL

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-e2e-\(UUID().uuidString.prefix(8))")
        data = base.appendingPathComponent("data")
        project = base.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try Self.writeProject(project)
    }

    static func writeProject(_ root: URL) throws {
        let files: [String: String] = [
            "src/http_client.py": """
            import time

            def fetch_with_retry(url, max_retries=3):
                \"\"\"Fetch a URL, retrying with exponential backoff.\"\"\"
                for attempt in range(max_retries):
                    try:
                        return get(url)
                    except IOError:
                        time.sleep(2 ** attempt)
                raise IOError("gave up")
            """,
            "src/parser.rs": """
            /// Parses a configuration file into key-value pairs.
            pub fn parse_config(text: &str) -> Vec<(String, String)> {
                text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
            }
            """,
            "web/cart.js": """
            // Shopping cart total with tax.
            function cartTotal(items, taxRate) {
              const subtotal = items.reduce((sum, item) => sum + item.price * item.quantity, 0);
              return subtotal * (1 + taxRate);
            }
            """,
            "README.md": "# Demo\n\nA tiny project used by colgrep's end-to-end tests.\n",
        ]
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    @discardableResult
    func colgrep(_ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> Run {
        let process = try start(args, cwd: cwd, env: env)
        return finish(process)
    }

    func start(_ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        try BuiltBinary.start(args, cwd: cwd ?? project, data: data, env: env)
    }

    func finish(_ started: (Process, Pipe, Pipe)) -> Run {
        BuiltBinary.finish(started)
    }

    func cleanup() {
        try? FileManager.default.removeItem(at: data.deletingLastPathComponent())
    }

    /// The folder of the one index the test's data directory holds.
    func indexDirectory() throws -> URL {
        let indices = data.appendingPathComponent("indices")
        return indices.appendingPathComponent(try #require(try FileManager.default.contentsOfDirectory(atPath: indices.path).first))
    }

    var ready: Bool { Self.binary != nil && Self.modelAvailable }

    @Test func initSearchEditStatusClear() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { cleanup() }
        let first = try colgrep(["init", "."])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("Indexed \(project.resolvingSymlinksInPath().path) (added: 4, changed: 0, deleted: 0, unchanged: 0)"))

        let again = try colgrep(["init"])
        #expect(again.stderr.contains("Index is up to date for"))
        #expect(!again.stderr.contains("Model:"), "no model load when nothing changed")

        // Semantic / hybrid search: the retry helper ranks first.
        let hybrid = try colgrep(["retry a request with exponential backoff"])
        #expect(hybrid.status == 0)
        #expect(hybrid.stdout.hasPrefix("src/http_client.py:"), "\(hybrid.stdout)")
        let semantic = try colgrep(["--semantic-only", "-k", "1", "sum of item prices in the shopping cart"])
        #expect(semantic.stdout.hasPrefix("web/cart.js:"), "\(semantic.stdout)")

        // JSON: absolute paths and every CodeUnit field.
        let json = try colgrep(["--json", "-k", "2", "parse configuration key value"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        let unit = parsed?.first?["unit"] as? [String: Any]
        #expect((unit?["file"] as? String)?.hasSuffix("/src/parser.rs") == true)
        #expect(unit?["code"] is String && unit?["called_by"] is [Any] && parsed?.first?["score"] is Double)

        // Regex family: -e prints every matching line; -F -w; -l; -c.
        let regex = try colgrep(["-e", "def |function "])
        #expect(regex.stdout.contains("src/http_client.py:3:def fetch_with_retry(url, max_retries=3):"))
        #expect(regex.stdout.contains("web/cart.js:2:function cartTotal(items, taxRate) {"))
        let fixed = try colgrep(["-e", "max_retries", "-F", "-w", "-l"])
        #expect(fixed.stdout == "src/http_client.py\n")
        let filtered = try colgrep(["shopping", "--include", "*.{rs,py}", "-l"])
        #expect(!filtered.stdout.contains("cart.js"))
        let excluded = try colgrep(["config", "--exclude-dir", "src", "-l"])
        #expect(!excluded.stdout.contains("src/"))

        // Edit, add and delete files: the next search sees the change.
        try "def shipping_cost(weight):\n    return 4.5 + 0.3 * weight\n".write(to: project.appendingPathComponent("src/shipping.py"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: project.appendingPathComponent("src/parser.rs"))
        try "// Shopping cart discount.\nfunction applyCoupon(total, coupon) {\n  return total * (1 - coupon.percent / 100);\n}\n"
            .write(to: project.appendingPathComponent("web/cart.js"), atomically: true, encoding: .utf8)
        let afterEdit = try colgrep(["-l", "coupon discount shipping parse_config"])
        #expect(afterEdit.stderr.contains("added: 1, changed: 1, deleted: 1"), "\(afterEdit.stderr)")
        #expect(afterEdit.stdout.contains("src/shipping.py") && afterEdit.stdout.contains("web/cart.js"))
        #expect(!afterEdit.stdout.contains("parser.rs"))
        let gone = try colgrep(["-e", "cartTotal"])
        #expect(gone.stdout.isEmpty || gone.stdout.hasPrefix("No results"), "\(gone.stdout)")

        let status = try colgrep(["status"])
        #expect(status.stdout.hasPrefix("Project: \(project.resolvingSymlinksInPath().path)\nModel:   lightonai/LateOn-Code-edge\nIndex:   "))
        let stats = try colgrep(["--stats"])
        #expect(stats.stdout.contains("Total: 1 indexes"))
        let cleared = try colgrep(["clear"])
        #expect(cleared.stdout.hasPrefix("🗑️  Cleared index for"))
        let statusAfter = try colgrep(["status"])
        #expect(statusAfter.stdout.hasPrefix("No index found for"))
    }

    @Test func badInputGivesClearErrors() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        let missing = try colgrep(["query", "/definitely/not/here"])
        #expect(missing.status == 1 && missing.stderr.contains("Path not found: /definitely/not/here"))
        let file = try colgrep(["init", "README.md"])
        #expect(file.status == 2 && file.stderr.contains("is a file"))
        let noQuery = try colgrep([])
        #expect(noQuery.status == 2 && noQuery.stderr.contains("nothing to search for"))
        let badAlpha = try colgrep(["x", "--alpha", "3"])
        #expect(badAlpha.status == 2)
        let gpu = try colgrep(["--force-gpu", "x"])
        #expect(gpu.status != 0 && gpu.stderr.contains("GPU unavailable"))
        // An unwritable data folder.
        let readOnly = data.deletingLastPathComponent().appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: readOnly.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: readOnly.path) }
        if getuid() != 0 {
            let unwritable = try colgrep(["init"], env: ["COLGREP_DATA_DIR": readOnly.appendingPathComponent("sub").path])
            #expect(unwritable.status == 1 && unwritable.stderr.contains("COLGREP_DATA_DIR"))
        }
        let blocker = data.deletingLastPathComponent().appendingPathComponent("afile")
        try Data("x".utf8).write(to: blocker)
        let notADir = try colgrep(["init"], env: ["COLGREP_DATA_DIR": blocker.path])
        #expect(notADir.status == 1 && notADir.stderr.contains("COLGREP_DATA_DIR"), "\(notADir.stderr)")
    }

    @Test func corruptedIndexIsRebuilt() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        #expect(try colgrep(["init"]).status == 0)
        let directory = try indexDirectory()
        let db = directory.appendingPathComponent("metadata.db")
        try Data(repeating: 0x41, count: 4096).write(to: db)
        let state = directory.appendingPathComponent("state.json")
        try Data("{\"broken\":".utf8).write(to: state)
        let run = try colgrep(["-l", "retry backoff"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("Rebuilding") || run.stderr.contains("damaged"), "\(run.stderr)")
        #expect(run.stdout.contains("src/http_client.py"))
    }

    /// An index written by an older colgrep (its manifest names an older format version) is rebuilt by the
    /// next search, which says why without calling it damaged, and finds the code.
    @Test func anIndexOfAnOlderFormatIsRebuiltWithANotice() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        #expect(try colgrep(["init"]).status == 0)
        let directory = try indexDirectory()
        let index = directory.appendingPathComponent("index")
        var manifest = try Manifest.load(from: index)
        manifest.formatVersion = IndexFiles.formatVersion - 1
        try manifest.commit(to: index, written: [])
        let run = try colgrep(["-l", "retry backoff"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("written by another version of colgrep") && !run.stderr.contains("damaged"), "\(run.stderr)")
        #expect(run.stdout.contains("src/http_client.py"), "\(run.stdout)")
        #expect(try Manifest.load(from: index).formatVersion == IndexFiles.formatVersion)
    }

    @Test func settingsBinaryBuildsAOneBitIndexThatStillFindsTheCode() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        let set = try colgrep(["settings", "--binary"])
        #expect(set.status == 0 && set.stdout.contains("binary index"), "\(set.stdout)\(set.stderr)")
        #expect(try colgrep(["init"]).status == 0)
        let directory = try indexDirectory()
        let index = try PlaidIndex.open(at: directory.appendingPathComponent("index"))
        #expect(index.config.nbits == 1)
        let found = try colgrep(["-l", "retry backoff"])
        #expect(found.status == 0 && found.stdout.contains("src/http_client.py"), "\(found.stdout)\(found.stderr)")
        #expect(try colgrep(["settings", "--no-binary"]).status == 0)
    }

    @Test func statusVerifyChecksEveryIndexFile() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        #expect(try colgrep(["init"]).status == 0)
        let verified = try colgrep(["status", "--verify"])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("Verified: every index file matches its checksum."))
        // Flip one byte in the middle of a segment file, keeping its size.
        let directory = try indexDirectory()
        let vectors = directory.appendingPathComponent("index")
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: vectors.path).first { $0.hasPrefix("segment-") })
        let url = vectors.appendingPathComponent(segment)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: url)
        let damaged = try colgrep(["status", "--verify"])
        #expect(damaged.status == 1)
        #expect(damaged.stderr.contains(vectors.path) && damaged.stderr.contains("colgrep clear"), "\(damaged.stderr)")
    }

    @Test func concurrentIndexerWaitsThenReportsTheLock() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        #expect(try colgrep(["init"]).status == 0)
        let directory = try indexDirectory()
        let lockPath = directory.appendingPathComponent(".lock").path
        // Hold the lock from a child process (flock is per open file, so this is a real second holder).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = [lockPath, "sleep", "7"]
        try holder.run()
        defer { holder.waitUntilExit() }
        Thread.sleep(forTimeInterval: 0.3)
        let second = try colgrep(["init"])
        #expect(second.status == 75 && second.stderr.contains("Timed out waiting for index lock"), "\(second.stderr)")
        // A search does not wait: it searches the existing index.
        let search = try colgrep(["-l", "retry backoff"])
        #expect(search.status == 0 && search.stderr.contains("Index is being updated by another process"))
        #expect(search.stdout.contains("src/http_client.py"))
    }

    @Test func interruptedFirstBuildResumes() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        for i in 0..<12 {
            try "def helper_\(i)(value):\n    \"\"\"Helper number \(i).\"\"\"\n    return value * \(i)\n"
                .write(to: project.appendingPathComponent("src/helper_\(i).py"), atomically: true, encoding: .utf8)
        }
        let started = try start(["init"], env: ["COLGREP_CHECKPOINT_UNITS": "1"])
        let indices = data.appendingPathComponent("indices")
        var interrupted = false
        for _ in 0..<3000 {
            if let dir = try? FileManager.default.contentsOfDirectory(atPath: indices.path).first,
               let text = try? String(contentsOfFile: indices.appendingPathComponent(dir).appendingPathComponent("state.json").path, encoding: .utf8),
               text.contains("content_hash") {
                kill(started.0.processIdentifier, SIGINT)
                interrupted = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let first = finish(started)
        #expect(interrupted)
        #expect(first.status == 130, "\(first.stderr)")
        #expect(first.stderr.contains("Interrupted"))
        let status = try colgrep(["status"])
        #expect(status.stdout.contains("interrupted"))
        let resumed = try colgrep(["init"], env: ["COLGREP_CHECKPOINT_UNITS": "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("Indexed"))
        // The resumed index holds every file exactly once.
        let all = try colgrep(["-e", "def helper_", "-c", "--json"])
        let hits = (try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [[String: Any]]) ?? []
        let files = hits.compactMap { ($0["unit"] as? [String: Any])?["file"] as? String }
        #expect(Set(files).count == 12 && files.count == 12, "\(files)")
        // No unit was stored twice: the index holds exactly what a dry run counts.
        let dry = try colgrep(["init", "--dry-run"])
        let stats = try colgrep(["--stats"])
        let expected = dry.stdout.split(separator: "(").last?.split(separator: " ").first.map(String.init) ?? "?"
        #expect(stats.stdout.contains("Functions indexed: \(expected)\n"), "\(dry.stdout) \(stats.stdout)")
    }
}
