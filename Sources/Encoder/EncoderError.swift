import Foundation

/// Why a model could not be loaded or run. Every case names the file at fault and says what to do.
public enum EncoderError: Error, CustomStringConvertible, Equatable {
    /// A file the model needs is not there.
    case missingFile(URL, hint: String)
    /// A file exists but its content cannot be used (truncated, malformed, wrong shape or type).
    case invalidFile(URL, reason: String)
    /// `config.json` names an architecture this encoder does not implement.
    case unsupportedArchitecture(URL, String)
    /// Input that cannot be encoded (an id outside the vocabulary, an empty batch entry).
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .missingFile(url, hint): "missing model file \(url.path): \(hint)"
        case let .invalidFile(url, reason): "unusable model file \(url.path): \(reason)"
        case let .unsupportedArchitecture(url, name):
            "\(url.path): model type \"\(name)\" is not supported (supported: bert, modernbert)"
        case let .invalidInput(reason): "cannot encode: \(reason)"
        }
    }
}
