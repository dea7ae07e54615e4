import Foundation
import TensorCUDA

/// The GPUs this process can use, probed once (driver, device 0) without compiling anything.
public struct GPUInventory: Sendable, Equatable {
    /// Usable GPU ordinals.
    public var ordinals: [Int]
    /// "NVIDIA H100 80GB HBM3 (sm_90), driver 13.0, NVRTC 13.0", or nil.
    public var description: String?
    /// Why no GPU is usable.
    public var unavailableReason: String?

    public var count: Int { ordinals.count }

    /// The architecture (`sm_90`) in the description, if any.
    public var architecture: String? {
        guard let description, let open = description.range(of: "(sm_"),
              let close = description[open.upperBound...].firstIndex(of: ")") else { return nil }
        return "sm_" + description[open.upperBound..<close]
    }

    /// Probes CUDA. `COLGREP_GPU_DEVICES` lists ordinals to use ("0,1"; "none" hides every GPU);
    /// by default device 0.
    public static func current(environment env: [String: String] = ProcessInfo.processInfo.environment) -> GPUInventory {
        let requested = env["COLGREP_GPU_DEVICES"]?.trimmingCharacters(in: .whitespaces).lowercased()
        if requested == "none" {
            return GPUInventory(ordinals: [], description: nil, unavailableReason: "COLGREP_GPU_DEVICES=none")
        }
        switch CUDABackend.availability {
        case .unavailable(let reason):
            return GPUInventory(ordinals: [], description: nil, unavailableReason: reason)
        case .available(let detail):
            let ordinals = requested.map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } } ?? [0]
            return GPUInventory(ordinals: ordinals.isEmpty ? [0] : ordinals, description: detail, unavailableReason: nil)
        }
    }

    /// Whether compiled kernels for this GPU and model head size look present in the kernel cache
    /// (the planner's compile-or-load input; the backend itself checks every entry properly).
    public func kernelsLookCached(in directory: URL, headDim: Int) -> Bool {
        guard let architecture else { return false }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let core = names.contains { $0.hasPrefix("core-\(architecture)-") }
        let attention = names.contains { $0.hasPrefix("attention-\(headDim)-\(architecture)-") }
        return core && attention
    }
}

/// Says once per process, on stderr, that auto mode left the GPU for the CPU and why.
public enum GPUFallbackNotice {
    private static let said = LockedValue(false)

    /// Prints `message` unless a fallback was already reported in this process. Returns whether it printed.
    @discardableResult
    public static func report(_ message: String, to write: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) -> Bool {
        let first = said.withLock { said -> Bool in
            defer { said = true }
            return !said
        }
        if first { write(message) }
        return first
    }
}
