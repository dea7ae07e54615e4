import ArgumentParser
import Foundation
import TensorCUDA

/// `colgrep debug gpu-selftest`: checks every CUDA backend operation against double-precision host
/// loops and prints one line per check (or JSON). Exits non-zero when a check fails or no GPU is usable.
struct DebugGPUSelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpu-selftest",
        abstract: "Check the CUDA backend's operations against reference computations.")

    @Option(help: "CUDA device index (among those CUDA_VISIBLE_DEVICES leaves visible).")
    var device = 0

    @Option(help: "Precisions to check: bf16, fp32 or both.")
    var precision = "both"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let availability = CUDABackend.availability
        guard availability.isAvailable else {
            FileHandle.standardError.write(Data("\(availability.description)\n".utf8))
            throw ExitCode(2)
        }
        let precisions: [CUDAPrecision] = precision == "both" ? CUDAPrecision.allCases : [CUDAPrecision(rawValue: precision)].compactMap { $0 }
        guard !precisions.isEmpty else { throw ValidationError("--precision must be bf16, fp32 or both") }
        var checks: [CUDASelfTest.Check] = []
        for p in precisions { checks += try CUDASelfTest.run(precision: p, device: device) }
        if json {
            let rows = checks.map { ["name": $0.name, "error": $0.error, "tolerance": $0.tolerance, "passed": $0.passed] as [String: Any] }
            let data = try JSONSerialization.data(withJSONObject: ["device": availability.description, "checks": rows], options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(availability.description)
            checks.forEach { print($0) }
        }
        let failed = checks.filter { !$0.passed }.count
        if failed > 0 { throw ExitCode(1) }
    }
}
