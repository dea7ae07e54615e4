import Foundation

/// `--force-cpu` / `--force-gpu` / auto (reference §4.1) with the environment variables
/// `FORCE_CPU|COLGREP_FORCE_CPU|NEXT_PLAID_FORCE_CPU` and their GPU twins (`1` or `true`).
public enum AccelerationMode: String, Sendable, Equatable {
    case auto
    case forceCPU = "force-cpu"
    case forceGPU = "force-gpu"

    public static func resolve(forceCPU: Bool, forceGPU: Bool,
                               env: [String: String] = ProcessInfo.processInfo.environment) throws -> AccelerationMode {
        func flag(_ keys: [String]) -> Bool {
            keys.contains { key in env[key].map { $0 == "1" || $0.lowercased() == "true" } ?? false }
        }
        let cpu = forceCPU || flag(["FORCE_CPU", "COLGREP_FORCE_CPU", "NEXT_PLAID_FORCE_CPU"])
        let gpu = forceGPU || flag(["FORCE_GPU", "COLGREP_FORCE_GPU", "NEXT_PLAID_FORCE_GPU"])
        if cpu && gpu {
            throw ColGrepError.usage("--force-cpu and --force-gpu (or FORCE_CPU and FORCE_GPU) cannot both be set")
        }
        return cpu ? .forceCPU : (gpu ? .forceGPU : .auto)
    }
}
