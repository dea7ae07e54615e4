import ArgumentParser
import Encoder
import Foundation
import Tensor
import TensorCUDA

/// Which backend a GPU-side debug or bench command runs on.
enum ComputeDeviceChoice: String, ExpressibleByArgument, CaseIterable {
    case cuda, cpu
}

extension CUDAPrecision: ExpressibleByArgument {}

/// The backend a command asked for. CUDA errors (no GPU, driver mismatch) surface as they are.
func makeBackend(_ choice: ComputeDeviceChoice, device: Int, precision: CUDAPrecision) throws -> any Backend {
    switch choice {
    // fp32 asks for the exact reference path on the CPU too (the CPU's default, auto, may pick int8 weights).
    case .cpu: return CPUBackend(precision: precision == .fp32 ? .fp32 : nil)
    case .cuda: return try CUDABackend(device: device, precision: precision)
    }
}

/// Seconds since this process started (from /proc, 10 ms resolution), for start-up figures.
func secondsSinceProcessStart() -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
          let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // Field 22 (starttime, in clock ticks since boot) is the 20th after the command name.
    guard fields.count > 19, let start = Double(fields[19]), let now = Double(uptime.split(separator: " ")[0]) else { return nil }
    return now - start / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: data, as: UTF8.self))
}

/// Lets one non-Sendable value cross into worker threads that each use their own instance.
final class UncheckedBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
