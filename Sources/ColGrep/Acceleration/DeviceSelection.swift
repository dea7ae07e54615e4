import Foundation

/// Which GPUs encoding may use: `all` visible ones (the default), `none`, or listed ordinals
/// ("0,2", numbered after `CUDA_VISIBLE_DEVICES`). `--devices` and `COLGREP_GPU_DEVICES` take this text.
public enum DeviceSelection: Sendable, Equatable, CustomStringConvertible {
    case all
    case none
    case ordinals([Int])

    /// The environment variable `--devices` sets, so every part of the process sees one selection.
    public static let environmentKey = "COLGREP_GPU_DEVICES"

    /// Parses "all", "none" or a comma-separated list of distinct non-negative ordinals; nil or
    /// empty text is `all`.
    public init(parsing text: String?) throws {
        let trimmed = (text ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        switch trimmed {
        case "", "all": self = .all
        case "none": self = .none
        default:
            var ordinals: [Int] = []
            for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                guard let ordinal = Int(part.trimmingCharacters(in: .whitespaces)), ordinal >= 0 else {
                    throw ColGrepError.usage("--devices: '\(text ?? "")' is not 'all', 'none' or a list of GPU indices such as 0,2")
                }
                guard !ordinals.contains(ordinal) else {
                    throw ColGrepError.usage("--devices: GPU \(ordinal) is listed twice in '\(text ?? "")'")
                }
                ordinals.append(ordinal)
            }
            self = .ordinals(ordinals)
        }
    }

    /// The `CUDA_VISIBLE_DEVICES` that shows the driver only the selected GPUs, or nil to leave it as it is.
    /// The driver initialises every GPU it sees before the first context, ~0.2 s each on the four-H200
    /// machine (`GPU probe: driver init` 186–234 ms with one visible, 407–484 with two, 608–838 with four;
    /// docs/PERFORMANCE.md, session 18), so `--devices 0` should not pay for four. `visible` is the current
    /// `CUDA_VISIBLE_DEVICES` (the ordinals count within it), `installed` the GPUs the driver lists when it
    /// is unset. Where an ordinal is out of range nothing changes, so the inventory reports it as before.
    public static func narrowedVisibleDevices(selection: DeviceSelection, visible: String?, installed: Int?) -> String? {
        guard case .ordinals(let wanted) = selection, !wanted.isEmpty else { return nil }
        let entries: [String]
        if let visible {
            guard let listed = visibleEntries(visible) else { return nil }
            entries = listed
        } else {
            guard let installed else { return nil }
            entries = (0..<installed).map(String.init)
        }
        guard wanted.allSatisfy({ $0 < entries.count }) else { return nil }
        return wanted.map { entries[$0] }.joined(separator: ",")
    }

    /// The entries of a `CUDA_VISIBLE_DEVICES` text (ordinals, UUIDs or MIG names), trimmed; nil when one is empty.
    static func visibleEntries(_ text: String) -> [String]? {
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return entries.contains(where: \.isEmpty) ? nil : entries
    }

    /// GPUs the NVIDIA driver lists (`/proc/driver/nvidia/gpus`), without initialising it; nil where it is absent.
    public static func installedGPUCount(procDirectory: String = "/proc/driver/nvidia/gpus") -> Int? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procDirectory) else { return nil }
        return entries.count
    }

    /// Narrows `CUDA_VISIBLE_DEVICES` to the selection in `COLGREP_GPU_DEVICES` (`selectionEntries`). Call on
    /// the main thread before any other thread exists or reads the environment, and before CUDA loads:
    /// `setenv` is not safe beside readers.
    public static func narrowVisibleDevicesForSelection() {
        guard let entries = selectionEntries(ProcessInfo.processInfo.environment, installed: installedGPUCount()) else { return }
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) { setenv(key, value, 1) }
    }

    /// The environment entries that apply a listed selection before the driver loads, or nil to leave the
    /// environment as it is: `CUDA_VISIBLE_DEVICES` cut to the selected GPUs, which the driver then numbers
    /// from 0, and the selection renumbered to match (`0,2` becomes `0,1`). It stays a list, never `all`:
    /// a run opens fewer GPUs than visible only for `all` (`RunSizedGPUNarrowing`), and a user who lists
    /// GPUs gets every one of them (before, `--devices 0,1` could open one).
    static func selectionEntries(_ env: [String: String], installed: Int?) -> [String: String]? {
        guard let selection = try? DeviceSelection(parsing: env[environmentKey]),
              let narrowed = narrowedVisibleDevices(selection: selection, visible: env["CUDA_VISIBLE_DEVICES"], installed: installed),
              let listed = visibleEntries(narrowed) else { return nil }
        return ["CUDA_VISIBLE_DEVICES": narrowed, environmentKey: listed.indices.map(String.init).joined(separator: ",")]
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .none: return "none"
        case .ordinals(let list): return list.map(String.init).joined(separator: ",")
        }
    }
}
