import ArgumentParser
import Foundation
import Plaid

/// `colgrep debug cpu-kernels`: checks every body of the assignment kernels and of the search's exact stage that this
/// CPU runs (AVX2, AVX-512, AVX512-VNNI) against the portable scalar body on random and adversarial data — one
/// PASS / FAIL line each, SKIP lines for the sets the CPU lacks — then times the build's two hot kernels and the
/// exact stage per set. Exits non-zero on any FAIL.
struct DebugCPUKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu-kernels",
        abstract: "Check each CPU kernel body this machine runs against the scalar body (PASS/FAIL lines; non-zero exit on failure).")

    @Flag(inversion: .prefixedNo, help: "Time the group step, the int16 fine step and the exact stage per instruction set.") var timing = true
    @Option(help: "Seed of the random data.") var seed: UInt64 = 1

    func run() throws {
        print("cpu: \(cpuModel()); assignment kernels supported: \(AssignKernelCheck.supportedSets.joined(separator: ", ")); "
              + "in use: \(AssignKernelCheck.activeSet)")
        let checks = AssignKernelCheck.run(seed: seed) + SearchKernelCheck.run(seed: seed)
        for check in checks {
            let line = "\(check.kernel) \(check.isa) vs \(check.reference), \(check.data), \(check.cases) shapes"
            if check.passed {
                print("PASS \(line)")
            } else {
                print("FAIL \(line): " + check.failures.joined(separator: "; "))
            }
        }
        for skipped in AssignKernelCheck.skippedSets { print("SKIP \(skipped.isa): \(skipped.reason)") }
        if timing {
            for t in AssignKernelCheck.timings() + SearchKernelCheck.timings() {
                print(String(format: "time %@ %@: %.1f ns per row (thread CPU)", t.kernel, t.isa, t.nanosecondsPerRow))
            }
        }
        let failed = checks.filter { !$0.passed }.count
        print("\(checks.count - failed) PASS, \(failed) FAIL")
        if checks.isEmpty { print("no vector bodies on this CPU: only the scalar bodies run") }
        if failed > 0 { throw ExitCode.failure }
    }

    private func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
