/// A Hub download failure, phrased as one line that says what failed and what to do.
public struct HubError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
