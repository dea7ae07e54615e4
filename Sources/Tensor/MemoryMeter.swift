import Foundation

/// Bytes a backend holds for its own work (activations, scratch, reduced-precision weight copies) and their
/// high-water marks. Weights uploaded or borrowed from a model file are not counted: the meter answers "how
/// much beyond the weights does running the model take", which is deterministic for a given batch and
/// model, unlike the process's resident memory.
///
/// Two figures: `held` is everything allocated, including activation buffers kept for reuse
/// (`ActivationPool`); `live` is what operations are using at the moment.
public final class MemoryMeter: @unchecked Sendable {
    private let lock = NSLock()
    private var held = 0, heldHighWater = 0
    private var used = 0, usedHighWater = 0

    public init() {}

    /// Bytes held now (in use or cached for reuse).
    public var current: Int { lock.withLock { held } }
    /// The most bytes held at once since creation or the last `resetPeak()`: the allocation high-water mark.
    public var peak: Int { lock.withLock { heldHighWater } }
    /// Bytes in use by live matrices and buffers now.
    public var live: Int { lock.withLock { used } }
    /// The most bytes in use at once since creation or the last `resetPeak()`.
    public var livePeak: Int { lock.withLock { usedHighWater } }

    /// Starts new high-water marks from what is held and used now.
    public func resetPeak() { lock.withLock { heldHighWater = held; usedHighWater = used } }

    /// A buffer allocated and put to use (freed with `freed`).
    func allocated(_ bytes: Int) { reserved(bytes); inUse(bytes) }
    func freed(_ bytes: Int) { notInUse(bytes); released(bytes) }

    /// Memory taken from or given back to the system.
    func reserved(_ bytes: Int) {
        lock.withLock { held += bytes; heldHighWater = max(heldHighWater, held) }
    }
    func released(_ bytes: Int) { lock.withLock { held -= bytes } }

    /// Held memory starting or ending a use.
    func inUse(_ bytes: Int) {
        lock.withLock { used += bytes; usedHighWater = max(usedHighWater, used) }
    }
    func notInUse(_ bytes: Int) { lock.withLock { used -= bytes } }
}

/// A backend that keeps activations in host memory and bounds them: a model runs a batch larger than the
/// budget in several passes of whole sequences (sequences never interact, so the vectors are the same).
public protocol BoundedActivationMemory: Backend {
    /// The most bytes of activations one forward pass should hold at once.
    var activationBudgetBytes: Int { get }
    /// What the backend holds for its own work, with its high-water marks.
    var memory: MemoryMeter { get }
}
