import Foundation

/// Bytes a backend holds for its own work (activations, scratch, reduced-precision weight copies) and their
/// high-water mark. Weights uploaded or borrowed from a model file are not counted: the meter answers "how
/// much beyond the weights does running the model take", which is deterministic for a given batch and
/// model, unlike the process's resident memory.
public final class MemoryMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var held = 0
    private var highWater = 0

    public init() {}

    /// Bytes held now.
    public var current: Int { lock.withLock { held } }
    /// The most bytes held at once since creation or the last `resetPeak()`.
    public var peak: Int { lock.withLock { highWater } }

    /// Starts a new high-water mark from what is held now.
    public func resetPeak() { lock.withLock { highWater = held } }

    func allocated(_ bytes: Int) {
        lock.withLock {
            held += bytes
            highWater = max(highWater, held)
        }
    }

    func freed(_ bytes: Int) { lock.withLock { held -= bytes } }
}

/// A backend that keeps activations in host memory and bounds them: a model runs a batch larger than the
/// budget in several passes of whole sequences (sequences never interact, so the vectors are the same).
public protocol BoundedActivationMemory: Backend {
    /// The most bytes of activations one forward pass should hold at once.
    var activationBudgetBytes: Int { get }
    /// What the backend holds for its own work, with its high-water mark.
    var memory: MemoryMeter { get }
}
