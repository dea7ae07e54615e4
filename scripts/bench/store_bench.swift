// Store throughput and latency on synthetic but realistic units (not part of the package or CI).
// Build and run from the repository root (release, like the product):
//   swiftc -O -wmo -module-name StoreBench -I Sources/CSQLite Sources/Store/*.swift \
//       scripts/bench/store_bench.swift -lsqlite3 -o /tmp/store_bench && /tmp/store_bench
// Knobs (environment): UNITS (20000), MIN_LINES / SPREAD_LINES (code lines per unit: 20 + 0..<40),
// INSERT_ONLY=1. Prints wall and CPU time per step: CPU time is the honest figure on a loaded machine.
import Foundation

let environment = ProcessInfo.processInfo.environment

func corpus(_ count: Int) -> [UnitRecord] {
    let minLines = Int(environment["MIN_LINES"] ?? "20") ?? 20
    let spreadLines = Int(environment["SPREAD_LINES"] ?? "40") ?? 40
    let verbs = ["parse", "load", "write", "render", "fetch", "encode", "decode", "validate", "merge", "flush", "resolve", "build", "apply", "scan", "emit"]
    let nouns = ["Config", "Request", "Token", "Buffer", "Index", "Header", "Payload", "Session", "Cache", "Graph", "Node", "Edge", "Query", "Result", "Stream"]
    var rng = SystemRandomNumberGenerator()
    return (0..<count).map { i in
        let verb = verbs[i % verbs.count], noun = nouns[(i / verbs.count) % nouns.count]
        let name = "\(verb)\(noun)\(i % 97)"
        let lines = minLines + Int.random(in: 0..<max(1, spreadLines), using: &rng)
        let body = (0..<lines).map { k -> String in
            let v = verbs[Int.random(in: 0..<verbs.count, using: &rng)], n = nouns[Int.random(in: 0..<nouns.count, using: &rng)]
            switch k % 4 {
            case 0: return "        let \(v)_\(n.lowercased())_\(k) = try self.\(v)\(n)(input.\(n.lowercased())Value, options: .default)"
            case 1: return "        if \(v)\(n)Count > \(k) { return .failure(\(n)Error.invalid(\"\(v) \(n.lowercased()) failed\")) }"
            case 2: return "        // \(v.capitalized) the \(n.lowercased()) before handing it to the next stage."
            default: return "        for item in \(n.lowercased())List where item.is\(v.capitalized)able { cache[item.id] = item }"
            }
        }.joined(separator: "\n")
        return UnitRecord(
            docID: Int64(i), file: "Sources/Module\(i / 200)/\(noun)\(verb.capitalized)\(i / 8).swift", name: name,
            qualifiedName: "\(noun)Service.\(name)", line: (i % 8) * 60 + 1, endLine: (i % 8) * 60 + lines + 3,
            language: "swift", unitType: "method",
            signature: "func \(name)(input: \(noun)Input, options: \(noun)Options = .default) throws -> \(noun)Result",
            docstring: "/// \(verb.capitalized)s the \(noun.lowercased()) described by `input` and returns the outcome.",
            parameters: ["input: \(noun)Input", "options: \(noun)Options"], returnType: "\(noun)Result",
            parentClass: "\(noun)Service",
            calls: (0..<6).map { "\(verbs[($0 + i) % verbs.count])\(nouns[($0 * 3 + i) % nouns.count])" }, calledBy: ["main", "run\(noun)"],
            complexity: i % 12, hasLoops: true, hasBranches: true, hasErrorHandling: i % 2 == 0,
            variables: ["input", "options", "cache"], imports: ["Foundation", "Logging"],
            code: "    func \(name)(input: \(noun)Input, options: \(noun)Options = .default) throws -> \(noun)Result {\n\(body)\n        return \(noun)Result(value)\n    }"
        )
    }
}

@main struct Bench {
static func main() throws {
func cpuMS() -> Double { var u = rusage(); getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u); return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000 + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000 }
func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
let clock = ContinuousClock()
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-bench-\(getpid())"); try? FileManager.default.removeItem(at: dir)
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
let db = dir.appendingPathComponent("metadata.db")
let n = Int(environment["UNITS"] ?? "20000") ?? 20_000
let units = corpus(n)
let codeBytes = units.reduce(0) { $0 + $1.code.utf8.count }
print("units \(n), avg code \(codeBytes / n) bytes")
let t0 = clock.now
let text = units.prefix(2000).map { $0.keywordText.count }.reduce(0, +)
print("tokenize 2000 units: \(ms(clock.now - t0)) ms (\(text) bytes of keyword text)")
do {
    let store = try MetadataStore(path: db, readOnly: false)
    let start = clock.now
    let cpu0 = cpuMS()
    var i = 0
    while i < n { try store.insert(Array(units[i..<min(n, i + 4096)])); i += 4096 }
    let elapsed = ms(clock.now - start)
    print(String(format: "insert %d units in batches of 4096: %.0f ms = %.0f rows/s (cpu %.0f ms)", n, elapsed, Double(n) / elapsed * 1000, cpuMS() - cpu0))
}
let size = (try FileManager.default.attributesOfItem(atPath: db.path)[.size] as! Int)
print("db size \(size / 1_000_000) MB")
let openStart = clock.now
let reader = try MetadataStore(path: db, readOnly: true)
print(String(format: "read-only open: %.2f ms", ms(clock.now - openStart)))
let queries = ["parse config", "how are cache entries invalidated", "renderGraph", "validate request payload error",
               "flush stream buffer", "token session", "resolve node edges", "apply query result options"]
for q in queries { _ = try reader.bm25(query: q, limit: 135, within: nil) }
func timeIt(_ label: String, reps: Int = 5, _ body: () throws -> Void) rethrows {
    var samples: [Double] = []
    var cpu: [Double] = []
    for _ in 0..<reps { let s = clock.now; let c = cpuMS(); try body(); samples.append(ms(clock.now - s)); cpu.append(cpuMS() - c) }
    samples.sort(); cpu.sort()
    print(String(format: "%@: p50 %.2f ms (cpu %.2f), max %.2f ms", label, samples[samples.count / 2], cpu[cpu.count / 2], samples.last!))
}
if environment["INSERT_ONLY"] != nil { return }
for q in queries {
    var hits = 0
    try timeIt("bm25 '\(q)' limit 135") { hits = try reader.bm25(query: q, limit: 135, within: nil).count }
    _ = hits
}
let subset = Set((0..<Int64(n)).filter { $0 % 3 == 0 })
try timeIt("bm25 'parse config' within 6.7k subset") { _ = try reader.bm25(query: "parse config", limit: 135, within: subset) }
try timeIt("records of 45 ids") { _ = try reader.records(docIDs: (0..<45).map { Int64($0 * 401) }) }
try timeIt("regex code 'cache\\[item' (ci)", reps: 3) { _ = try reader.docIDs(whereCodeMatches: #"cache\[item"#, caseSensitive: false) }
try timeIt("regex code 'fetchGraph4' (ci, selective)", reps: 3) { _ = try reader.docIDs(whereCodeMatches: "fetchGraph4", caseSensitive: false) }
try timeIt("regex code '^\\s+for item' (cs)", reps: 3) { _ = try reader.docIDs(whereCodeMatches: #"^\s+for item"#, caseSensitive: true) }
try timeIt("regex code '(\\w+)\\1x' (risky, time-limited)", reps: 1) { _ = try reader.docIDs(whereCodeMatches: #"(\w+)\1x"#, caseSensitive: true) }
try timeIt("regex file 'Module1\\d/'", reps: 3) { _ = try reader.docIDs(fileMatchingRegex: #"Module1\d/"#) }
try timeIt("filePrefix", reps: 3) { _ = try reader.docIDs(filePrefix: "Sources/Module3/") }
try timeIt("namesAndCalls", reps: 3) { _ = try reader.namesAndCalls() }
let writer = try MetadataStore(path: db, readOnly: false)
try timeIt("delete 1000 scattered ids", reps: 1) { try writer.delete(docIDs: (0..<1000).map { Int64($0 * 19) }) }
try timeIt("delete files (docIDs(inFiles:) + delete) of 20 files", reps: 1) {
    let files = Array(try writer.allFiles().prefix(20)); try writer.delete(docIDs: try writer.docIDs(inFiles: files))
}
try timeIt("insert 10 units", reps: 1) { try writer.insert(Array(corpus(10).map { var u = $0; u.docID += 100_000; return u })) }
try timeIt("updateCalledBy 2000 units", reps: 1) {
    try writer.updateCalledBy(Dictionary(uniqueKeysWithValues: (2000..<4000).map { (Int64($0), ["callerA", "callerB\($0)"]) }))
}
try timeIt("verifyIntegrity", reps: 1) { try writer.verifyIntegrity() }

}
}
