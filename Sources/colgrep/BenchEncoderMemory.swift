import ArgumentParser
import Encoder
import Foundation
import Tensor

/// The memory half of `colgrep bench encoder`: one 16k-token packed batch per model and precision, each in
/// a child process of this binary (`--memory-probe`) so that resident-memory marks start clean. Issue #3's
/// bound is the weights + 64 MiB.
struct EncoderMemoryReport {
    struct Entry {
        var model: String
        var precision: CPUPrecision
        var result: EncoderMemoryProbe.Result
    }

    static let allowanceBytes = 64 << 20

    var entries: [Entry] = []

    /// Runs the probe for every model folder and precision, `threads` threads each.
    static func measure(models: [(name: String, directory: URL)], precisions: [CPUPrecision], threads: Int, activationBudgetMib: Int?) throws -> EncoderMemoryReport {
        var report = EncoderMemoryReport()
        for (name, directory) in models {
            for precision in precisions {
                let result = try probeInChild(directory: directory, precision: precision, threads: threads, activationBudgetMib: activationBudgetMib)
                report.entries.append(Entry(model: name, precision: precision, result: result))
            }
        }
        return report
    }

    static func probeInChild(directory: URL, precision: CPUPrecision, threads: Int, activationBudgetMib: Int?) throws -> EncoderMemoryProbe.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["bench", "encoder", "--memory-probe", directory.path, "--precision", precision.rawValue, "--threads", "\(threads)"]
            + (activationBudgetMib.map { ["--activation-budget-mib", "\($0)"] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let result = try? JSONDecoder().decode(EncoderMemoryProbe.Result.self, from: data) else {
            throw ValidationError("the memory probe of \(directory.path) (\(precision.rawValue)) exited with status \(process.terminationStatus)")
        }
        return result
    }

    static func mib(_ bytes: Int) -> Double { (Double(bytes) / 1_048_576 * 10).rounded() / 10 }

    /// `{"<model>": {"weights_mib": …, "limit_mib": …, "<precision>": {…}, …}, …}`.
    var json: String {
        var models: [String] = []
        for name in entries.map(\.model).reduce(into: [String](), { if !$0.contains($1) { $0.append($1) } }) {
            let rows = entries.filter { $0.model == name }
            let weights = rows[0].result.weightsBytes
            var fields = ["\"weights_mib\": \(Self.mib(weights))", "\"limit_mib\": \(Self.mib(weights + Self.allowanceBytes))",
                          "\"tokens\": \(rows[0].result.tokens)"]
            for row in rows {
                let r = row.result
                fields.append("\"\(row.precision.rawValue)\": {\"alloc_peak_mib\": \(Self.mib(r.allocationPeakBytes)), "
                    + "\"rss_before_load_mib\": \(Self.mib(r.residentBeforeLoadBytes)), \"rss_loaded_mib\": \(Self.mib(r.residentLoadedBytes)), "
                    + "\"rss_peak_mib\": \(Self.mib(r.residentPeakBytes)), \"rss_growth_mib\": \(Self.mib(r.residentPeakBytes - r.residentBeforeLoadBytes))}")
            }
            models.append("\"\(name)\": {" + fields.joined(separator: ", ") + "}")
        }
        return "{" + models.joined(separator: ", ") + "}"
    }

    /// One line per model and precision.
    var lines: [String] {
        entries.map { e in
            let r = e.result
            return "memory \(e.model) \(e.precision.rawValue), \(r.tokens) tokens: allocation peak \(Self.mib(r.allocationPeakBytes)) MiB; "
                + "RSS \(Self.mib(r.residentBeforeLoadBytes)) before load, \(Self.mib(r.residentLoadedBytes)) loaded, peak \(Self.mib(r.residentPeakBytes)) MiB "
                + "(growth \(Self.mib(r.residentPeakBytes - r.residentBeforeLoadBytes)); weights \(Self.mib(r.weightsBytes)), limit \(Self.mib(r.weightsBytes + Self.allowanceBytes)))"
        }
    }
}
