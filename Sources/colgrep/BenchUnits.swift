import ArgumentParser
import CodeUnits
import Foundation
import Tensor

/// `colgrep bench units [PATH] --json`: throughput of walk + parse + extract + embedding text on a real
/// repository, per CPU core, and the share of end-to-end CPU indexing time it would take next to an
/// encoder of the given speed. Peers in the same run: `rg --files` for the walk, and (with
/// `--peer-python`) py-tree-sitter parsing the same files with the same grammar libraries.
struct BenchUnits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "units",
        abstract: "Benchmark walking, parsing and unit extraction on a repository.")

    @Argument(help: "Repository to measure (default: the Swift toolchain sources under /opt/swift).")
    var path: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Encoder speed in tokens per second, to estimate the share of indexing CPU time.")
    var encoderTokS: Double = 11_000

    @Option(help: "Threads the encoder speed was measured with (its CPU cost is tokens / speed × threads).")
    var encoderThreads: Double = 2

    @Option(help: "Measured passes (the reported figures are from the fastest).")
    var passes = 3

    @Option(help: "Python with the `tree-sitter` package, to run the parse-only peer.")
    var peerPython: String?

    @Option(help: "Grammar bundle directory.")
    var grammars: String?

    func run() throws {
        let root = URL(fileURLWithPath: path ?? "/opt/swift")
        let directory = grammars.map { URL(fileURLWithPath: $0) } ?? GrammarLocator.defaultDirectory()
        let extractor = try UnitExtractor(grammarDirectory: directory)

        // Cold pass: loads and verifies the grammars; reported apart from the steady-state figures.
        let coldStart = Date()
        let (warmFiles, _) = try FileWalker(root: root).walk()
        _ = ProjectExtraction.extract(files: warmFiles, root: root, extractor: extractor)
        let coldSeconds = Date().timeIntervalSince(coldStart)

        var best: Measurement?
        for _ in 0..<max(1, passes) {
            let m = try measure(root: root, extractor: extractor)
            if best == nil || m.cpuSeconds < best!.cpuSeconds { best = m }
        }
        let m = best!
        let tokens = Double(m.embeddingCharacters) / 4
        let encoderCPU = tokens / encoderTokS * encoderThreads
        let share = m.cpuSeconds / (m.cpuSeconds + encoderCPU)
        let mbPerCore = Double(m.bytes) / 1_000_000 / m.cpuSeconds
        let rg = walkPeer(root: root)
        let peer = try parsePeer(root: root, files: m.files, grammarDirectory: directory)

        var report: [String: Any] = [
            "root": root.path,
            "files": m.files.count, "bytes": m.bytes, "units": m.units, "skipped": m.skipped,
            "cold_seconds_including_grammar_loading": coldSeconds,
            "walk_wall_seconds": m.walkSeconds, "extract_and_text_wall_seconds": m.extractSeconds,
            "cpu_seconds": m.cpuSeconds, "cores": UsableCores.count,
            "files_per_second_per_core": Double(m.files.count) / m.cpuSeconds,
            "mb_per_second_per_core": mbPerCore,
            "embedding_characters": m.embeddingCharacters,
            "estimated_tokens": Int(tokens), "token_estimate": "characters / 4 (no tokenizer call)",
            "encoder_tokens_per_second": encoderTokS, "encoder_threads": encoderThreads,
            "encoder_cpu_seconds_estimate": encoderCPU,
            "units_share_of_indexing_cpu": share,
            "goal": ["share_max": 0.10, "mb_per_second_per_core_min": 20.0],
            "goal_met": share <= 0.10 && mbPerCore >= 20,
        ]
        if let rg { report["peer_walk_rg_files_seconds"] = rg; report["walk_ratio_vs_rg"] = m.walkSeconds / rg }
        if let peer {
            report["peer_py_tree_sitter_parse_cpu_seconds"] = peer.cpu
            report["peer_files_parsed"] = peer.files
            report["peer_mb_per_second_per_core"] = Double(m.bytes) / 1_000_000 / peer.cpu
            report["speedup_vs_py_tree_sitter_parse_only"] = peer.cpu / m.cpuSeconds
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%d files, %.1f MB, %d units: %.0f files/s and %.1f MB/s per core; units stage = %.1f%% of indexing CPU",
                         m.files.count, Double(m.bytes) / 1e6, m.units, Double(m.files.count) / m.cpuSeconds, mbPerCore, share * 100))
        }
    }

    struct Measurement {
        var files: [WalkedFile]
        var bytes: Int64
        var units: Int
        var skipped: Int
        var walkSeconds: Double
        var extractSeconds: Double
        var cpuSeconds: Double
        var embeddingCharacters: Int
    }

    private func measure(root: URL, extractor: UnitExtractor) throws -> Measurement {
        let cpuStart = ProcessCPU.seconds()
        let t0 = Date()
        let (files, walkSkipped) = try FileWalker(root: root).walk()
        let t1 = Date()
        let project = ProjectExtraction.extract(files: files, root: root, extractor: extractor, walkSkipped: walkSkipped)
        let units = project.units
        let characters = ParallelSum.sum(units.count) { EmbeddingText.build(for: units[$0]).unicodeScalars.count }
        let t2 = Date()
        let cpu = ProcessCPU.seconds() - cpuStart
        return Measurement(files: files, bytes: project.bytes, units: units.count, skipped: project.skipped.count,
                           walkSeconds: t1.timeIntervalSince(t0), extractSeconds: t2.timeIntervalSince(t1), cpuSeconds: cpu,
                           embeddingCharacters: characters)
    }

    /// Wall seconds of `rg --files` over the same root (fastest of three), or nil without ripgrep.
    private func walkPeer(root: URL) -> Double? {
        var best: Double?
        for _ in 0..<3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["rg", "--files", root.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let start = Date()
            guard (try? process.run()) != nil else { return nil }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
            let t = Date().timeIntervalSince(start)
            best = min(best ?? t, t)
        }
        return best
    }

    /// py-tree-sitter parsing the same files with the same grammar libraries (parse only: a lower bound
    /// for any Python extractor). Returns its process CPU seconds.
    private func parsePeer(root: URL, files: [WalkedFile], grammarDirectory: URL?) throws -> (cpu: Double, files: Int)? {
        guard let python = peerPython, let grammarDirectory else { return nil }
        let script = """
            import ctypes, json, sys, time, resource
            from tree_sitter import Language, Parser
            d, root = sys.argv[1], sys.argv[2]
            m = json.load(open(d + '/manifest.json'))['languages']
            pairs = [l.rstrip('\\n').split('\\t') for l in sys.stdin]
            langs, parsers = {}, {}
            for _, g in pairs:
                if g in langs or g not in m: continue
                lib = ctypes.cdll.LoadLibrary(d + '/' + m[g]['file']); f = getattr(lib, m[g]['symbol']); f.restype = ctypes.c_void_p
                langs[g] = Language(f()); parsers[g] = Parser(langs[g])
            r0 = resource.getrusage(resource.RUSAGE_SELF); n = 0
            for p, g in pairs:
                if g not in parsers: continue
                parsers[g].parse(open(root + '/' + p, 'rb').read()); n += 1
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            print(json.dumps({'cpu': (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 'files': n}))
            """
        let scriptURL = FileManager.default.temporaryDirectory.appendingPathComponent("colgrep-bench-units-peer.py")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-W", "ignore", scriptURL.path, grammarDirectory.path, root.path]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let list = files.compactMap { f in f.language.grammar.map { "\(f.relativePath)\t\($0)\n" } }.joined()
        input.fileHandleForWriting.write(Data(list.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cpu = object["cpu"] as? Double, let n = object["files"] as? Int else {
            throw ValidationError("the parse peer failed (needs `pip install tree-sitter` in \(python))")
        }
        return (cpu, n)
    }
}

/// Parallel sum over indices (embedding texts are built on every core, as indexing would).
enum ParallelSum {
    static func sum(_ count: Int, _ body: @Sendable (Int) -> Int) -> Int {
        let chunks = max(1, UsableCores.count * 4)
        let size = (count + chunks - 1) / chunks
        let partial = UnsafeMutableBufferPointer<Int>.allocate(capacity: chunks)
        partial.initialize(repeating: 0)
        defer { partial.deallocate() }
        let box = SendableBuffer(partial)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            var s = 0
            for i in (c * size)..<min(count, (c + 1) * size) { s += body(i) }
            box.buffer[c] = s
        }
        return partial.reduce(0, +)
    }

    private final class SendableBuffer: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<Int>
        init(_ buffer: UnsafeMutableBufferPointer<Int>) { self.buffer = buffer }
    }
}
