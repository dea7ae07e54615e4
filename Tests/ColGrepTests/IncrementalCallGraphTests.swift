import CodeUnits
import Foundation
import Testing
@testable import ColGrep

/// `called_by` after incremental updates equals a fresh build's: an update reads only the callers of
/// the names it touches, and must still see callers in unchanged files and new callers of unchanged
/// units. Drives the built binary (`--json` shows `called_by`).
@Suite(.serialized) struct IncrementalCallGraphTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-callgraph-\(UUID().uuidString.prefix(8))")

    var ready: Bool {
        BuiltBinary.url != nil && FileManager.default.fileExists(atPath: BuiltBinary.packageRoot
            .appendingPathComponent(".deps/models/all-MiniLM-L6-v2/config.json").path)
    }

    func colgrep(_ args: [String], project: URL, data: URL) throws -> BuiltBinary.Run {
        let env = ["XDG_CACHE_HOME": base.appendingPathComponent("cache").path, "HF_HUB_CACHE": base.appendingPathComponent("hf").path,
                   "HF_ENDPOINT": "http://127.0.0.1:9"]
        return BuiltBinary.finish(try BuiltBinary.start(args, cwd: project, data: data, env: env))
    }

    func write(_ files: [String: String], in project: URL) throws {
        for (path, text) in files {
            let url = project.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// `name → sorted called_by` of every unit that `-e def` lists (one function per file: results are
    /// collapsed per file).
    func callers(project: URL, data: URL) throws -> [String: [String]] {
        let run = try colgrep(["--json", "-e", "def "], project: project, data: data)
        #expect(run.status == 0, "\(run.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]] ?? []
        var out: [String: [String]] = [:]
        for hit in parsed {
            guard let unit = hit["unit"] as? [String: Any], let name = unit["name"] as? String else { continue }
            out[name] = ((unit["called_by"] as? [String]) ?? []).sorted()
        }
        return out
    }

    @Test func updatesKeepCalledByEqualToAFreshBuild() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing: run scripts/setup.sh and swift build"); return }
        defer { try? FileManager.default.removeItem(at: base) }
        let project = base.appendingPathComponent("proj"), data = base.appendingPathComponent("data")
        try write([
            "lib/normalize.py": "def normalize_path(p):\n    return p.strip()\n",
            "lib/unused.py": "def unused_helper():\n    return 1\n",
            "app/main.py": "def run_app(paths):\n    return [normalize_path(p) for p in paths]\n",
        ], in: project)
        #expect(try colgrep(["init", "."], project: project, data: data).status == 0)
        #expect(try callers(project: project, data: data)["normalize_path"] == ["run_app"])

        // The callee's file changes: its callers live in an unchanged file.
        try write(["lib/normalize.py": "def normalize_path(p):\n    return p.strip().lower()\n"], in: project)
        // A new file calls an unchanged unit, and the changed unit calls another one.
        try write(["tools/cli.py": "def cli_entry(argv):\n    unused_helper()\n    return run_app(argv)\n"], in: project)
        #expect(try colgrep(["init", "."], project: project, data: data).status == 0)
        let updated = try callers(project: project, data: data)

        let fresh = base.appendingPathComponent("fresh-data")
        #expect(try colgrep(["init", "."], project: project, data: fresh).status == 0)
        let rebuilt = try callers(project: project, data: fresh)
        #expect(updated == rebuilt)
        #expect(updated["normalize_path"] == ["run_app"])
        #expect(updated["unused_helper"] == ["cli_entry"])
        #expect(updated["run_app"] == ["cli_entry"])
    }
}

/// The callers of each called name, built by workers that split the callees between them, equal the
/// serial construction (including names called from several files and units calling nothing).
@Suite struct CallersByCalleeTests {
    @Test func workersSplittingTheCalleesGiveTheSerialAnswer() {
        var generator = SystemRandomNumberGenerator()
        let names = (0..<60).map { "fn_\($0)" }
        let lists: [[CodeUnit]] = (0..<12).map { file in
            (0..<8).map { i in
                let calls = (0..<Int.random(in: 0...6, using: &generator)).map { _ in names.randomElement(using: &generator)! }
                return CodeUnit(name: names[(file * 8 + i) % names.count], qualifiedName: "f\(file).py::\(i)", file: "f\(file).py",
                                line: i + 1, endLine: i + 1, language: "python", unitType: .function, signature: "", calls: calls,
                                code: "")
            }
        }
        var serial: [String: Set<String>] = [:]
        for units in lists {
            for u in units {
                for callee in u.calls { serial[callee, default: []].insert(u.name) }
            }
        }
        #expect(!serial.isEmpty)
        #expect(ProjectIndexer.callersByCallee(lists, callsPerWorker: 1) == serial)
        // More shares and partitions than this machine's cores (as on a 64-core host), and more than files.
        for workers in [3, 7, 16, 64] {
            #expect(ProjectIndexer.callersByCallee(lists, callsPerWorker: 1, maxWorkers: workers) == serial, "\(workers) workers")
        }
        #expect(ProjectIndexer.callersByCallee(lists) == serial)
        #expect(ProjectIndexer.callersByCallee([]).isEmpty)
    }
}
