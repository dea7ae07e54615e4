import ArgumentParser
import ColGrep
import Foundation

/// `colgrep debug replay-ranking`: re-ranks the candidates a traced search recorded
/// (`COLGREP_TRACE_JSON=FILE colgrep …`) with the ranking knobs of this environment, without the
/// model or the index: ranking rules and weights are tuned on the dev split in seconds this way.
struct DebugReplayRanking: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay-ranking",
        abstract: "Re-rank recorded search candidates; prints one JSON line per search: {\"query\", \"files\"}.",
        discussion: """
            Record:  COLGREP_TRACE_JSON=/tmp/trace.jsonl colgrep --json "retry failed uploads" .
            Replay:  COLGREP_COHERENCE_BOOST=0.4 colgrep debug replay-ranking /tmp/trace.jsonl
            Every COLGREP_* ranking variable (and COLGREP_ALPHA) applies as it would to a search.
            """
    )

    @Argument(help: "A trace file written through COLGREP_TRACE_JSON.") var trace: String
    @Option(help: "Fusion weight of the semantic side (default: COLGREP_ALPHA, else the recorded one).") var alpha: Double?

    func run() throws {
        guard let text = try? String(contentsOfFile: trace, encoding: .utf8) else {
            throw ValidationError("cannot read the trace file \(trace)")
        }
        let env = ProcessInfo.processInfo.environment
        let knobs = RankingKnobs.fromEnvironment(env)
        let alpha = alpha ?? env["COLGREP_ALPHA"].flatMap(Double.init)
        let decoder = JSONDecoder()
        for (number, line) in text.split(separator: "\n").enumerated() {
            guard let record = try? decoder.decode(RankingTrace.self, from: Data(line.utf8)) else {
                throw ValidationError("\(trace):\(number + 1): not a ranking trace record")
            }
            let files = record.replay(knobs: knobs, alpha: alpha).map(\.file)
            let out: [String: Any] = ["query": record.query, "files": files]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
