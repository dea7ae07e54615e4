import Foundation
import TensorCUDA

/// The GPU inventory, probed on first use. Probing loads the driver and opens a context (200–300 ms
/// on an H100 machine), which a run or a query that the CPU finishes sooner must never pay: the
/// router first consults the last stored cost model and probes only when a GPU could win.
public final class GPUProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var value: GPUInventory?
    private let make: @Sendable () -> GPUInventory

    /// Probes with `make` on first use.
    public init(_ make: @escaping @Sendable () -> GPUInventory) {
        self.make = make
    }

    /// An inventory known already (tests, `--force-cpu`).
    public convenience init(fixed inventory: GPUInventory) {
        self.init { inventory }
        value = inventory
    }

    /// The inventory for `mode`: none under `--force-cpu`, else `injected` or a lazy probe of the
    /// environment's selection.
    public static func forMode(_ mode: AccelerationMode, injected: GPUInventory?, environment: [String: String]) -> GPUProbe {
        if mode == .forceCPU { return GPUProbe(fixed: GPUInventory(ordinals: [], description: nil, unavailableReason: "--force-cpu")) }
        if let injected { return GPUProbe(fixed: injected) }
        return GPUProbe { GPUInventory.current(environment: environment) }
    }

    public var inventory: GPUInventory {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let probed = Self.measured(make)
        value = probed
        return probed
    }

    /// Runs `probe` as the profile's `GPU probe` stage, then records the CUDA probe's steps. Driver load,
    /// initialisation and device 0's context: untraced, they read as a gap of 0.6–1.0 s before a cold
    /// index's first stage on the four-GPU machine.
    static func measured(_ probe: () -> GPUInventory) -> GPUInventory {
        let inventory = Profiler.shared.measure("GPU probe", probe)
        profileSteps()
        return inventory
    }

    /// The CUDA probe's steps as profile stages (`GPU probe: …`), once per process, where it ran.
    private static func profileSteps() {
        guard Profiler.shared.isEnabled, CUDABackend.driverProbed else { return }
        let first = stepsProfiled.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        for step in CUDABackend.probeSteps { Profiler.shared.add(stage: "GPU probe: \(step.step)", seconds: step.seconds) }
    }
    private static let stepsProfiled = LockedValue(false)

    /// This process's driver initialisation per GPU it saw (the probe's `driver init` step over the
    /// visible count), where the CUDA probe ran and found a GPU; else nil.
    public static var driverInitSecondsPerGPU: Double? {
        guard CUDABackend.driverProbed, CUDABackend.visibleDeviceCount > 0,
              let step = CUDABackend.probeSteps.first(where: { $0.step.hasPrefix("driver init") }) else { return nil }
        return step.seconds / Double(CUDABackend.visibleDeviceCount)
    }

    /// Whether the probe has run (or the inventory was given).
    public var isProbed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value != nil
    }
}
