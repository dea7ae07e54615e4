import Foundation
import Testing

extension EndToEndTests {
    /// A traced search records what `debug replay-ranking` needs to reproduce its ranking exactly,
    /// also when a ranking variable changes: replaying the default trace under `COLGREP_ALPHA=0.05` or
    /// `COLGREP_KEYWORD_DEPTH=1` lists what a live search under that variable lists.
    @Test func replayedRankingEqualsTheLiveSearch() throws {
        guard ready else { Issue.record("colgrep binary or fallback model missing"); return }
        defer { cleanup() }
        #expect(try colgrep(["init", "."]).status == 0)
        let trace = data.appendingPathComponent("trace.jsonl").path
        // (query, flags): `--code-only` drops the README's document unit, in the replay as in the search.
        let queries: [(String, [String])] = [("retry with exponential backoff", []), ("fetch_with_retry", []), ("price", []),
                                             ("tiny demo project used by tests", ["--code-only"])]
        func files(_ stdout: String) -> [String] {
            stdout.split(separator: "\n").map { String($0.split(separator: ":")[0]) }
        }
        var live: [[String]] = []
        var liveLowAlpha: [[String]] = []
        var liveShallow: [[String]] = []
        for (q, flags) in queries {
            let args = ["--no-update", "-k", "3"] + flags + [q]
            let run = try colgrep(args, env: ["COLGREP_TRACE_JSON": trace])
            #expect(run.status == 0, "\(run.stderr)")
            live.append(files(run.stdout))
            liveLowAlpha.append(files(try colgrep(args, env: ["COLGREP_ALPHA": "0.05"]).stdout))
            liveShallow.append(files(try colgrep(args, env: ["COLGREP_KEYWORD_DEPTH": "1"]).stdout))
        }
        #expect(!live[3].contains("README.md"), "\(live[3])")
        #expect(live.allSatisfy { !$0.isEmpty })
        func replayed(_ env: [String: String]) throws -> [[String]] {
            let run = try colgrep(["debug", "replay-ranking", trace], env: env)
            #expect(run.status == 0, "\(run.stderr)")
            return try run.stdout.split(separator: "\n").map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return object?["files"] as? [String] ?? []
            }
        }
        #expect(try replayed([:]) == live)
        #expect(try replayed(["COLGREP_ALPHA": "0.05"]) == liveLowAlpha)
        // The trace holds a deeper keyword list than the search used; a replay cuts it to its own depth.
        #expect(try replayed(["COLGREP_KEYWORD_DEPTH": "1"]) == liveShallow)

        try "not json\n".write(toFile: trace, atomically: true, encoding: .utf8)
        let bad = try colgrep(["debug", "replay-ranking", trace])
        #expect(bad.status != 0 && bad.stderr.contains("trace.jsonl:1"), "\(bad.stderr)")
    }
}
