/// Why a `tokenizer.json` could not be loaded. Every message names the file and what is wrong with it.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    /// The file (or caller-supplied source name) that failed.
    public let source: String
    /// What is malformed or unsupported, and where in the file.
    public let detail: String

    public init(source: String, detail: String) {
        self.source = source
        self.detail = detail
    }

    public var description: String {
        "\(source): \(detail)"
    }
}
