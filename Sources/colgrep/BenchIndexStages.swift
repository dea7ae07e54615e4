import ArgumentParser
import ColGrep
import Encoder
import Foundation
import Tensor

/// `colgrep bench index-stages DIR`: every CPU stage of a cold index measured alone on DIR (walk,
/// parse, call graph, embedding text, tokenize, encode, pool, k-means + codec, store insert), then a
/// cold `init` of DIR with the same model in the same process, and each stage's in-pipeline rate set
/// against its own. The peer is the pipeline's bound: the stages before the streamed part plus its
/// slowest lane, measured alone (goal: the cold init within 1 / 0.9 of it).
struct BenchIndexStages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index-stages",
        abstract: "Measure each indexing stage alone, then a cold init, and name the bounding stage.",
        discussion: """
            Threads: every core the process may use (restrict with `taskset -c 0-7`). The model is \
            --model, or with --synthetic a random-weight ModernBERT written to a temporary folder with \
            --tokenizer (default: the fallback model's): `tiny` (1 layer, hidden 32) makes encoding \
            cheap so that the CPU stages dominate as they do next to a GPU; `edge` has \
            LateOn-Code-edge's shape.
            """)

    @Argument(help: "The corpus (a project folder).")
    var path: String

    @Option(help: "Model folder or id (default: --synthetic tiny).")
    var model: String?

    @Option(help: "Random-weight model to write and use: tiny or edge.")
    var synthetic: String?

    @Option(help: "tokenizer.json for --synthetic (default: the fallback model's).")
    var tokenizer: String?

    @Option(help: ArgumentHelp("Write the --synthetic model to this folder and keep it (then pass it as --model).", visibility: .hidden))
    var modelOut: String?

    @Option(name: .customLong("pool-factor"), help: "Token pooling factor (default 2).")
    var poolFactor = 2

    @Option(name: .customLong("index-chunk-size"), help: "Units per pipeline chunk (default 1024).")
    var indexChunkSize: Int?

    @Flag(help: "Only the cold init (with its profile), no stage alone.")
    var initOnly = false

    @Flag(help: "Print one JSON object (the table goes to stderr).")
    var json = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        // The cold init's per-stage figures come from the profiler, which reads this once.
        setenv("COLGREP_PROFILE", "1", 1)
        guard Profiler.shared.isEnabled else { throw ValidationError("run with COLGREP_PROFILE=1") }
        let (root, isDir) = try PathResolver.canonical(path)
        guard isDir else { throw ValidationError("\(path) is not a folder") }
        let scratch = FileManager.default.temporaryDirectory.appending(path: "colgrep-index-stages-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        if let modelOut {
            print(try resolveModel(scratch: URL(fileURLWithPath: modelOut)))
            return
        }
        let modelID = try resolveModel(scratch: scratch.appending(path: "model"))
        var options = IndexOptions(model: modelID, poolFactor: poolFactor)
        options.assumeYes = true
        options.acceleration = try global.acceleration()
        if let indexChunkSize { options.chunkSize = max(64, indexChunkSize) }
        let engine = try Engine(paths: DataPaths(root: scratch.appending(path: "config")))

        let alone = initOnly ? [] : try IndexStageBenchmark.measureStages(root: root, options: options, config: engine.config,
                                                                          scratch: scratch.appending(path: "stages"))
        let cold = try IndexStageBenchmark.coldIndex(root: root, options: options, dataDirectory: scratch.appending(path: "data"))
        let report = IndexStagesReport(root: root, model: modelID, cores: UsableCores.count,
                                       alone: alone, cold: cold)
        if json {
            // The table too, on stderr, for a human reading a run whose stdout is a JSON file.
            FileHandle.standardError.write(Data(report.text.utf8))
            print(report.json)
        } else {
            print(report.text, terminator: "")
        }
    }

    private func resolveModel(scratch: URL) throws -> String {
        if let model { return model }
        let shapeName = synthetic ?? "tiny"
        var shape = SyntheticModel.ModernBERTShape()
        switch shapeName {
        case "tiny":
            shape.hidden = 32
            shape.intermediate = 48
            shape.layers = 1
            shape.heads = 2
            shape.head = [48]
        case "edge":
            break
        default:
            throw ValidationError("--synthetic must be tiny or edge, not \(shapeName)")
        }
        guard let tokenizerFile = tokenizer.map({ URL(fileURLWithPath: $0) }) ?? IndexStageBenchmark.fallbackTokenizer() else {
            throw ValidationError("no tokenizer.json for --synthetic: pass --tokenizer FILE (or run scripts/setup.sh for the fallback model)")
        }
        try SyntheticModel.writeModernBERT(shape, to: scratch)
        try FileManager.default.copyItem(at: tokenizerFile, to: scratch.appending(path: "tokenizer.json"))
        return scratch.path
    }
}

/// The figures of one `bench index-stages` run and their two renderings.
struct IndexStagesReport {
    var root: String
    var model: String
    var cores: Int
    var alone: [IndexStageTiming]
    var cold: IndexStageBenchmark.ColdIndex

    /// Busy seconds of each stage during the cold init, summed over devices.
    var busy: [String: Double] {
        cold.stages.reduce(into: [:]) { $0[$1.stage, default: 0] += $1.seconds }
    }

    var units: Int { cold.summary.unitsEncoded }
    var tokens: Int { cold.stages.filter { $0.stage == "tokenize" }.reduce(0) { $0 + $1.tokens } }

    /// Seconds of the stages ahead of the streamed part, and of each streamed lane, alone.
    var before: Double { alone.filter { $0.lane == "before" }.reduce(0) { $0 + $1.seconds } }
    var lanes: [(lane: String, seconds: Double)] {
        IndexStageBenchmark.streamedLanes.map { lane in (lane, alone.filter { $0.lane == lane }.reduce(0) { $0 + $1.seconds }) }
    }
    var boundingLane: (lane: String, seconds: Double)? { lanes.max { $0.seconds < $1.seconds } }
    var boundingStage: IndexStageTiming? {
        alone.filter { $0.lane != "before" }.max { $0.seconds < $1.seconds }
    }
    /// The pipeline's bound from the stages alone: what is before the streamed part plus its slowest lane.
    var boundSeconds: Double { before + (boundingLane?.seconds ?? 0) }

    func rate(_ n: Int, _ seconds: Double) -> Double { seconds > 0 ? (Double(n) / seconds).rounded() : 0 }

    var stageRows: [[String: Any]] {
        let busy = self.busy
        return alone.map { t in
            var row: [String: Any] = ["stage": t.stage, "lane": t.lane, "alone_s": round3(t.seconds), "alone_cpu_s": round3(t.cpuSeconds),
                                      "units": t.units, "alone_units_per_s": rate(t.units, t.seconds)]
            if t.tokens > 0 { row["tokens"] = t.tokens; row["alone_tokens_per_s"] = rate(t.tokens, t.seconds) }
            if let b = busy[t.stage] {
                row["pipeline_busy_s"] = round3(b)
                row["pipeline_units_per_s"] = rate(t.units, b)
                row["busy_vs_alone"] = round3(t.seconds > 0 ? b / t.seconds : 0)
            }
            return row
        }
    }

    var json: String {
        var object: [String: Any] = [
            "root": root, "model": model, "cores": cores, "units": units, "tokens": tokens,
            "init_wall_s": round3(cold.seconds), "init_cpu_s": round3(cold.cpuSeconds),
            "init_cpu_utilisation": round3(cold.cpuSeconds / max(1e-9, cold.seconds * Double(cores))),
            "init_cpu_over_cores_s": round3(cold.cpuSeconds / Double(cores)),
            "init_units_per_s": rate(units, cold.seconds), "init_tokens_per_s": rate(tokens, cold.seconds),
            "pipeline_profile": cold.stages.map { ["stage": $0.label, "busy_s": round3($0.seconds), "calls": $0.calls, "tokens": $0.tokens] },
        ]
        if !alone.isEmpty {
            object["stages"] = stageRows
            object["lanes_alone_s"] = Dictionary(uniqueKeysWithValues: lanes.map { ($0.lane, round3($0.seconds)) })
            object["before_stream_alone_s"] = round3(before)
            object["bounding_lane"] = boundingLane?.lane ?? ""
            object["bounding_stage"] = boundingStage?.stage ?? ""
            object["bound_s"] = round3(boundSeconds)
            object["bound_over_init_wall"] = round3(boundSeconds / max(1e-9, cold.seconds))
            if let encode = alone.first(where: { $0.stage == "encode" }) {
                object["encode_alone_tokens_per_s"] = rate(encode.tokens, encode.seconds)
                object["init_tokens_per_s_over_encode_alone"] = round3(encode.seconds / max(1e-9, cold.seconds))
            }
            object["goal"] = "bound_over_init_wall >= 0.9"
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    var text: String {
        var out = "\(root): \(units) units, \(tokens) tokens, \(cores) cores, model \(model)\n"
        if !alone.isEmpty {
            let busy = self.busy
            out += "stage                            lane     alone s   units/s      tokens/s   pipeline busy s  busy/alone\n"
            for t in alone {
                let b = busy[t.stage]
                out += t.stage.padding(toLength: 33, withPad: " ", startingAt: 0) + t.lane.padding(toLength: 8, withPad: " ", startingAt: 0)
                let tokenRate = t.tokens > 0 ? String(format: "%.0f", rate(t.tokens, t.seconds)) : "-"
                let busyText = b.map { String(format: "%.3f", $0) } ?? "-"
                let ratio = b.map { String(format: "%.2f", t.seconds > 0 ? $0 / t.seconds : 0) } ?? "-"
                out += String(format: " %8.3f %9.0f ", t.seconds, rate(t.units, t.seconds)) + pad(tokenRate, 13) + " " + pad(busyText, 16)
                    + " " + pad(ratio, 11) + "\n"
            }
            out += "lanes alone: " + lanes.map { $0.lane + String(format: " %.3f s", $0.seconds) }.joined(separator: ", ")
                + String(format: "; before the stream %.3f s\n", before)
            out += "bound (before + slowest lane, \(boundingLane?.lane ?? "-"); slowest stage \(boundingStage?.stage ?? "-")): "
                + String(format: "%.3f s\n", boundSeconds)
        }
        out += String(format: "cold init: %.3f s wall, %.3f s CPU (%.0f %% of %d cores), %.0f units/s, %.0f tokens/s\n",
                      cold.seconds, cold.cpuSeconds, 100 * cold.cpuSeconds / max(1e-9, cold.seconds * Double(cores)), cores,
                      rate(units, cold.seconds), rate(tokens, cold.seconds))
        if !alone.isEmpty {
            out += String(format: "bound / init wall: %.2f (goal >= 0.90)\n", boundSeconds / max(1e-9, cold.seconds))
        }
        return out
    }

    private func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }

    private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
