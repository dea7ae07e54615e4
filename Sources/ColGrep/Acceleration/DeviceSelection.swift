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

    public var description: String {
        switch self {
        case .all: return "all"
        case .none: return "none"
        case .ordinals(let list): return list.map(String.init).joined(separator: ",")
        }
    }
}
