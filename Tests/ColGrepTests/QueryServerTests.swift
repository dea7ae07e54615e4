import Foundation
import Testing
@testable import ColGrep

/// The resident query server (issue #6, one-shot latency): a served search prints the same bytes and
/// exits with the same status as the in-process search, and a dead, stopped, stale or busy server never
/// blocks a search or changes what it prints. Drives the built binary; `COLGREP_SERVER_REQUIRED=1` makes
/// a client fail (status 75) instead of falling back, which proves a run was served.
@Suite(.serialized) struct QueryServerTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-server-\(UUID().uuidString.prefix(8))")
    var data: URL { base.appendingPathComponent("data") }
    var project: URL { base.appendingPathComponent("proj") }
    var serverFolder: URL { data.appendingPathComponent("server") }

    var ready: Bool {
        BuiltBinary.url != nil && FileManager.default.fileExists(atPath: BuiltBinary.packageRoot
            .appendingPathComponent(".deps/models/all-MiniLM-L6-v2/config.json").path)
    }

    /// Isolated caches and Hub endpoint; a short idle timeout so no server outlives the suite for long.
    func environment(_ extra: [String: String]) -> [String: String] {
        ["XDG_CACHE_HOME": base.appendingPathComponent("cache").path, "HF_HUB_CACHE": base.appendingPathComponent("hf").path,
         "HF_ENDPOINT": "http://127.0.0.1:9", "COLGREP_SERVER_IDLE_SECONDS": "30"].merging(extra) { $1 }
    }

    func colgrep(_ args: [String], env: [String: String] = [:]) throws -> BuiltBinary.Run {
        BuiltBinary.finish(try BuiltBinary.start(args, cwd: project, data: data, env: environment(env)))
    }

    func inProcess(_ args: [String]) throws -> BuiltBinary.Run {
        try colgrep(args, env: ["COLGREP_NO_SERVER": "1"])
    }

    func served(_ args: [String]) throws -> BuiltBinary.Run {
        try colgrep(args, env: ["COLGREP_SERVER_REQUIRED": "1"])
    }

    func write(_ path: String, _ text: String) throws {
        let url = project.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func writeProject() throws {
        try write("net/retry.py", "def fetch_with_retry(url, attempts=3):\n    \"\"\"Retry with exponential backoff.\"\"\"\n    for i in range(attempts):\n        pass\n")
        try write("cart/total.js", "// Cart total with tax.\nfunction cartTotal(items, taxRate) {\n  return items.length * (1 + taxRate);\n}\n")
        try write("cart/tax.js", "function taxFor(total) {\n  const rate = 0.2; // flat rate\n  return total * rate;\n}\n")
    }

    /// The server's pid, from the process holding its socket's lock (none: nil).
    func serverPID() -> pid_t? {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in procs {
            guard let pid = pid_t(name),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
                  String(decoding: cmdline, as: UTF8.self).contains("__colgrep-query-server"),
                  let environ = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                  String(decoding: environ, as: UTF8.self).contains(data.path) else { continue }
            return pid
        }
        return nil
    }

    /// Starts a server (a client that finds none starts one) and waits until one answers.
    func waitForServer(_ args: [String]) throws -> BuiltBinary.Run {
        var last = try served(args)
        for _ in 0..<150 where last.status == 75 {
            usleep(200_000)
            last = try served(args)
        }
        return last
    }

    func expectSame(_ a: BuiltBinary.Run, _ b: BuiltBinary.Run, _ what: String) {
        #expect(a.status == b.status, "\(what): status \(a.status) vs \(b.status)")
        #expect(a.stdout == b.stdout, "\(what): stdout differs\n\(a.stdout)\n---\n\(b.stdout)")
        #expect(a.stderr == b.stderr, "\(what): stderr differs\n\(a.stderr)\n---\n\(b.stderr)")
    }

    static let searches: [[String]] = [
        ["cart total with tax"],
        ["--json", "-k", "2", "retry with backoff"],
        ["-e", "rate", "tax"],
        ["-l", "tax"],
        ["-c", "-k", "1", "retry", "net"],
        ["--semantic-only", "--json", "cart"],
        ["tax", "cart/tax.js"],
        ["tax", "no/such/folder"],
        ["--alpha", "2", "tax"],
        ["-k", "1", "-e", "return"],
    ]

    @Test func servedSearchesPrintTheSameBytesAndStatusAsInProcessOnes() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        #expect(try inProcess(["init", "."]).status == 0)
        let first = try waitForServer(["cart total with tax"])
        #expect(first.status == 0 && first.stdout.contains("cart/total.js"), "\(first.stdout)\(first.stderr)")
        for args in Self.searches {
            expectSame(try served(args), try inProcess(args), args.joined(separator: " "))
        }
        // Another command is never offered to the server: it runs in-process even where a served run is required.
        #expect(try served(["status"]).status == 0)

        // An edit is picked up by the update the server runs before its search, as in-process.
        try write("cart/total.js", "// Order total with VAT.\nfunction orderTotal(items, vat) {\n  return items.length * (1 + vat);\n}\n")
        let afterEdit = try served(["order total with vat"])
        #expect(afterEdit.status == 0 && afterEdit.stdout.contains("cart/total.js") && afterEdit.stderr.contains("changed: 1"), "\(afterEdit.stderr)")
        expectSame(try served(["--json", "order total with vat"]), try inProcess(["--json", "order total with vat"]), "after an edit")

        // The index cleared and rebuilt under the running server: it opens the new one.
        #expect(try inProcess(["clear", "."]).status == 0)
        try write("billing/invoice.go", "package billing\n// InvoiceNumber formats an invoice id.\nfunc InvoiceNumber(n int) string { return \"\" }\n")
        #expect(try inProcess(["init", "."]).status == 0)
        let rebuilt = try served(["--json", "invoice number"])
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains("invoice.go"), "\(rebuilt.stdout)\(rebuilt.stderr)")
        expectSame(rebuilt, try inProcess(["--json", "invoice number"]), "after a rebuild")

        // Two clients at once: both answered, both identical to in-process.
        let a = try BuiltBinary.start(["tax"], cwd: project, data: data, env: environment(["COLGREP_SERVER_REQUIRED": "1"]))
        let b = try BuiltBinary.start(["--json", "retry"], cwd: project, data: data, env: environment(["COLGREP_SERVER_REQUIRED": "1"]))
        let (ra, rb) = (BuiltBinary.finish(a), BuiltBinary.finish(b))
        expectSame(ra, try inProcess(["tax"]), "concurrent client 1")
        expectSame(rb, try inProcess(["--json", "retry"]), "concurrent client 2")
    }

    /// A long function: one encode batch of several hundred tokens, enough for the CPU backend to choose
    /// int8 for its weights where that measures faster (it does on AVX2 machines).
    static func longFunction(_ name: String) -> String {
        var text = "def \(name)(records, limit, retries):\n    \"\"\"Merge the records, retrying failed writes.\"\"\"\n"
        for i in 0..<60 { text += "    value_\(i) = records.get('field_\(i)', limit * \(i)) + retries\n" }
        return text + "    return value_0\n"
    }

    @Test func searchesAfterUpdatesInTheServerStayThoseOfInProcessSearches() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        try write("store/merge.py", Self.longFunction("merge_records"))
        #expect(try inProcess(["init", "."]).status == 0)
        _ = try waitForServer(["--no-update", "cart total with tax"])
        let queries = [["--json", "-k", "5", "merge records with retries"], ["--json", "cart total with tax"]]

        // The server's update encodes a long file (its document encoder may settle its weights on int8):
        // its later queries are still encoded as a fresh process encodes them (fp32), same scores to the bit.
        try write("store/merge.py", Self.longFunction("merge_all_records"))
        let update = try served(["merge records"])
        #expect(update.status == 0 && update.stderr.contains("changed: 1"), "\(update.stderr)")
        for args in queries {
            expectSame(try served(["--no-update"] + args), try inProcess(["--no-update"] + args), "after a server update: \(args)")
        }

        // Nothing changed: the server's freshness check finds the index up to date, as in-process.
        expectSame(try served(queries[0]), try inProcess(queries[0]), "unchanged project")
        // A folder created after the server armed its watch, a file in it, then an edit of that file.
        try write("billing/new/invoice.go", "package billing\n// InvoiceNumber formats an invoice id.\nfunc InvoiceNumber(n int) string { return \"\" }\n")
        let added = try served(["--json", "invoice number"])
        #expect(added.status == 0 && added.stdout.contains("invoice.go") && added.stderr.contains("added: 1"), "\(added.stdout)\(added.stderr)")
        try write("billing/new/invoice.go", "package billing\n// TaxRate returns the rate.\nfunc TaxRate() float64 { return 0.2 }\n")
        let edited = try served(["--json", "invoice number"])
        #expect(edited.status == 0 && edited.stderr.contains("changed: 1"), "\(edited.stderr)")
        expectSame(try served(["--json", "tax rate"]), try inProcess(["--json", "tax rate"]), "after edits in a new folder")
    }

    /// Runs colgrep with standard output and error on a new pseudo-terminal; returns its status and what the
    /// terminal received.
    func onTerminal(_ args: [String], env: [String: String]) throws -> BuiltBinary.Run {
        // posix_openpt and friends are not exported by the Glibc module: looked up at run time.
        let libc = dlopen(nil, RTLD_NOW)
        typealias Open = @convention(c) (Int32) -> Int32
        typealias Step = @convention(c) (Int32) -> Int32
        typealias Name = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        let openpt = unsafeBitCast(try #require(dlsym(libc, "posix_openpt")), to: Open.self)
        let grant = unsafeBitCast(try #require(dlsym(libc, "grantpt")), to: Step.self)
        let unlock = unsafeBitCast(try #require(dlsym(libc, "unlockpt")), to: Step.self)
        let name = unsafeBitCast(try #require(dlsym(libc, "ptsname")), to: Name.self)
        let master = openpt(O_RDWR | O_NOCTTY)
        #expect(master >= 0 && grant(master) == 0 && unlock(master) == 0)
        let slave = open(String(cString: try #require(name(master))), O_RDWR | O_NOCTTY)
        #expect(slave >= 0)
        let process = Process()
        process.executableURL = BuiltBinary.url!
        process.arguments = args
        process.currentDirectoryURL = project
        var environment = ProcessInfo.processInfo.environment
        environment["COLGREP_DATA_DIR"] = data.path
        environment["COLGREP_FALLBACK_MODEL"] = BuiltBinary.packageRoot.appendingPathComponent(".deps/models/all-MiniLM-L6-v2").path
        for (k, v) in self.environment(env) { environment[k] = v }
        environment["NO_COLOR"] = nil  // a test runner may set it; a terminal user usually has not
        process.environment = environment
        let terminal = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardOutput = terminal
        process.standardError = terminal
        try process.run()
        close(slave)
        var shown: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }  // EIO once the last writer closed the terminal
            shown += buffer[0..<n]
        }
        process.waitUntilExit()
        close(master)
        return BuiltBinary.Run(status: process.terminationStatus, stdout: String(decoding: shown, as: UTF8.self), stderr: "")
    }

    @Test func searchesAtATerminalAreServedWithTheSameColoursAndLongUpdatesStayInTheClient() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        #expect(try inProcess(["init", "."]).status == 0)
        // The terminal runs' environment (no NO_COLOR) has a server of its own: started, then waited for.
        for _ in 0..<150 where try onTerminal(["--no-update", "tax"], env: ["COLGREP_SERVER_REQUIRED": "1"]).status == 75 {
            usleep(200_000)
        }
        for args in [["cart total with tax"], ["-n", "3", "retry"], ["--json", "-k", "2", "tax"], ["-e", "rate", "tax"]] {
            let served = try onTerminal(args, env: ["COLGREP_SERVER_REQUIRED": "1"])
            let local = try onTerminal(args, env: ["COLGREP_NO_SERVER": "1"])
            expectSame(served, local, "terminal: \(args)")
        }
        // Colours (of the verbose display) are on at a terminal, in the served output too; off in a pipe.
        #expect(try onTerminal(["-n", "3", "retry"], env: ["COLGREP_SERVER_REQUIRED": "1"]).stdout.contains("\u{1B}[36m"))
        #expect(!(try served(["-n", "3", "retry"]).stdout.contains("\u{1B}[")))

        // A short update at a terminal is served.
        try write("cart/total.js", "// Order total with VAT.\nfunction orderTotal(items, vat) {\n  return items.length * (1 + vat);\n}\n")
        let short = try onTerminal(["order total"], env: ["COLGREP_SERVER_REQUIRED": "1"])
        #expect(short.status == 0 && short.stdout.contains("changed: 1"), "\(short.stdout)")
        // A long one (past `ServedRequest.terminalUpdateBytes`) is declined: a required served run fails, a normal
        // one runs in the client; piped, the same update is served.
        var long = ""
        // Few units (cheap to encode: each is cut at the model's length), many bytes.
        let filler = String(repeating: "Looks the request up and returns its field. ", count: 100)
        for i in 0..<8 { long += "def handler_\(i)(request):\n    \"\"\"\(filler)\"\"\"\n    return request.get('field_\(i)')\n\n" }
        #expect(long.utf8.count > ServedRequest.terminalUpdateBytes)
        try write("api/handlers.py", long)
        #expect(try onTerminal(["handler"], env: ["COLGREP_SERVER_REQUIRED": "1"]).status == 75)
        let inClient = try onTerminal(["handler"], env: [:])
        #expect(inClient.status == 0 && inClient.stdout.contains("added: 1") && inClient.stdout.contains("handlers.py"), "\(inClient.stdout)")
        try write("api/handlers.py", long + "def last(request):\n    return None\n")
        let piped = try served(["handler"])
        #expect(piped.status == 0 && piped.stderr.contains("changed: 1"), "\(piped.stderr)")
    }

    @Test func deadStoppedOrStaleServersNeverChangeOrBlockASearch() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        #expect(try inProcess(["init", "."]).status == 0)
        let expected = try inProcess(["--json", "cart total"])
        #expect(try waitForServer(["cart total"]).status == 0)

        // A server killed while a client waits on it (stopped first, so the request is surely queued):
        // the client runs the search itself, same bytes.
        let pid = try #require(serverPID())
        kill(pid, SIGSTOP)
        let waiting = try BuiltBinary.start(["--json", "cart total"], cwd: project, data: data, env: environment([:]))
        usleep(500_000)
        kill(pid, SIGKILL)
        expectSame(BuiltBinary.finish(waiting), expected, "server killed mid-request")

        // Its socket file stays behind (stale): the next client falls back, and starts a new server.
        let sockets = try FileManager.default.contentsOfDirectory(atPath: serverFolder.path).filter { $0.hasSuffix(".sock") }
        #expect(sockets.count == 1)
        expectSame(try colgrep(["--json", "cart total"]), expected, "stale socket file")
        expectSame(try waitForServer(["--json", "cart total"]), expected, "new server after a stale socket")

        // A garbage socket file (not a socket at all) at the path: in-process, same bytes.
        stopServer()
        for name in sockets {
            try FileManager.default.removeItem(at: serverFolder.appendingPathComponent(name))
            try Data("junk".utf8).write(to: serverFolder.appendingPathComponent(name))
        }
        expectSame(try colgrep(["--json", "cart total"]), expected, "garbage socket file")

        // A damaged index: the server never repairs it (it declines), the client's own search rebuilds it.
        _ = try waitForServer(["--json", "cart total"])
        let index = try #require(try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("indices").path).first)
        let manifest = data.appendingPathComponent("indices/\(index)/index/manifest.plaid")
        try FileManager.default.removeItem(at: manifest)
        try Data("not a manifest".utf8).write(to: manifest)
        #expect(try served(["--json", "cart total"]).status == 75, "the server answered a search of a damaged index")
        let repaired = try colgrep(["--json", "cart total"])
        #expect(repaired.status == 0 && repaired.stderr.contains("damaged"), "\(repaired.stderr)")
        expectSame(try served(["--json", "cart total"]), try inProcess(["--json", "cart total"]), "after the in-process repair")
        // A corrupt state file likewise: declined by the server, repaired by the client.
        let state = data.appendingPathComponent("indices/\(index)/state.json")
        try Data("{ not json".utf8).write(to: state)
        #expect(try served(["--json", "cart total"]).status == 75, "the server rebuilt an index with a corrupt state")
        let rebuilt = try colgrep(["--json", "cart total"])
        #expect(rebuilt.status == 0 && rebuilt.stderr.contains("corrupt"), "\(rebuilt.stderr)")
        expectSame(try served(["--json", "cart total"]), try inProcess(["--json", "cart total"]), "after the state repair")

        // After a search that updated the index (which installs the Ctrl-C handling), SIGTERM still ends
        // the server between requests.
        try write("cart/tax.js", "function taxFor(total) {\n  return total * 0.25; // new rate\n}\n")
        #expect(try served(["tax"]).status == 0)
        let updater = try #require(serverPID())
        kill(updater, SIGTERM)
        for _ in 0..<50 where serverPID() != nil { usleep(100_000) }
        #expect(serverPID() == nil, "SIGTERM did not end the server")

        // `settings --no-server`: the running server declines and exits; searches stay in-process.
        _ = try waitForServer(["--json", "cart total"])
        #expect(try inProcess(["settings", "--no-server"]).status == 0)
        #expect(try served(["cart total"]).status == 75)
        expectSame(try colgrep(["--json", "cart total"]), try inProcess(["--json", "cart total"]), "server turned off")
        for _ in 0..<50 where serverPID() != nil { usleep(100_000) }
        #expect(serverPID() == nil, "a server still runs after settings --no-server")
    }

    @Test func anIdleServerExitsAndRemovesItsSocket() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        #expect(try inProcess(["init", "."]).status == 0)
        let env = ["COLGREP_SERVER_IDLE_SECONDS": "1", "COLGREP_SERVER_REQUIRED": "1"]
        var run = try colgrep(["tax"], env: env)
        for _ in 0..<150 where run.status == 75 {
            usleep(200_000)
            run = try colgrep(["tax"], env: env)
        }
        #expect(run.status == 0)
        for _ in 0..<100 where serverPID() != nil { usleep(100_000) }
        #expect(serverPID() == nil)
        let sockets = (try? FileManager.default.contentsOfDirectory(atPath: serverFolder.path).filter { $0.hasSuffix(".sock") }) ?? []
        #expect(sockets.isEmpty, "\(sockets)")
    }

    @Test func requestsRoundTripAndMalformedOnesAreRefused() {
        let request = QueryWire.Request(key: "k", workingDirectory: "/tmp/ü", mergedOutput: true, arguments: ["-e", "", "naïve"])
        let bytes = request.encoded()
        #expect(Array(bytes[0..<4]) == Array("CGQ1".utf8))
        #expect(QueryWire.Request.decode(body: Array(bytes[8...])) == request)
        #expect(QueryWire.Request.decode(body: Array(bytes[8..<(bytes.count - 1)])) == nil)
        #expect(QueryWire.Request.decode(body: Array(bytes[8...]) + [0]) == nil)
        #expect(QueryWire.Request.decode(body: []) == nil)
        #expect(QueryWire.Request.decode(body: [255, 255, 255, 255]) == nil)
        // Terminal flags travel; an unknown flag is refused.
        for terminal in [(false, true), (true, false), (true, true)] {
            let flagged = QueryWire.Request(key: "k", workingDirectory: "/", mergedOutput: false, terminal: terminal, arguments: ["q"])
            #expect(QueryWire.Request.decode(body: Array(flagged.encoded()[8...])) == flagged)
            #expect(flagged != request)
        }
        var unknown = QueryWire.Request(key: "k", workingDirectory: "/", mergedOutput: true, arguments: ["q"]).encoded()
        let flagAt = unknown.firstIndex(of: UInt8(ascii: "m"))!
        unknown[flagAt] = UInt8(ascii: "x")
        #expect(QueryWire.Request.decode(body: Array(unknown[8...])) == nil)
    }

    /// A served search's client computes nothing, so it never loads OpenBLAS (bound lazily, `Sources/CBLAS`):
    /// the dynamic loader's log of each process (`LD_DEBUG=libs`, one file per pid) names libopenblas for the
    /// server, which encodes the query, and for none of the clients.
    @Test func aServedClientNeverLoadsOpenBLAS() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { stopServer(); try? FileManager.default.removeItem(at: base) }
        try writeProject()
        #expect(try inProcess(["init", "."]).status == 0)
        let logs = base.appendingPathComponent("ld-logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let traced = ["LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": logs.appendingPathComponent("ld").path, "COLGREP_SERVER_REQUIRED": "1"]
        var run = try colgrep(["cart total with tax"], env: traced)
        for _ in 0..<150 where run.status == 75 {
            usleep(200_000)
            run = try colgrep(["cart total with tax"], env: traced)
        }
        #expect(run.status == 0 && run.stdout.contains("cart/total.js"), "\(run.stdout)\(run.stderr)")
        #expect(try colgrep(["--json", "retry"], env: traced).status == 0)
        let server = try #require(serverPID())
        var clients = 0, serverLoaded = false
        for name in try FileManager.default.contentsOfDirectory(atPath: logs.path) {
            let log = try String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8)
            let loadsBLAS = log.contains("libopenblas")
            if name == "ld.\(server)" {
                serverLoaded = loadsBLAS
            } else {
                clients += 1
                #expect(!loadsBLAS, "client log \(name) loads OpenBLAS")
            }
        }
        #expect(clients >= 2 && serverLoaded, "\(clients) client logs; server loaded OpenBLAS: \(serverLoaded)")
    }

    /// The server's key: an `OPENBLAS_CORETYPE` set by colgrep's own relaunch (marked by `COLGREP_BLAS_RELAUNCH`
    /// with the same value) leaves it as the client's, which asks before any relaunch; one the user set changes it.
    @Test func aCoreTypeChosenByTheRelaunchKeepsTheKeyButAUsersChangesIt() throws {
        let plain = ["COLGREP_DATA_DIR": data.path, "HOME": base.path]
        let key = try #require(QueryServerEndpoint.current(environment: plain)).key
        let relaunched = plain.merging(["OPENBLAS_CORETYPE": "Haswell", "COLGREP_BLAS_RELAUNCH": "Haswell"]) { $1 }
        #expect(QueryServerEndpoint.current(environment: relaunched)?.key == key)
        let users = plain.merging(["OPENBLAS_CORETYPE": "Haswell"]) { $1 }
        #expect(QueryServerEndpoint.current(environment: users)?.key != key)
        let changed = plain.merging(["OPENBLAS_CORETYPE": "SkylakeX", "COLGREP_BLAS_RELAUNCH": "Haswell"]) { $1 }
        #expect(QueryServerEndpoint.current(environment: changed)?.key != key)
    }

    func stopServer() {
        while let pid = serverPID() {
            kill(pid, SIGKILL)
            usleep(50_000)
        }
    }
}
