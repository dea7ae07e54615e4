import Foundation

/// How many encode lanes (host threads, each with its own streams and staging, sharing the device's
/// weights) each GPU gets. One host thread per GPU left about 45 % of an H200 idle while the thread
/// packed batches and copied vectors out (session 7: 9.3M tokens/s with one thread, 16.8M with two on
/// one GPU), so the default is two; `COLGREP_GPU_LANES` chooses another count.
public enum GPULanes {
    /// The environment variable that sets the lane count.
    public static let environmentKey = "COLGREP_GPU_LANES"
    /// Lanes per GPU when nothing says otherwise.
    public static let defaultCount = 2
    /// More lanes than this only add host threads and activation memory.
    public static let maximum = 8

    /// The lane count `COLGREP_GPU_LANES` asks for, else the default; a value that is not 1…8 is an
    /// error naming the variable.
    public static func count(environment: [String: String]) throws -> Int {
        guard let text = environment[environmentKey]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return defaultCount }
        guard let count = Int(text), (1...maximum).contains(count) else {
            throw ColGrepError.usage("\(environmentKey)='\(text)' is not a lane count from 1 to \(maximum) (encode threads per GPU; default \(defaultCount))")
        }
        return count
    }
}
