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

    /// Probes CUDA and applies the device selection of `COLGREP_GPU_DEVICES` (what `--devices`
    /// sets): every visible GPU by default, after `CUDA_VISIBLE_DEVICES`.
    public static func current(environment env: [String: String] = ProcessInfo.processInfo.environment) -> GPUInventory {
        let selection: DeviceSelection
        do {
            selection = try DeviceSelection(parsing: env[DeviceSelection.environmentKey])
        } catch {
            return GPUInventory(ordinals: [], description: nil, unavailableReason: "\(error)")
        }
        if selection == .none {
            return GPUInventory(ordinals: [], description: nil, unavailableReason: "\(DeviceSelection.environmentKey)=none")
        }
        switch CUDABackend.availability {
        case .unavailable(let reason):
            return GPUInventory(ordinals: [], description: nil, unavailableReason: reason)
        case .available(let detail):
            return resolve(selection, visible: CUDABackend.visibleDeviceCount, description: detail)
        }
    }

    /// The inventory for `selection` when `visible` GPUs are visible (pure, so it is tested without GPUs).
    public static func resolve(_ selection: DeviceSelection, visible: Int, description: String?) -> GPUInventory {
        switch selection {
        case .none:
            return GPUInventory(ordinals: [], description: nil, unavailableReason: "\(DeviceSelection.environmentKey)=none")
        case .all:
            guard visible > 0 else { return GPUInventory(ordinals: [], description: nil, unavailableReason: "no CUDA device is visible") }
            return GPUInventory(ordinals: Array(0..<visible), description: description, unavailableReason: nil)
        case .ordinals(let wanted):
            if let missing = wanted.first(where: { $0 >= visible }) {
                return GPUInventory(ordinals: [], description: nil, unavailableReason:
                    "GPU \(missing) was selected (--devices / \(DeviceSelection.environmentKey)) but \(visible) CUDA device(s) are visible (0..<\(visible); CUDA_VISIBLE_DEVICES renumbers them)")
            }
            return GPUInventory(ordinals: wanted, description: description, unavailableReason: nil)
        }
    }

    /// Whether compiled kernels for this GPU and model head size look present in the kernel cache
    /// (the planner's compile-or-load input; the backend itself checks every entry properly).
    public func kernelsLookCached(in directory: URL, headDim: Int) -> Bool {
        guard let architecture else { return false }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        // The router's GPU lanes run bf16 (the backend's default precision).
        return EncoderKernelModules.cachePrefixes(headDim: headDim, bf16: true, architecture: architecture).allSatisfy { prefix in
            names.contains { $0.hasPrefix(prefix) }
        }
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
