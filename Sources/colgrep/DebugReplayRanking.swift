import ArgumentParser
import ColGrep
import Foundation

/// `colgrep debug replay-ranking`: re-ranks the candidates a traced search recorded
/// (`COLGREP_TRACE_JSON=FILE colgrep …`) with the ranking knobs of this environment, without the
/// model or the index: ranking rules and weights are tuned on the dev split in seconds this way.
struct DebugReplayRanking: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-ranking",
        abstract: "Re-rank recorded search candidates; prints one JSON line per search: {\"query\", \"files\", \"variant\"}.",
        discussion: """
            Record:  COLGREP_TRACE_JSON=/tmp/trace.jsonl colgrep --json "retry failed uploads" .
            Replay:  COLGREP_COHERENCE_BOOST=0.4 colgrep debug replay-ranking /tmp/trace.jsonl
            Several:  colgrep debug replay-ranking /tmp/trace.jsonl --variant a:COLGREP_ALPHA=0.5 --variant b:
            Every COLGREP_* ranking variable (and COLGREP_ALPHA) applies as it would to a search; a
            variant's variables are added to this environment.
            """
    )

    @Argument(help: "A trace file written through COLGREP_TRACE_JSON.") var trace: String
    @Option(help: "Fusion weight of the semantic side (default: COLGREP_ALPHA, else the recorded one).") var alpha: Double?
    @Flag(help: "Drop document units (as --code-only) for traces that did not record the flag.") var codeOnly = false
    @Option(name: .customLong("variant"), help: "LABEL:VAR=VALUE,VAR=VALUE — replay once per variant (default: one, this environment).")
    var variants: [String] = []

    func run() throws {
        guard let text = try? String(contentsOfFile: trace, encoding: .utf8) else {
            throw ValidationError("cannot read the trace file \(trace)")
        }
        let decoder = JSONDecoder()
        let records = try text.split(separator: "\n").enumerated().map { number, line in
            guard let record = try? decoder.decode(RankingTrace.self, from: Data(line.utf8)) else {
                throw ValidationError("\(trace):\(number + 1): not a ranking trace record")
            }
            return record
        }
        let base = ProcessInfo.processInfo.environment
        for variant in variants.isEmpty ? [""] : variants {
            let (label, env) = try Self.parse(variant, base: base)
            let knobs = RankingKnobs.fromEnvironment(env)
            let alpha = alpha ?? env["COLGREP_ALPHA"].flatMap(Double.init)
            for record in records {
                let files = record.replay(knobs: knobs, alpha: alpha, codeOnly: codeOnly).map(\.file)
                let out: [String: Any] = ["query": record.query, "files": files, "variant": label]
                let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// `LABEL:VAR=VALUE,…` → the label and `base` with those variables set.
    static func parse(_ variant: String, base: [String: String]) throws -> (String, [String: String]) {
        guard !variant.isEmpty else { return ("", base) }
        let parts = variant.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        var env = base
        for pair in parts.count > 1 ? parts[1].split(separator: ",") : [] {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { throw ValidationError("variant \(variant): expected VAR=VALUE, got \(pair)") }
            env[String(kv[0])] = String(kv[1])
        }
        return (String(parts[0]), env)
    }
}
